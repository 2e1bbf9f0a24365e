"""Writing the lab's pictures: strips and grids as PNG (with provenance) or animated GIF."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import torch

from pixelforge.errors import ConfigError
from pixelforge.io.atomic import atomic_write_bytes
from pixelforge.io.images import to_pil, write_png
from pixelforge.viz import make_grid, upscale_nearest


def save_frames(
    images: torch.Tensor,
    out: str | Path,
    meta: dict[str, Any],
    *,
    nrow: int | None = None,
    zoom: int = 1,
    frame_ms: int = 120,
) -> Path:
    """``out`` ending in .png: the frames in a row (or ``nrow`` per row) with provenance.

    ``out`` ending in .gif: an animated GIF, one frame per image, looping (GIF has no provenance
    chunk). ``zoom`` enlarges pixels without blurring.
    """
    target = Path(out)
    suffix = target.suffix.lower()
    if zoom < 1:
        raise ConfigError(f"--zoom must be at least 1, got {zoom}.")
    if suffix == ".png":
        grid = make_grid(images, nrow=nrow or images.shape[0])
        write_png(target, upscale_nearest(grid, zoom), meta)
        return target
    if suffix == ".gif":
        frames = [
            to_pil(upscale_nearest(make_grid(img[None], nrow=1, padding=0), zoom)) for img in images
        ]
        frames = [f.convert("RGB") for f in frames]
        buffer = io.BytesIO()
        frames[0].save(
            buffer, format="GIF", save_all=True, append_images=frames[1:], duration=frame_ms, loop=0
        )
        atomic_write_bytes(target, buffer.getvalue())
        return target
    raise ConfigError(f"--out must end in .png (a strip) or .gif (an animation), got '{out}'.")
