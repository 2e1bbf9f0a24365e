"""Dataset specs: parse, list, inspect, open and check.

A spec is a built-in name with an optional split (``digits``, ``digits:test``, ``shapes:test``)
or a folder of your own images: ``folder:PATH``, ``paired:PATH`` or ``unpaired:PATH`` (see
:mod:`pixelforge.data.folders`). Everything after the first colon of a folder spec is the path,
so paths may themselves contain colons.
"""

from __future__ import annotations

import difflib
from pathlib import Path

from pixelforge.data.builtin import BUILTINS
from pixelforge.data.config import DataConfig, check_target, resolve_config
from pixelforge.data.dataset import CheckReport, DatasetInfo, ImageDataset
from pixelforge.data.folders import FOLDER_KINDS, check_folder, inspect_folder, open_folder
from pixelforge.errors import ConfigError, DataError


def _valid_forms() -> str:
    with_splits = [n for n, b in BUILTINS.items() if len(b.splits) > 1]
    return (
        f"Built-in datasets: {', '.join(BUILTINS)} (add :test for the held-out split of "
        f"{' and '.join(with_splits)}); or your own images as folder:PATH, paired:PATH "
        "(pix2pix: A/ and B/, or A|B side by side) or unpaired:PATH (CycleGAN: trainA/, trainB/)."
    )


def parse_spec(spec: str) -> tuple[str, str | None]:
    """Split a dataset spec into ``(name, argument)``.

    ``"digits"`` -> ``("digits", None)``, ``"digits:test"`` -> ``("digits", "test")``,
    ``"folder:/data/cats"`` -> ``("folder", "/data/cats")``. Unknown names and splits raise
    :class:`DataError` listing the valid forms and suggesting the closest name.
    """
    text = spec.strip() if isinstance(spec, str) else ""
    if not text:
        raise DataError(f"no dataset given. {_valid_forms()}")
    name, sep, arg = text.partition(":")
    if name in FOLDER_KINDS:
        if not arg.strip():
            raise DataError(f"'{text}' names no folder: write it as {name}:PATH.")
        return name, arg
    if name in BUILTINS:
        if not sep:
            return name, None
        splits = BUILTINS[name].splits
        if arg not in splits:
            raise DataError(
                f"'{name}' has no split '{arg}'. Valid: "
                + ", ".join([name] + [f"{name}:{s}" for s in splits])
                + "."
            )
        return name, arg
    candidates = list(BUILTINS) + list(FOLDER_KINDS)
    close = difflib.get_close_matches(name.lower(), candidates, n=1, cutoff=0.6)
    hint = f" Did you mean '{close[0]}{sep}{arg}'?" if close else ""
    if not close and Path(text).expanduser().is_dir():
        hint = f" To use the images in that folder, write folder:{text}."
    raise DataError(f"unknown dataset '{text}'.{hint} {_valid_forms()}")


def list_datasets() -> list[tuple[str, str]]:
    """The built-in datasets as ``(name, one-line description)``."""
    return [(name, b.description) for name, b in BUILTINS.items()]


def inspect_dataset(spec: str, config: DataConfig | None = None) -> DatasetInfo:
    """Describe a dataset cheaply (no resizing; folders are counted, not decoded)."""
    cfg = resolve_config(config)
    name, arg = parse_spec(spec)
    if name in FOLDER_KINDS:
        return inspect_folder(name, arg or "", spec)
    b = BUILTINS[name]
    return b.info(spec, arg or b.splits[0], cfg)


def open_dataset(
    spec: str,
    *,
    image_size: int,
    channels: int,
    config: DataConfig | None = None,
    progress: bool = False,
    mattes: bool = False,
) -> ImageDataset:
    """Load a dataset into memory at the model's ``image_size`` (square) and ``channels`` (1 or 3).

    Images are converted to the requested channels (grey replicated to RGB, RGB to BT.601 luma),
    brought to ``image_size x image_size`` with ``config.resize_mode`` and
    ``config.resize_filter``, and stored as ``uint8``. ``progress`` shows a rich progress bar.
    ``mattes``: the B side of ``paired:PATH`` is alpha mattes, read by
    :func:`~pixelforge.data.transforms.matte_of` (a cutout's alpha channel, else a grey image).
    """
    cfg = resolve_config(config)
    check_target(image_size, channels)
    name, arg = parse_spec(spec)
    if cfg.direction != "AtoB" and name != "paired":
        raise ConfigError(
            f"data.direction={cfg.direction} swaps the two sides of paired:PATH data, and "
            f"'{spec}' is not paired (a cyclegan model learns both directions: translate it with "
            "--direction BtoA)."
        )
    if name in FOLDER_KINDS:
        dataset = open_folder(
            name, arg or "", spec, image_size=image_size, channels=channels, config=cfg,
            progress=progress, mattes=mattes,
        )  # fmt: skip
        if cfg.direction == "BtoA":  # B is the input: the model learns B -> A
            dataset.images, dataset.images_b = dataset.images_b, dataset.images  # type: ignore[assignment]
        return dataset
    b = BUILTINS[name]
    return b.load(spec, arg or b.splits[0], image_size, channels, cfg, progress)


def check_dataset(spec: str) -> CheckReport:
    """Decode every file of a folder dataset through the guarded reader and report failures.

    Built-in datasets are generated or bundled, so they report every sample readable.
    """
    name, arg = parse_spec(spec)
    if name in FOLDER_KINDS:
        return check_folder(name, arg or "", spec)
    info = inspect_dataset(spec)
    return CheckReport(total=info.size, readable=info.size, unreadable=[])
