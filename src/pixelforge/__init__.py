"""pixelforge: train, run and evaluate generative imaging models."""

from pixelforge.version import __version__

__all__ = ["__version__"]
