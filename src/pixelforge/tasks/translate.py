"""Image-to-image translation with a pix2pix or CycleGAN model: one image, or files and folders.

:func:`translate` is the Python API (``pixelforge.translate``); :func:`run_translate` is what
``pixelforge translate`` calls (an image or a folder in, PNGs out with their provenance). The
model runs on the whole image at its own size (:func:`~pixelforge.tasks.image2image.apply_model`:
padding, overlapping tiles, whole-image instance-norm statistics). A colour model gets a grey
image as three equal channels, a grey model a colour image's luma, and alpha is kept
(:func:`~pixelforge.tasks.restore.split_alpha`, as the restoration commands keep it).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

from pixelforge import hub
from pixelforge.devices import as_device
from pixelforge.errors import ConfigError, PixelforgeError
from pixelforge.io.images import write_png
from pixelforge.models.cyclegan import DIRECTIONS, CycleGAN
from pixelforge.models.image2image import ImageToImage
from pixelforge.models.pix2pix import to_channels
from pixelforge.tasks.generate import command_line, provenance
from pixelforge.tasks.image2image import (
    apply_model,
    as_image_tensor,
    check_tile,
    folder_failures,
    input_output_pairs,
    read_as_tensor,
)
from pixelforge.tasks.restore import how_to_run, split_alpha

FAMILIES = ("pix2pix", "cyclegan")


def load_translator(model: Any, device: Any = "cpu") -> ImageToImage:
    """``model`` (a loaded model, or a model dir, run dir or shipped name) as a pix2pix or
    cyclegan model; any other model is a ConfigError that says which command runs it."""
    m = model if isinstance(model, torch.nn.Module) else hub.load(model, device=device)
    if not isinstance(m, ImageToImage) or m.family not in FAMILIES:
        name = model if isinstance(model, str | Path) else "the model"
        run = how_to_run(m, name)
        raise ConfigError(
            f"{name} is a {getattr(m, 'family', '?')} model; translate runs pix2pix and cyclegan "
            "models" + (f": run this one with {run}." if run else ".")
        )
    return m


@contextlib.contextmanager
def in_direction(model: ImageToImage, direction: str | None) -> Iterator[str]:
    """Run ``model`` in ``direction`` (None: its own) and yield the direction used; a cyclegan
    model gets its own direction back afterwards."""
    if direction is not None and direction not in DIRECTIONS:
        raise ConfigError(f"--direction must be AtoB or BtoA, got '{direction}'.")
    if not isinstance(model, CycleGAN):
        if direction not in (None, "AtoB"):
            raise ConfigError(
                f"a {model.family} model translates A to B only; --direction {direction} needs "
                "a cyclegan model."
            )
        yield "AtoB"
        return
    own = model.direction
    if direction is not None:
        model.direction = direction  # the model refuses a direction it does not hold
    try:
        yield model.direction
    finally:
        model.direction = own


def translate_image(
    model: ImageToImage, image: torch.Tensor, *, tile: int = 512, device: Any = None
) -> torch.Tensor:
    """``image`` (C x H x W in [0, 1]; C = 1-4, alpha last) through ``model`` in its current
    direction: the model's output channels, plus the alpha when the image has some."""
    colour, alpha = split_alpha(image, keep=True)
    if model.in_channels == 1 and colour.shape[0] == 3:
        colour = to_channels(colour[None], 1)[0]  # BT.601 luma, as the reader's grey
    out = apply_model(model, colour, tile=tile, device=device)
    return out if alpha is None else torch.cat([out, alpha.to(out)], dim=0)


def translate(
    model: Any,
    image: Any,
    *,
    direction: str | None = None,
    tile: int = 512,
    device: torch.device | str = "cpu",
) -> torch.Tensor:
    """Translate one image with a pix2pix or cyclegan model; returns C x H x W floats in [0, 1]
    at the image's own size (C: the model's output channels, plus alpha when the image has some).

    ``model``: a loaded model, or a model dir, run dir or shipped name. ``image``: a path, a
    Pillow image, a numpy array (H x W x C or H x W; uint8, or float in [0, 1]) or a C x H x W
    tensor (float in [0, 1], or uint8). ``direction``: AtoB or BtoA for a cyclegan model (None:
    the model's own); a pix2pix model translates A to B only. ``tile``: the largest tile side in
    pixels (instance norm still sees whole-image statistics). ``device``: auto, cpu, cuda or mps.
    """
    check_tile(tile)
    device = as_device(device)
    m = load_translator(model, device)
    with in_direction(m, direction):
        return translate_image(m, as_image_tensor(image, mode="RGBA"), tile=tile, device=device)


def run_translate(
    model: str,
    source: str | Path,
    out: str | Path,
    *,
    direction: str | None = None,
    tile: int = 512,
    device: Any = "cpu",
) -> list[Path]:
    """Translate an image or a folder of images into ``out``
    (:func:`~pixelforge.tasks.image2image.input_output_pairs`); returns the files written.

    In a folder, an image that cannot be read or translated does not stop the others: they are
    all written, and then a :class:`PixelforgeError` names every image that failed and why."""
    check_tile(tile)
    pairs = input_output_pairs(source, out)
    m = load_translator(model, device)
    written: list[Path] = []
    failed: list[tuple[Path, str]] = []
    with in_direction(m, direction) as used:
        command = command_line(f"pixelforge translate {model} --direction {used} --tile {tile}")
        for src, dst in pairs:
            try:
                result = translate_image(
                    m, read_as_tensor(src, mode="RGBA"), tile=tile, device=device
                )
            except PixelforgeError as exc:
                if not Path(source).is_dir():
                    raise
                failed.append((src, str(exc)))  # the others are still translated
                continue
            meta = provenance(
                m, command, model=str(model), source=src.name, direction=used, tile=tile
            )
            write_png(dst, result, meta)
            written.append(dst)
    if failed:
        raise folder_failures(failed, len(pairs), out)
    return written
