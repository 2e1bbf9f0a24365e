"""Model families by name. Families register explicitly in :mod:`pixelforge.models`."""

from __future__ import annotations

import difflib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pixelforge.errors import ConfigError


@dataclass(frozen=True)
class Family:
    """What pixelforge needs to build, train, save and load one family of models."""

    name: str  # the name used on the command line and in config.json
    summary: str  # one line for `pixelforge models list`
    config_cls: type  # the model (architecture) config dataclass
    train_config_cls: type  # the training config dataclass (shared fields + the family's objective)
    model_cls: type  # nn.Module built as model_cls(config); what a model dir holds
    task_cls: type  # training.TrainTask subclass: the per-family train step
    tiny: dict[str, Any] = field(default_factory=dict)  # overrides for a seconds-long test run
    # "generator": samples images from noise (model.sample); "image2image": maps an image to an
    # image (model.translate, see pixelforge.models.image2image); "radiance-field": renders
    # views of a scene (model.render_rays, see pixelforge.nerf.render.render_image)
    kind: str = "generator"
    # the data the family trains on: "images" (any image set), "paired" (paired:PATH, A -> B),
    # "mattes" (paired:PATH whose B side is alpha mattes: cutouts or grey images), "unpaired"
    # (unpaired:PATH, two sets) or "scene" (a NeRF scene folder, PATH or scene:PATH)
    data_kind: str = "images"
    # families that read their own kind of data: (data spec, model config, train config) -> a
    # dataset with len(), get_batch(indices) and resolve_model(model config) -> the config with
    # its null fields filled from the data; None: image datasets through pixelforge.data
    open_data: Callable[[str, Any, Any], Any] | None = None
    # model config fields that a run started with --init may set anew: they leave the weights'
    # shapes alone (an image2image family's training crop size, image_size, always may)
    init_free: tuple[str, ...] = ()


_FAMILIES: dict[str, Family] = {}


def register(family: Family) -> Family:
    """Register ``family``; a second family with the same name is a programming error."""
    if family.name in _FAMILIES and _FAMILIES[family.name] is not family:
        raise ValueError(f"family '{family.name}' is already registered")
    _FAMILIES[family.name] = family
    return family


def _ensure_loaded() -> None:
    import pixelforge.models  # noqa: F401  (registers the built-in families)


def get_family(name: str) -> Family:
    """The family called ``name``, or a ConfigError listing the known ones."""
    _ensure_loaded()
    try:
        return _FAMILIES[name]
    except KeyError:
        close = difflib.get_close_matches(name, list(_FAMILIES), n=1)
        hint = f" Did you mean '{close[0]}'?" if close else ""
        raise ConfigError(
            f"unknown model family '{name}'.{hint} Known families: {', '.join(sorted(_FAMILIES))} "
            "(see `pixelforge models list`)."
        ) from None


def list_families() -> list[Family]:
    """All registered families, sorted by name."""
    _ensure_loaded()
    return [_FAMILIES[k] for k in sorted(_FAMILIES)]
