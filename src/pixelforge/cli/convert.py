"""`pixelforge export ...` and `pixelforge import ...`: argument parsing for model conversion
(the work is in :mod:`pixelforge.tasks.diffusers_io`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from pixelforge.cli.fast_style_import import import_fast_style
from pixelforge.cli.junyanz import import_junyanz

export_app = typer.Typer(
    help="Export a pixelforge model to another library's format.", no_args_is_help=True
)
import_app = typer.Typer(
    help="Import a model from another library's format as a pixelforge model dir.",
    no_args_is_help=True,
)
import_app.command("junyanz")(import_junyanz)
import_app.command("fast-style")(import_fast_style)


def _console() -> Console:
    return Console(highlight=False, soft_wrap=True)


@export_app.command("diffusers")
def export_diffusers_cmd(
    model: Annotated[
        str, typer.Argument(help="A diffusion model: model dir, run dir or shipped model name.")
    ],
    out_dir: Annotated[
        Path, typer.Argument(help="Folder to write (unet/, scheduler/, model_index.json, ...).")
    ],
    force: Annotated[
        bool, typer.Option("--force", help="Replace OUT if it exists and is not empty.")
    ] = False,
) -> None:
    """Write MODEL as a diffusers folder: a DDPMPipeline, or a UNet2DModel for a
    class-conditional model (see OUT/README.md)."""
    from pixelforge.hub import load
    from pixelforge.tasks.diffusers_io import check_target, export_diffusers

    check_target(out_dir, force=force)  # before loading anything
    m = load(model)
    export_diffusers(m, out_dir, force=force, source=model)  # type: ignore[arg-type]
    kind = "UNet2DModel (class-conditional)" if getattr(m, "num_classes", 0) else "DDPMPipeline"
    _console().print(f"wrote {out_dir} (diffusers {kind})")


@import_app.command("diffusers")
def import_diffusers_cmd(
    folder: Annotated[
        Path, typer.Argument(help="A diffusers pipeline folder (with unet/) or a UNet folder.")
    ],
    out_dir: Annotated[Path, typer.Option("--out", help="The pixelforge model dir to write.")],
    allow_pickle: Annotated[
        bool,
        typer.Option(
            "--allow-pickle",
            help="Read a pickled diffusion_pytorch_model.bin (only if you trust its source).",
        ),
    ] = False,
    force: Annotated[
        bool, typer.Option("--force", help="Replace --out if it exists and is not empty.")
    ] = False,
) -> None:
    """Convert a diffusers UNet2DModel folder into a pixelforge diffusion model dir."""
    from pixelforge.tasks.diffusers_io import import_to_model_dir

    model, out = import_to_model_dir(folder, out_dir, allow_pickle=allow_pickle, force=force)
    c = model.config
    what = f"{c.num_classes} classes" if c.num_classes else "unconditional"
    _console().print(
        f"wrote {out} (diffusion, {c.image_size}x{c.image_size}x{c.channels}, {what}, "
        f"{c.prediction}, {c.beta_schedule}, T={c.num_train_timesteps})"
    )


__all__ = ["export_app", "import_app"]
