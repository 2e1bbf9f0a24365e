"""`pixelforge translate`: argument parsing for image-to-image translation (pix2pix, CycleGAN);
the work is in :func:`pixelforge.tasks.translate.run_translate`."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console

from pixelforge.cli.options import Threads, set_threads


def translate(
    model: Annotated[
        str,
        typer.Argument(help="A pix2pix or cyclegan model: model dir, run dir or shipped name."),
    ],
    source: Annotated[
        str, typer.Argument(help="An image, or a folder of images (searched recursively).")
    ],
    out_path: Annotated[  # a string: a trailing "/" (a folder for one image's result) is kept
        str,
        typer.Option(
            "--out",
            help="For an image: the .png to write (ending in / or an existing folder: written "
            "into it); for a folder: the folder to write, with the same relative names as .png.",
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
    threads: Threads = None,
) -> None:
    """Translate an image or a folder of images with a pix2pix or cyclegan MODEL (any size)."""
    from pixelforge.devices import as_device
    from pixelforge.tasks.translate import run_translate

    set_threads(threads)
    written = run_translate(
        model, source, out_path, direction=direction, tile=tile, device=as_device(device)
    )
    Console(highlight=False, soft_wrap=True).print(
        f"wrote {written[0]}" if len(written) == 1 else f"wrote {len(written)} images to {out_path}"
    )
