"""Sampling from a loaded generator and writing the results with provenance."""

from __future__ import annotations

import inspect
import shlex
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any

import torch

from pixelforge.errors import ConfigError
from pixelforge.io.images import write_png
from pixelforge.models.base import ImageGenerator
from pixelforge.version import __version__
from pixelforge.viz import make_grid

MAX_SAMPLES = 10_000


def sample_images(
    model: torch.nn.Module,
    n: int,
    *,
    seed: int = 0,
    class_label: int | None = None,
    **sampler_options: Any,
) -> torch.Tensor:
    """``n`` images in [0, 1] (N x C x H x W, CPU) from ``model``.

    ``sampler_options`` (``sampler``, ``steps``, ``guidance``; ``truncation`` for StyleGAN) go to
    models whose ``sample`` takes them; any other model refuses them with a clear error.
    """
    if not isinstance(model, ImageGenerator):
        raise ConfigError(
            f"a {getattr(model, 'family', type(model).__name__)} model does not sample from "
            f"noise{_commands_for(model)}."
        )
    if not 1 <= n <= MAX_SAMPLES:
        raise ConfigError(f"--n must be between 1 and {MAX_SAMPLES}, got {n}.")
    accepted = inspect.signature(model.sample).parameters
    unknown = [k for k in sampler_options if k not in accepted]
    if "truncation" in unknown:
        raise ConfigError(f"--truncation needs a stylegan model, got a {model.family} model.")
    if unknown:
        flags = ", ".join("--" + k for k in unknown)
        raise ConfigError(
            f"a {model.family} model takes no {flags}: those options are for diffusion models."
        )
    images: torch.Tensor = model.sample(n, seed=seed, class_label=class_label, **sampler_options)
    return images


def _commands_for(model: torch.nn.Module) -> str:
    """Where an image-to-image model is used instead: ": it works on images; run it with
    `pixelforge inpaint` or `pixelforge uncrop` and --model", or ""."""
    from pixelforge.tasks.restore import commands_for

    commands = commands_for(model)
    return f": it works on images; run it with {commands} and --model" if commands else ""


#: the arguments of the command line being run (set by the CLI for the time of one command)
_ARGV: ContextVar[tuple[str, ...] | None] = ContextVar("pixelforge_argv", default=None)


@contextmanager
def running_command(argv: Sequence[object]) -> Iterator[None]:
    """Within it, :func:`command_line` is ``pixelforge`` and ``argv`` (the CLI's arguments)."""
    token = _ARGV.set(tuple(str(a) for a in argv))
    try:
        yield
    finally:
        _ARGV.reset(token)


def command_line(fallback: str) -> str:
    """The command line being run as the user typed it, less ``--out`` and its value (an
    image's provenance names no output path: the same image is the same bytes wherever it is
    written); ``fallback`` when pixelforge is called from Python rather than the CLI."""
    argv = _ARGV.get()
    if argv is None:
        return fallback
    kept: list[str] = []
    skip = False
    for arg in argv:
        if skip:
            skip = False
        elif arg == "--out":
            skip = True
        elif not arg.startswith("--out="):
            kept.append(arg)
    return shlex.join(["pixelforge", *kept])


def provenance(model: torch.nn.Module | None, command: str, /, **fields: Any) -> dict[str, Any]:
    """The provenance stored in every generated PNG (no output paths, no timestamps): the
    model's family and weights' SHA-256 (None without a model), the pixelforge version,
    ``command`` and ``fields`` (the model's name, the input file, the options that change the
    pixels)."""
    return {
        "family": getattr(model, "family", None),
        "model_sha256": getattr(model, "model_sha256", None),
        "pixelforge_version": __version__,
        "command": command,
        **fields,
    }


def save_samples(images: torch.Tensor, out: str | Path, meta: dict[str, Any]) -> list[Path]:
    """``out`` ending in .png: one grid (a single sample: the image itself, unpadded).
    Otherwise a folder with one PNG per sample."""
    target = Path(out)
    if target.suffix.lower() == ".png":
        write_png(target, images[0] if images.shape[0] == 1 else make_grid(images), meta)
        return [target]
    if target.suffix:
        raise ConfigError(
            f"--out must end in .png (one grid) or be a folder, got '{out}': every image "
            f"pixelforge writes is a PNG, so use {target.with_suffix('.png')}."
        )
    written = []
    for i, img in enumerate(images):
        path = target / f"sample-{i:05d}.png"
        write_png(path, img, {**meta, "index": i})
        written.append(path)
    return written
