"""`pixelforge import junyanz`: argument parsing for importing pytorch-CycleGAN-and-pix2pix
generators (the work is in :mod:`pixelforge.tasks.junyanz`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from pixelforge.cli.options import AllowPickle, Force


def import_junyanz(
    file: Annotated[
        Path | None,
        typer.Argument(
            help="A generator file: latest_net_G.pth (pix2pix), latest_net_G_A.pth or a "
            "pretrained download such as horse2zebra.pth (CycleGAN A->B)."
        ),
    ] = None,
    out_dir: Annotated[Path | None, typer.Option("--out", help="The model dir to write.")] = None,
    g_ab: Annotated[
        Path | None,
        typer.Option("--g-ab", help="CycleGAN: their G_A file (A->B), with or instead of FILE."),
    ] = None,
    g_ba: Annotated[
        Path | None, typer.Option("--g-ba", help="CycleGAN: their G_B file (B->A).")
    ] = None,
    direction: Annotated[
        str | None,
        typer.Option(
            help="For one ResNet FILE: the direction it translates, AtoB (G_A) or BtoA (G_B); "
            "default: BtoA for a file named *G_B.pth, else AtoB."
        ),
    ] = None,
    netg: Annotated[
        str | None,
        typer.Option(
            "--netG",
            help="resnet_9blocks, resnet_6blocks, unet_256 or unet_128 (checked; read from the "
            "file when left out).",
        ),
    ] = None,
    norm: Annotated[
        str | None,
        typer.Option(help="batch or instance, as trained (checked; read from the file)."),
    ] = None,
    no_dropout: Annotated[
        bool, typer.Option("--no-dropout", help="The generator was trained with --no_dropout.")
    ] = False,
    bn_stats: Annotated[
        str,
        typer.Option(
            "--bn-stats",
            help="Batch-norm generators: image (each image's own statistics, as their test.py "
            "runs them and the pix2pix paper tests) or running (the running averages, as with "
            "their --eval).",
        ),
    ] = "image",
    allow_pickle: AllowPickle = False,
    force: Force = False,
) -> None:
    """Convert pytorch-CycleGAN-and-pix2pix generators into a pix2pix (unet_*) or cyclegan
    (resnet_*) model dir."""
    from pixelforge.errors import ConfigError
    from pixelforge.tasks.junyanz import import_to_model_dir

    if out_dir is None:
        raise ConfigError("give --out, the model dir to write.")
    model, out = import_to_model_dir(
        out_dir, force=force, file=file, g_ab=g_ab, g_ba=g_ba, direction=direction, netg=netg,
        norm=norm, dropout=False if no_dropout else None, bn_stats=bn_stats,
        allow_pickle=allow_pickle,
    )  # fmt: skip
    c = model.config
    what = (
        f"generators {getattr(c, 'generators', 'AtoB')}" if model.family == "cyclegan" else "A->B"
    )
    Console(highlight=False, soft_wrap=True).print(
        f"wrote {out} ({model.family}, {model.in_channels}->{model.out_channels} channels, "
        f"{c.norm} norm, {what})"
    )
