"""``python -m pixelforge`` (used by torchrun and accelerate launch)."""

from pixelforge.cli.main import entry

entry()
