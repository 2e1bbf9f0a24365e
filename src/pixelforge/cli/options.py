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
