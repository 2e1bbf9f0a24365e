"""`pixelforge dip ...`: argument parsing for the deep image prior (work:
:mod:`pixelforge.restoration.dip`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from pixelforge.cli.options import set_threads
from pixelforge.errors import ConfigError


def dip(
    image: Annotated[Path, typer.Argument(help="The one image to restore (PNG, JPEG, ...).")],
    out_path: Annotated[Path, typer.Option("--out", help="The PNG to write.")],
    task: Annotated[
        str, typer.Option(help="denoise, inpaint (needs --mask) or upscale (by --scale).")
    ] = "denoise",
    mask: Annotated[
        Path | None,
        typer.Option(
            help="Inpaint: image of the same size, white (grey > 127) = hole to fill; black or "
            "transparent = keep."
        ),
    ] = None,
    scale: Annotated[int, typer.Option(help="Upscale: output side = scale x input side.")] = 4,
    iterations: Annotated[
        int | None,
        typer.Option(
            help="Optimisation steps (default: denoise 2000, inpaint 5000, upscale 2000)."
        ),
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of the network weights and input noise.")] = 0,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda or mps.")] = "auto",
    threads: Annotated[int | None, typer.Option(help="CPU threads for torch.")] = None,
    progress: Annotated[bool, typer.Option(help="Show a progress bar with the loss.")] = True,
) -> None:
    """Denoise, inpaint or upscale ONE image with a deep image prior (no training data)."""
    from pixelforge.io.images import read_image, write_png
    from pixelforge.restoration.dip import DEFAULT_ITERATIONS, TASKS, deep_image_prior, read_mask
    from pixelforge.tasks.image2image import png_output

    out_path = png_output(out_path)
    if task not in TASKS:
        raise ConfigError(f"unknown --task {task!r}; use one of {', '.join(TASKS)}.")
    if task == "inpaint" and mask is None:
        raise ConfigError("--task inpaint needs --mask MASK.png (white = hole to fill).")
    if task != "inpaint" and mask is not None:
        raise ConfigError(f"--mask goes with --task inpaint only, not {task}; leave it out.")
    if task == "upscale" and scale < 2:
        raise ConfigError(f"--scale must be at least 2 for upscale, got {scale}.")
    if iterations is not None and iterations < 1:
        raise ConfigError(f"--iterations must be at least 1, got {iterations}.")
    set_threads(threads)
    pixels = read_image(image, mode="RGB")
    hole = read_mask(mask, *pixels.shape[:2]) if mask is not None else None
    steps = DEFAULT_ITERATIONS[task] if iterations is None else iterations
    err = Console(stderr=True, highlight=False, soft_wrap=True)
    bar = Progress(
        TextColumn(f"dip {task}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TextColumn("loss {task.fields[loss]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=err,
        disable=not progress,
    )
    with bar:
        bar_task = bar.add_task("dip", total=steps, loss="-")

        def report(step: int, loss: float) -> None:
            bar.update(bar_task, completed=step, loss=f"{loss:.5f}")

        result = deep_image_prior(
            pixels,
            task,
            mask=hole,
            scale=scale,
            iterations=steps,
            seed=seed,
            device=device,
            callback=report,
        )
    command = f"pixelforge dip {image} --task {task} --iterations {steps} --seed {seed}"
    if task == "upscale":
        command += f" --scale {scale}"
    if mask is not None:
        command += f" --mask {mask}"
    meta = {
        "kind": "deep image prior",
        "task": task,
        "source": image.name,
        "iterations": steps,
        "seed": seed,
        "final_loss": result.losses[-1],
        "command": command,
    }
    if task == "upscale":
        meta["scale"] = scale
    out = result.to_uint8()
    if hole is not None:  # inpainting changes only the hole: the known pixels stay as they were
        import numpy as np

        out = np.where(hole[..., None], out, pixels)
    write_png(out_path, out, meta)
    h, w = result.image.shape[:2]
    Console(highlight=False, soft_wrap=True).print(
        f"wrote {out_path} ({w}x{h}, {steps} iterations, {result.seconds_per_iteration:.3f} "
        f"s/iteration, final loss {result.losses[-1]:.5f})"
    )


__all__ = ["dip"]
