"""`pixelforge upscale|denoise|restore-jpeg|colorize|inpaint|uncrop`: argument parsing only."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from pixelforge.cli.options import Threads, set_threads

Source = Annotated[str, typer.Argument(help="An image, or a folder of images.")]
Out = Annotated[  # a string: a trailing "/" (a folder for one image's result) is kept
    str,
    typer.Option(
        "--out",
        help="Output PNG (one image; ending in / or an existing folder: written into it) or "
        "folder (a folder of images).",
    ),
]
Model = Annotated[
    str | None,
    typer.Option(help="Model dir, run dir or shipped name (default: the shipped model)."),
]
Tile = Annotated[
    int | None,
    typer.Option(
        help="Largest tile side in input pixels (memory use; default 512, inpaint and uncrop "
        "1024).",
        show_default=False,
    ),
]
Device = Annotated[str, typer.Option(help="auto, cpu, cuda or mps.")]
Ensemble = Annotated[
    int,
    typer.Option(
        help="Average the outputs for 1, 2, 4 or 8 flipped and transposed copies of the image "
        "(8: the EDSR+ self-ensemble; that many times slower, slightly more accurate)."
    ),
]
# how a palette (conditional diffusion) model samples; refused for the other models
Seed = Annotated[
    int | None,
    typer.Option(help="Palette models: seed of the sampling noise (default 0; same seed, same "
                 "pixels)."),
]  # fmt: skip
Sampler = Annotated[
    str | None,
    typer.Option(help="Palette models: ddim, ddpm or dpm-solver++ (default: the model's)."),
]
Steps = Annotated[
    int | None,
    typer.Option(help="Palette models: sampling steps, one network pass each (default: the "
                 "model's, model.steps)."),
]  # fmt: skip


def _run(
    command: str,
    source: str,
    out: str,
    model: str | None,
    tile: int | None,
    device: str,
    ensemble: int,
    threads: int | None,
    **kw: object,
) -> None:
    set_threads(threads)
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from pixelforge.devices import as_device
    from pixelforge.tasks.restore import run_command
    from pixelforge.tasks.tiling import report_tiles

    err = Console(stderr=True)
    bar = Progress(  # on a terminal only: piped output and error lines stay clean
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total} tiles"),
        TimeElapsedColumn(),
        console=err,
        transient=True,
        disable=not err.is_terminal,
    )
    task = bar.add_task(command, total=None)

    def on_image(path: Path, index: int, count: int) -> None:
        where = f" ({index + 1}/{count})" if count > 1 else ""
        bar.update(task, description=f"{command} {path.name}{where}", completed=0, total=None)

    def on_tile(done: int, total: int) -> None:
        bar.update(task, completed=done, total=total)

    with bar, report_tiles(on_tile):
        written = run_command(
            command,
            source,
            out,
            model=model,
            tile=tile,
            device=as_device(device),
            ensemble=ensemble,
            on_image=on_image,
            **kw,  # type: ignore[arg-type]
        )
    Console().print(
        f"wrote {written[0]}" if len(written) == 1 else f"wrote {len(written)} images to {out}"
    )


def upscale(
    source: Source,
    out: Out,
    scale: Annotated[
        int | None,
        typer.Option(
            help="Enlargement factor: 2 or 4 for the shipped models (default 4); with --model, "
            "the model's own scale by default."
        ),
    ] = None,
    model: Model = None,
    tile: Tile = None,
    device: Device = "auto",
    ensemble: Ensemble = 1,
    threads: Threads = None,
) -> None:
    """Super-resolution: enlarge an image SCALE times (default model sr-x{scale};
    sr-x4-gan: sharper textures; sr-x4-real: for blurry, noisy, compressed photos)."""
    _run("upscale", source, out, model, tile, device, ensemble, threads, scale=scale)


def _image_only(command: str, doc: str, *, sampled: bool = False) -> Callable[..., None]:
    """A command that takes an image and options only (no mask, no scale); ``sampled``: with
    the palette models' sampling options."""

    def run(
        source: Source,
        out: Out,
        model: Model = None,
        tile: Tile = None,
        device: Device = "auto",
        ensemble: Ensemble = 1,
        threads: Threads = None,
    ) -> None:
        _run(command, source, out, model, tile, device, ensemble, threads)

    def run_sampled(
        source: Source,
        out: Out,
        model: Model = None,
        tile: Tile = None,
        device: Device = "auto",
        ensemble: Ensemble = 1,
        threads: Threads = None,
        seed: Seed = None,
        sampler: Sampler = None,
        steps: Steps = None,
    ) -> None:
        _run(
            command, source, out, model, tile, device, ensemble, threads, seed=seed,
            sampler=sampler,
            steps=steps,
        )  # fmt: skip

    chosen = run_sampled if sampled else run
    chosen.__doc__ = doc
    return chosen


denoise = _image_only("denoise", "Remove Gaussian-like noise (blind: sigma 0-55 in 8-bit units).")
restore_jpeg = _image_only("restore-jpeg", "Remove JPEG blocking and ringing.", sampled=True)
colorize = _image_only(
    "colorize", "Colour a greyscale photo (colour input is turned grey first).", sampled=True
)


def inpaint(
    source: Source,
    out: Out,
    mask: Annotated[
        Path,
        typer.Option(
            help="Mask PNG of the image's size: white (grey > 127) = fill; black or "
            "transparent = keep. "
            "With a folder of images: one mask for all, or a folder of masks named as the "
            "images (photo.jpg -> photo.png)."
        ),
    ],
    model: Model = None,
    tile: Tile = None,
    device: Device = "auto",
    ensemble: Ensemble = 1,
    threads: Threads = None,
    seed: Seed = None,
    sampler: Sampler = None,
    steps: Steps = None,
) -> None:
    """Fill the white area of MASK with plausible content."""
    _run(
        "inpaint", source, out, model, tile, device, ensemble, threads, mask=mask, seed=seed,
        sampler=sampler, steps=steps,
    )  # fmt: skip


def uncrop(
    source: Source,
    out: Out,
    extend: Annotated[float, typer.Option(help="Size added, as a fraction of the image.")] = 0.5,
    side: Annotated[str, typer.Option(help="all, left, right, top or bottom.")] = "all",
    model: Model = None,
    tile: Tile = None,
    device: Device = "auto",
    ensemble: Ensemble = 1,
    threads: Threads = None,
    seed: Seed = None,
    sampler: Sampler = None,
    steps: Steps = None,
) -> None:
    """Extend an image beyond its borders (outpainting)."""
    _run(
        "uncrop", source, out, model, tile, device, ensemble, threads, extend=extend, side=side,
        seed=seed, sampler=sampler, steps=steps,
    )  # fmt: skip


def register(app: typer.Typer) -> None:
    """Add the restoration commands to ``app``."""
    app.command()(upscale)
    app.command("denoise")(denoise)
    app.command("restore-jpeg")(restore_jpeg)
    app.command("colorize")(colorize)
    app.command()(inpaint)
    app.command()(uncrop)
