"""`pixelforge dip ...`: argument parsing for the deep image prior (work:
:mod:`pixelforge.restoration.dip`)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from pixelforge.cli.options import Threads, set_threads
from pixelforge.errors import ConfigError

#: a run expected to take longer than this (seconds, from its first iteration) is announced
LONG_RUN = 600.0


def _duration(seconds: float) -> str:
    return f"{seconds / 3600:.1f} hours" if seconds >= 3600 else f"{seconds / 60:.0f} minutes"


def dip(
    image: Annotated[Path, typer.Argument(help="The one image to restore (PNG, JPEG, ...).")],
    out: Annotated[
        str,  # a string: a trailing "/" (a folder to write into) is kept
        typer.Option(
            "--out", help="The PNG to write (ending in / or an existing folder: written into it)."
        ),
    ],
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
    scale: Annotated[
        int | None, typer.Option(help="Upscale: output side = scale x input side (default 4).")
    ] = None,
    iterations: Annotated[
        int | None,
        typer.Option(
            help="Optimisation steps (default: denoise 2000, inpaint 5000, upscale 2000); each "
            "takes about 0.5 s per 0.15 megapixels (of the output) on one CPU thread."
        ),
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of the network weights and input noise.")] = 0,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda or mps.")] = "auto",
    threads: Threads = None,
    progress: Annotated[bool, typer.Option(help="Show a progress bar with the loss.")] = True,
) -> int:
    """Denoise, inpaint or upscale ONE image with a deep image prior (no training data). Grey
    stays grey and transparency is kept (inpaint: composited over white). Ctrl-C stops after
    the current iteration and writes the result so far."""
    from pixelforge.io.images import write_png
    from pixelforge.restoration.dip import DEFAULT_ITERATIONS, TASKS, dip_image, read_mask
    from pixelforge.tasks.generate import command_line, provenance
    from pixelforge.tasks.image2image import input_output_pairs, read_as_tensor

    if task not in TASKS:
        raise ConfigError(f"unknown --task {task!r}; use one of {', '.join(TASKS)}.")
    if task == "inpaint" and mask is None:
        raise ConfigError("--task inpaint needs --mask MASK.png (white = hole to fill).")
    if task != "inpaint" and mask is not None:
        raise ConfigError(f"--mask goes with --task inpaint only, not {task}; leave it out.")
    if task != "upscale" and scale is not None:
        raise ConfigError(f"--scale goes with --task upscale only, not {task}; leave it out.")
    scale = 4 if scale is None else scale
    if task == "upscale" and scale < 2:
        raise ConfigError(f"--scale must be at least 2 for upscale, got {scale}.")
    if iterations is not None and iterations < 1:
        raise ConfigError(f"--iterations must be at least 1, got {iterations}.")
    if image.is_dir():
        raise ConfigError(
            f"{image} is a folder; dip restores one image at a time (minutes to hours each): "
            "give an image file."
        )
    set_threads(threads)
    pixels = read_as_tensor(image, mode="RGB" if task == "inpaint" else "RGBA")
    ((_, out_path),) = input_output_pairs(image, out)  # after the reader's word on the image
    hole = read_mask(mask, *pixels.shape[1:]) if mask is not None else None
    steps = DEFAULT_ITERATIONS[task] if iterations is None else iterations
    err = Console(stderr=True, highlight=False, soft_wrap=True)
    bar = Progress(  # on a terminal only, as the restoration commands: piped output stays clean
        TextColumn(f"dip {task}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TextColumn("loss {task.fields[loss]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=err,
        disable=not progress or not err.is_terminal,
    )
    bar_task = bar.add_task("dip", total=steps, loss="-")
    first_done = 0.0  # when the first iteration (slower: warm-up) ended

    def report(step: int, loss: float) -> None:
        nonlocal first_done
        if step == 1:  # shown from here: an input refused before any work gets its error only
            bar.start()
            first_done = time.perf_counter()
        bar.update(bar_task, completed=step, loss=f"{loss:.5f}")
        expected = (time.perf_counter() - first_done) * steps
        if step == 2 and expected > LONG_RUN:  # say so early, with or without the bar
            err.print(
                f"dip {task}: {steps} iterations will take about {_duration(expected)} here "
                "(time grows with the pixel count); Ctrl-C stops after the current one and "
                "writes the result so far."
            )

    try:
        restored, result = dip_image(
            pixels,
            task,
            mask=hole,
            scale=scale,
            iterations=steps,
            seed=seed,
            device=device,
            callback=report,
        )
    finally:
        bar.stop()
    done = len(result.losses)  # fewer than steps after Ctrl-C: the same seed and done redo it
    command = f"pixelforge dip {image} --task {task} --iterations {done} --seed {seed}"
    if task == "upscale":
        command += f" --scale {scale}"
    if mask is not None:
        command += f" --mask {mask}"
    # stopped early, the line typed did not make this image: record the one that makes it again
    if not result.interrupted:
        command = command_line(command)
    # no model: the network is fitted to this image from random weights (seeded)
    meta = provenance(
        None, command, kind="deep image prior", task=task, source=image.name,
        iterations=done, seed=seed, final_loss=result.losses[-1],
    )  # fmt: skip
    if mask is not None:
        meta["mask"] = mask.name
    if task == "upscale":
        meta["scale"] = scale
    if result.interrupted:
        meta["interrupted"] = f"after {done} of {steps} iterations"
    write_png(out_path, restored, meta)
    h, w = restored.shape[1:]
    Console(highlight=False, soft_wrap=True).print(
        f"wrote {out_path} ({w}x{h}, {done} iterations, {result.seconds_per_iteration:.3f} "
        f"s/iteration, final loss {result.losses[-1]:.5f})"
    )
    if result.interrupted:
        from pixelforge.errors import Interrupted

        raise Interrupted(
            f"interrupted after {done} of {steps} iterations: {out_path} is the result so far"
        )
    return 0


__all__ = ["dip"]
