"""Command-line options shared by several commands."""

from __future__ import annotations

from typing import Annotated

import typer

AllowPickle = Annotated[
    bool,
    typer.Option("--allow-pickle", help="Read the pickled .pth (only if you trust its source)."),
]
Force = Annotated[
    bool, typer.Option("--force", help="Replace --out if it exists and is not empty.")
]
Threads = Annotated[int | None, typer.Option(help="CPU threads for torch (default: torch's).")]


def set_threads(threads: int | None) -> None:
    """Apply ``--threads`` (None: torch's default); below 1 is a user error."""
    if threads is not None:
        if threads < 1:
            from pixelforge.errors import ConfigError

            raise ConfigError(f"--threads must be at least 1, got {threads}.")
        import torch

        torch.set_num_threads(threads)
