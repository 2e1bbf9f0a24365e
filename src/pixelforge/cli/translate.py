"""`pixelforge translate`: argument parsing for image-to-image translation (pix2pix, CycleGAN);
the work is in :func:`pixelforge.tasks.image2image.apply_model`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console


def translate(
    model: Annotated[
        str,
        typer.Argument(help="A pix2pix or cyclegan model: model dir, run dir or shipped name."),
    ],
    source: Annotated[
        Path, typer.Argument(help="An image, or a folder of images (searched recursively).")
    ],
    out_path: Annotated[
        Path,
        typer.Option(
            "--out",
            help="For an image: the .png to write (or a folder for it); for a folder: the "
            "folder to write, with the same relative names as .png.",
        ),
    ],
    direction: Annotated[
        str | None, typer.Option(help="cyclegan: AtoB (the default) or BtoA.")
    ] = None,
    tile: Annotated[
        int,
        typer.Option(
            help="Largest tile side in pixels: larger images run in overlapping tiles (instance "
            "norm still sees whole-image statistics)."
        ),
    ] = 512,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda or mps.")] = "auto",
) -> None:
    """Translate an image or a folder of images with a pix2pix or cyclegan MODEL (any size)."""
    import torch

    from pixelforge.errors import ConfigError, DataError, PixelforgeError
    from pixelforge.hub import load
    from pixelforge.io.images import read_image, write_png
    from pixelforge.models.cyclegan import CycleGAN
    from pixelforge.models.image2image import ImageToImage
    from pixelforge.tasks.generate import provenance
    from pixelforge.tasks.image2image import (
        apply_model,
        folder_failures,
        folder_images,
        folder_outputs,
    )
    from pixelforge.training.trainer import resolve_device

    if tile < 16:
        raise ConfigError(f"--tile must be at least 16 pixels, got {tile}.")
    if not source.exists():
        raise DataError(f"no such image or folder: {source}.")
    if source.is_dir():
        files = folder_images(source, out_path)
        if not files:
            raise DataError(f"no images found in {source} (png, jpg, ... files, recursively).")
        if out_path.exists() and not out_path.is_dir():
            raise ConfigError(
                f"{source} is a folder, so --out must be a folder; {out_path} is a file."
            )
        targets = folder_outputs(files, source, out_path)
    else:
        files = [source]
        if out_path.suffix.lower() == ".png":
            targets = [out_path]
        elif out_path.is_dir() or not out_path.suffix:
            targets = [out_path / (source.stem + ".png")]
        else:
            raise ConfigError(f"--out must be a .png file or a folder, got '{out_path}'.")

    dev = resolve_device(device)
    m = load(model, device=dev)
    if not isinstance(m, ImageToImage) or m.takes_mask:
        raise ConfigError(
            f"{model} is a {getattr(m, 'family', '?')} model; translate needs an image-to-image "
            "model such as pix2pix or cyclegan."
        )
    if direction is not None:
        if isinstance(m, CycleGAN):
            m.direction = direction  # the model refuses a direction it cannot run
        elif direction != "AtoB":
            raise ConfigError(
                f"a {m.family} model translates A to B only; --direction {direction} needs a "
                "cyclegan model."
            )
    used = str(getattr(m, "direction", "AtoB"))
    mode = "L" if m.in_channels == 1 and m.color_space == "rgb" else "RGB"
    command = f"pixelforge translate {model} --direction {used} --tile {tile}"
    failed: list[tuple[Path, str]] = []
    for f, target in zip(files, targets, strict=True):
        try:
            pixels = read_image(f, mode=mode)
            image = torch.from_numpy(pixels).permute(2, 0, 1).float() / 255.0
            result = apply_model(m, image, tile=tile, device=dev)
        except PixelforgeError as exc:
            if not source.is_dir():
                raise
            failed.append((f, str(exc)))  # the others are still translated
            continue
        meta = provenance(m, command, source=f.name, direction=used)
        write_png(target, result, meta)
    where = targets[0] if len(targets) == 1 else out_path
    done = len(targets) - len(failed)
    what = "1 image" if done == 1 else f"{done} images"
    Console(highlight=False, soft_wrap=True).print(f"wrote {what} to {where}")
    if failed:
        raise folder_failures(failed, len(targets), out_path)
