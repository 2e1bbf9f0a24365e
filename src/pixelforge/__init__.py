"""pixelforge: train, run and evaluate generative imaging models.

>>> import pixelforge
>>> model = pixelforge.load("runs/digits")          # a model dir, run dir or shipped model name
>>> images = model.sample(16, seed=0)               # N x C x H x W floats in [0, 1]
"""

from pixelforge.api import dip, list_models, remove_bg, restore, train, translate
from pixelforge.errors import PixelforgeError
from pixelforge.hub import load, save_model
from pixelforge.version import __version__

__all__ = [
    "PixelforgeError",
    "__version__",
    "dip",
    "list_models",
    "load",
    "remove_bg",
    "restore",
    "save_model",
    "stylize",
    "train",
    "translate",
]


def __getattr__(name: str) -> object:
    # pixelforge.stylize (tasks/stylize.py) is imported on first use: it loads every family
    if name == "stylize":
        from pixelforge.tasks.stylize import stylize

        return stylize
    raise AttributeError(f"module 'pixelforge' has no attribute '{name}'")
