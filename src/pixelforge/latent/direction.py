"""Attribute directions from labelled examples, and edits along them.

A direction is the difference of class means in the lab space (as in "add glasses": Larsen et al.
2016; White 2016): ``mean(latent | label == A) - mean(latent | label != A)`` or, with ``versus``,
``- mean(latent | label == B)``. The latents of the examples come from

* the VAE encoder (posterior means) when the model has one: exact and fast;
* GAN inversion (:func:`pixelforge.latent.invert.invert`) of up to ``n`` examples per class with
  few optimisation steps otherwise: **approximate** (the file and the command output say so).

An edit adds ``strength * direction`` to a lab latent and renders it with ``from_lab``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from pixelforge.data import DataConfig, open_dataset
from pixelforge.errors import ConfigError, DataError
from pixelforge.latent.invert import check_invertible, has_encoder, invert, model_geometry
from pixelforge.latent.space import check_generator, load_lab_file, render, save_lab_file
from pixelforge.models.base import ImageGenerator


@dataclass
class Direction:
    """An attribute direction in a model's lab space."""

    vector: torch.Tensor  # lab shape
    attribute: str
    versus: str  # class name, or "rest"
    method: str  # "encoder" or "inversion (approximate)"
    counts: dict[str, int] = field(default_factory=dict)  # examples used per side
    data: str = ""

    def info(self) -> dict[str, Any]:
        return {
            "attribute": self.attribute,
            "versus": self.versus,
            "method": self.method,
            "counts": self.counts,
            "data": self.data,
            "norm": float(self.vector.norm()),
        }


def _class_index(name_or_index: str, class_names: list[str], spec: str) -> int:
    if name_or_index in class_names:
        return class_names.index(name_or_index)
    if name_or_index.isdigit() and int(name_or_index) < len(class_names):
        return int(name_or_index)
    raise ConfigError(
        f"'{name_or_index}' is not a label of {spec}; its labels are: {', '.join(class_names)}."
    )


def _select(labels: torch.Tensor, mask: torch.Tensor, n: int, seed: int) -> torch.Tensor:
    idx = torch.nonzero(mask).flatten()
    if len(idx) > n:
        g = torch.Generator().manual_seed(seed)
        idx = idx[torch.randperm(len(idx), generator=g)[:n]].sort().values
    return idx


def lab_latents_of(
    model: ImageGenerator,
    images: torch.Tensor,
    labels: torch.Tensor | None,
    *,
    steps: int,
    seed: int = 0,
) -> tuple[torch.Tensor, str]:
    """Lab latents of dataset images (N x C x H x W in [-1, 1]) and how they were obtained."""
    cond = labels if model.num_classes else None
    if has_encoder(model):
        return invert(model, images, cond, start="encoder", steps=0).latents, "encoder"
    inv = invert(model, images, cond, start="mean", steps=steps, restarts=1, seed=seed)
    return inv.latents, f"inversion, {steps} steps (approximate)"


def compute_direction(
    model: ImageGenerator,
    data: str,
    attribute: str,
    *,
    versus: str | None = None,
    n: int = 64,
    steps: int = 100,
    seed: int = 0,
) -> Direction:
    """The direction from ``versus`` (default: every other label) to ``attribute`` in ``data``."""
    model = check_generator(model)
    check_invertible(model)
    if n < 1:
        raise ConfigError(f"--n must be at least 1, got {n}.")
    size, channels = model_geometry(model)
    ds = open_dataset(data, image_size=size, channels=channels, config=DataConfig())
    if ds.labels is None or not ds.info.class_names:
        raise DataError(
            f"{data} has no labels: a direction needs labelled examples (for your own images, "
            "put each class in its own sub-folder and use folder:PATH)."
        )
    names = list(ds.info.class_names)
    pos = _class_index(attribute, names, data)
    if versus is not None:
        neg = _class_index(versus, names, data)
        if neg == pos:
            raise ConfigError("--versus must name a different label than --attribute.")
        neg_mask = ds.labels == neg
    else:
        neg_mask = ds.labels != pos
    if model.num_classes and int(ds.labels.max()) >= model.num_classes:
        raise ConfigError(
            f"{data} has {len(names)} labels but this conditional model knows "
            f"{model.num_classes} classes: its labels cannot be used as the model's classes."
        )
    pos_idx = _select(ds.labels, ds.labels == pos, n, seed)
    neg_idx = _select(ds.labels, neg_mask, n, seed + 1)
    if len(pos_idx) == 0 or len(neg_idx) == 0:
        raise DataError(f"{data} has no examples on one side of '{attribute}'.")
    idx = torch.cat([pos_idx, neg_idx])
    batch = ds.get_batch(idx)
    lat, method = lab_latents_of(model, batch["image"], batch.get("label"), steps=steps, seed=seed)
    k = len(pos_idx)
    vector = lat[:k].mean(0) - lat[k:].mean(0)
    return Direction(
        vector=vector,
        attribute=names[pos],
        versus=names[neg] if versus is not None else "rest",
        method=method,
        counts={"attribute": k, "versus": len(neg_idx)},
        data=data,
    )


def save_direction(path: str | Path, direction: Direction, model: ImageGenerator) -> Path:
    """Write ``direction`` with the model's fingerprint."""
    return save_lab_file(path, "direction", direction.vector, model, extra=direction.info())


def load_direction(path: str | Path, model: ImageGenerator) -> Direction:
    """Read a direction file, refusing one made with another model."""
    vector, meta = load_lab_file(path, "direction", model)
    extra = meta["extra"]
    return Direction(
        vector=vector,
        attribute=str(extra.get("attribute", "?")),
        versus=str(extra.get("versus", "?")),
        method=str(extra.get("method", "?")),
        counts=dict(extra.get("counts", {})),
        data=str(extra.get("data", "")),
    )


def strengths_for(strength: float, frames: int) -> list[float]:
    """``frames`` strengths evenly from ``-strength`` to ``strength`` (one frame: ``strength``)."""
    if frames < 1:
        raise ConfigError(f"--frames must be at least 1, got {frames}.")
    if frames == 1:
        return [float(strength)]
    return torch.linspace(-strength, strength, frames).tolist()


def apply_direction(
    model: ImageGenerator,
    latent: torch.Tensor,
    direction: torch.Tensor,
    strengths: list[float],
    labels: torch.Tensor | None = None,
) -> torch.Tensor:
    """Images in [0, 1] of ``latent + s * direction`` for each ``s`` in ``strengths``."""
    model = check_generator(model)
    if latent.shape != direction.shape:
        raise ConfigError(
            f"the direction has shape {tuple(direction.shape)} but the latent has "
            f"{tuple(latent.shape)}: they come from different models."
        )
    s = torch.tensor(strengths, dtype=latent.dtype).reshape(-1, *([1] * latent.ndim))
    lab = latent[None] + s * direction[None]
    lb = None if labels is None else labels[:1].expand(len(strengths))
    return render(model, lab, lb)
