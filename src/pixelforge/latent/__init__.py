"""The latent-space lab: interpolate, encode, attribute directions, edits and nearest neighbours.

The same operations as ``pixelforge latent ...``, as functions on a loaded model
(:func:`pixelforge.hub.load`)::

    from pixelforge import hub, latent

    m = hub.load("runs/vae")
    frames = latent.interpolate(m, seeds=(1, 2), steps=8).images     # K x C x H x W in [0, 1]
    inv = latent.encode(m, "face.png", out="face.safetensors")       # inv.mse, inv.psnr
    d = latent.direction(m, "folder:data/faces", "glasses", out="glasses.safetensors")
    edited = latent.edit(m, seed=3, direction="glasses.safetensors", strength=2.0, frames=5)
    nn = latent.neighbors(m, "face.png", "folder:data/faces", k=8)

Everything goes through the model's lab hooks (``lab_space``, ``to_lab``, ``from_lab``,
``mean_lab_latent``), so a family that implements them (such as StyleGAN's W space) works with
no change here. Latent and direction files carry the model's fingerprint
(:func:`model_fingerprint`) and are refused by any other model.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from pixelforge.errors import ConfigError
from pixelforge.latent.direction import (
    Direction,
    apply_direction,
    compute_direction,
    load_direction,
    save_direction,
    strengths_for,
)
from pixelforge.latent.invert import Inversion, encode_image, invert, load_image
from pixelforge.latent.neighbors import Neighbors, nearest_neighbors
from pixelforge.latent.output import save_frames
from pixelforge.latent.space import (
    check_generator,
    class_labels,
    interpolate_lab,
    lerp,
    load_lab_file,
    model_fingerprint,
    render,
    save_lab_file,
    seed_lab_latent,
    slerp,
)
from pixelforge.models.base import ImageGenerator

__all__ = [
    "Direction",
    "Interpolation",
    "Inversion",
    "Neighbors",
    "direction",
    "edit",
    "encode",
    "interpolate",
    "invert",
    "lerp",
    "load_direction",
    "load_image",
    "load_latent",
    "model_fingerprint",
    "neighbors",
    "save_frames",
    "save_latent",
    "slerp",
]

LatentSource = int | str | Path | torch.Tensor


@dataclass
class Interpolation:
    """Frames of a path between two lab latents."""

    images: torch.Tensor  # K x C x H x W in [0, 1]
    latents: torch.Tensor  # K x lab shape
    space: str  # "gaussian" (slerp) or "w" (lerp)
    class_label: int | None


def save_latent(
    path: str | Path, model: ImageGenerator, latent: torch.Tensor, *, label: int | None = None
) -> Path:
    """Write one lab latent (lab shape) with the model's fingerprint."""
    return save_lab_file(path, "latent", latent, check_generator(model), label=label)


def load_latent(path: str | Path, model: ImageGenerator) -> tuple[torch.Tensor, int | None]:
    """``(latent, class label)`` of a latent file, refusing one made with another model."""
    tensor, meta = load_lab_file(path, "latent", check_generator(model))
    return tensor, meta["label"]


def _endpoint(
    model: ImageGenerator, source: LatentSource, class_label: int | None
) -> tuple[torch.Tensor, int | None, bool]:
    """(lab latent, label from a file, whether it came from a file)."""
    if isinstance(source, int):
        labels = class_labels(model, 1, class_label)
        return seed_lab_latent(model, source, labels), None, False
    if isinstance(source, torch.Tensor):
        return source.float(), None, False
    tensor, label = load_latent(source, model)
    return tensor, label, True


def interpolate(
    model: torch.nn.Module,
    *,
    seeds: tuple[int, int] | None = None,
    start: LatentSource | None = None,
    end: LatentSource | None = None,
    steps: int = 8,
    class_label: int | None = None,
) -> Interpolation:
    """``steps`` frames from one latent to another (slerp in a Gaussian space, lerp in W).

    Ends are seeds (``seeds=(A, B)``: frame 0 is ``model.sample(1, seed=A)``), lab latents, or
    latent files (refused unless made with this model). A conditional model keeps one class along
    the path: ``class_label``, else the class stored in both latent files.
    """
    gen = check_generator(model)
    if seeds is not None:
        if start is not None or end is not None:
            raise ConfigError("give either two seeds or --from/--to latents, not both.")
        start, end = int(seeds[0]), int(seeds[1])
    if start is None or end is None:
        raise ConfigError("interpolate needs two ends: --seeds A B, or --from A --to B.")
    file_labels: list[int | None] = []
    for src in (start, end):
        if not isinstance(src, int | torch.Tensor):
            file_labels.append(load_latent(src, gen)[1])
    if class_label is None and gen.num_classes and file_labels:
        known = {lb for lb in file_labels if lb is not None}
        if len(known) > 1:
            raise ConfigError(
                f"the two latent files were made for different classes ({sorted(known)}); pass "
                "--class to choose one."
            )
        class_label = known.pop() if known else None
    labels = class_labels(gen, steps if steps > 0 else 1, class_label)
    a, _, _ = _endpoint(gen, start, class_label)
    b, _, _ = _endpoint(gen, end, class_label)
    lab = interpolate_lab(gen.lab_space, a, b, steps)
    return Interpolation(
        images=render(gen, lab, labels), latents=lab, space=gen.lab_space, class_label=class_label
    )


def encode(
    model: torch.nn.Module,
    image: str | Path,
    *,
    class_label: int | None = None,
    start: str = "auto",
    steps: int | None = None,
    lr: float = 0.05,
    restarts: int = 4,
    seed: int = 0,
    out: str | Path | None = None,
) -> Inversion:
    """The lab latent of an image file (VAE encoder, or GAN inversion), optionally saved."""
    gen = check_generator(model)
    inv = encode_image(
        gen, image, class_label=class_label, start=start, steps=steps, lr=lr, restarts=restarts,
        seed=seed,
    )  # fmt: skip
    if out is not None:
        save_latent(out, gen, inv.latents[0], label=class_label)
    return inv


def direction(
    model: torch.nn.Module,
    data: str,
    attribute: str,
    *,
    versus: str | None = None,
    n: int = 64,
    steps: int = 100,
    seed: int = 0,
    out: str | Path | None = None,
) -> Direction:
    """An attribute direction from the labelled images of ``data``, optionally saved."""
    gen = check_generator(model)
    d = compute_direction(gen, data, attribute, versus=versus, n=n, steps=steps, seed=seed)
    if out is not None:
        save_direction(out, d, gen)
    return d


def edit(
    model: torch.nn.Module,
    direction: Direction | str | Path | torch.Tensor,
    *,
    seed: int | None = None,
    image: str | Path | None = None,
    latent: str | Path | torch.Tensor | None = None,
    strength: float = 2.0,
    frames: int = 5,
    class_label: int | None = None,
    steps: int | None = None,
) -> torch.Tensor:
    """Images in [0, 1] of a latent moved along ``direction``.

    The latent is a seed's, an image's (encoded) or a latent file's / tensor. ``frames`` > 1
    gives a strip at strengths ``-strength .. strength``; ``frames=1`` one image at ``strength``.
    """
    gen = check_generator(model)
    given = sum(x is not None for x in (seed, image, latent))
    if given != 1:
        raise ConfigError("edit needs exactly one of IMAGE, --seed or --latent.")
    if isinstance(direction, Direction):
        vector = direction.vector
    elif isinstance(direction, torch.Tensor):
        vector = direction
    else:
        vector = load_direction(direction, gen).vector
    if latent is not None:
        w, file_label = _endpoint(gen, latent, class_label)[:2]
        if class_label is None:
            class_label = file_label
        labels = class_labels(gen, 1, class_label)
    elif seed is not None:
        labels = class_labels(gen, 1, class_label)
        w = seed_lab_latent(gen, seed, labels)
    else:
        assert image is not None
        labels = class_labels(gen, 1, class_label)
        w = encode_image(gen, image, class_label=class_label, steps=steps).latents[0]
    return apply_direction(gen, w, vector, strengths_for(strength, frames), labels)


neighbors = nearest_neighbors  # the k data images nearest to an image, as a Neighbors
