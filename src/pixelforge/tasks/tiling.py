"""Full-resolution inference for fully convolutional models: padding and overlapping tiles.

:func:`run_tiled` applies a per-tile function to an image of any size and aspect ratio. The image
is padded (reflect) to the model's size multiple; an image larger than ``tile`` is cut into tiles
that overlap by ``overlap`` pixels, and the outputs are blended with linear ramps across each
overlap, so no seam shows. The output is cropped back to the image's own size times ``scale``.
A cap on output pixels turns an accidental 100-megapixel request into a clear error instead of an
out-of-memory crash; memory use grows with the tile, not with the image, apart from the output.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from contextvars import ContextVar

import torch
import torch.nn.functional as F

from pixelforge.errors import PixelforgeError

#: Largest output, in pixels, that :func:`run_tiled` produces (8192 x 8192).
MAX_OUTPUT_PIXELS = 8192 * 8192

TileFn = Callable[[torch.Tensor, torch.Tensor | None], torch.Tensor]

#: A tile layout: ``(starts, tile side, multiple)`` along one axis.
Layout = tuple[list[int], int, int]
_recorder: ContextVar[list[Layout] | None] = ContextVar("pixelforge_tile_layouts", default=None)


_reporter: ContextVar[Callable[[int, int], None] | None] = ContextVar(
    "pixelforge_tile_progress", default=None
)


@contextlib.contextmanager
def report_tiles(callback: Callable[[int, int], None]) -> Iterator[None]:
    """While active, :func:`run_tiled` calls ``callback(done, total)`` after each tile of each
    call (a progress bar for a large image)."""
    token = _reporter.set(callback)
    try:
        yield
    finally:
        _reporter.reset(token)


@contextlib.contextmanager
def record_layouts(into: list[Layout]) -> Iterator[list[Layout]]:
    """While active, :func:`run_tiled` appends to ``into`` the layout of every call: first the
    rows', then the columns' (used to gather whole-image statistics tile by tile)."""
    token = _recorder.set(into)
    try:
        yield into
    finally:
        _recorder.reset(token)


def pad_to_multiple(x: torch.Tensor, multiple: int) -> torch.Tensor:
    """``x`` (N x C x H x W) padded at the bottom and right to sides that are multiples of
    ``multiple``: reflected where the image is large enough, else replicated."""
    h, w = x.shape[-2:]
    ph, pw = (-h) % multiple, (-w) % multiple
    if ph == 0 and pw == 0:
        return x
    mode = "reflect" if ph < h and pw < w else "replicate"
    return F.pad(x, (0, pw, 0, ph), mode=mode)


def tile_starts(size: int, tile: int, overlap: int, multiple: int) -> list[int]:
    """Start offsets of tiles of side ``tile`` covering ``size`` with at least ``overlap`` shared
    pixels between neighbours; every start is a multiple of ``multiple``."""
    if size <= tile:
        return [0]
    step = max(multiple, (tile - overlap) // multiple * multiple)
    starts = list(range(0, size - tile, step))
    last = (size - tile) // multiple * multiple
    if last + tile < size:  # only when size is not a multiple; pad_to_multiple prevents this
        raise ValueError("size must be a multiple of `multiple`")
    if not starts or starts[-1] != last:
        starts.append(last)
    return starts


def _ramp(length: int, lead: int, trail: int) -> torch.Tensor:
    """Blend weights along one axis of a tile: rising over ``lead`` pixels, falling over
    ``trail`` (0 at an image border: full weight up to the edge). The outer half of each
    overlap gets weight 0: there the tile's own border (zero padding) still shows. Outputs are
    exact when the model's receptive radius is at most half the overlap."""

    def rise(n: int) -> torch.Tensor:
        dead = n // 2
        k = torch.arange(n, dtype=torch.float32) - dead + 1
        return (k / (n - dead + 1)).clamp(0.0, 1.0)

    w = torch.ones(length)
    if lead > 0:
        w[:lead] = rise(lead)
    if trail > 0:
        w[length - trail :] = rise(trail).flip(0)
    return w


def check_output_size(height: int, width: int, scale: int = 1) -> None:
    """Raise a :class:`PixelforgeError` when the output of a ``height x width`` input would
    exceed :data:`MAX_OUTPUT_PIXELS`."""
    oh, ow = height * scale, width * scale
    if oh * ow > MAX_OUTPUT_PIXELS:
        raise PixelforgeError(
            f"the output would be {ow}x{oh} pixels, above the limit of {MAX_OUTPUT_PIXELS:,} "
            "pixels; resize the input first or use a smaller --scale."
        )


def run_tiled(
    fn: TileFn,
    x: torch.Tensor,
    *,
    mask: torch.Tensor | None = None,
    scale: int = 1,
    multiple: int = 1,
    tile: int = 512,
    overlap: int = 32,
    holes_only: bool = False,
) -> torch.Tensor:
    """Apply ``fn(x_tile, mask_tile)`` over ``x`` (N x C x H x W) and return the blended output
    (N x C' x H*scale x W*scale, float32 on the CPU).

    ``fn`` receives tiles whose sides are multiples of ``multiple`` and must return them scaled
    by ``scale``. ``mask`` (N x 1 x H x W), if given, is cut into the same tiles. ``tile`` is the
    largest tile side in input pixels (rounded down to ``multiple``); ``overlap`` is how many
    input pixels neighbouring tiles share. ``holes_only`` (with a mask): a tile without a hole
    pixel is not run, its input stands for its output; for a model whose known pixels are put
    back afterwards (inpainting) the result is the same, and a small hole in a large photo costs
    only the tiles around it.
    """
    if x.ndim != 4:
        raise ValueError("x must be N x C x H x W")
    if multiple < 1 or scale < 1:
        raise ValueError("multiple and scale must be >= 1")
    h, w = x.shape[-2:]
    check_output_size(h, w, scale)
    tile = max(multiple, tile // multiple * multiple)
    overlap = min(max(0, overlap), tile // 2)
    xp = pad_to_multiple(x, multiple)
    mp = None if mask is None else pad_to_multiple(mask, multiple)
    hp, wp = xp.shape[-2:]
    ys = tile_starts(hp, tile, overlap, multiple)
    xs = tile_starts(wp, tile, overlap, multiple)
    th, tw = min(tile, hp), min(tile, wp)
    recording = _recorder.get()
    if recording is not None:
        recording += [(ys, th, multiple), (xs, tw, multiple)]
    report = _reporter.get()
    if len(ys) == 1 and len(xs) == 1:
        out = fn(xp, mp).float().cpu()
        if report is not None:
            report(1, 1)
        return out[..., : h * scale, : w * scale]
    acc: torch.Tensor | None = None
    weight = torch.zeros(1, 1, hp * scale, wp * scale)
    for i, y0 in enumerate(ys):
        for j, x0 in enumerate(xs):
            crop = xp[..., y0 : y0 + th, x0 : x0 + tw]
            mcrop = None if mp is None else mp[..., y0 : y0 + th, x0 : x0 + tw]
            if holes_only and mcrop is not None and not bool((mcrop > 0.5).any()):
                y = crop.float().cpu()
            else:
                y = fn(crop, mcrop).float().cpu()
            if acc is None:
                acc = torch.zeros(x.shape[0], y.shape[1], hp * scale, wp * scale)
            # overlap with the previous / next tile along each axis (0 at the image border)
            top = 0 if i == 0 else (ys[i - 1] + th - y0) * scale
            bottom = 0 if i == len(ys) - 1 else (y0 + th - ys[i + 1]) * scale
            left = 0 if j == 0 else (xs[j - 1] + tw - x0) * scale
            right = 0 if j == len(xs) - 1 else (x0 + tw - xs[j + 1]) * scale
            wy = _ramp(th * scale, top, bottom)
            wx = _ramp(tw * scale, left, right)
            wt = (wy[:, None] * wx[None, :])[None, None]
            sy, sx = slice(y0 * scale, (y0 + th) * scale), slice(x0 * scale, (x0 + tw) * scale)
            acc[..., sy, sx] += y * wt
            weight[..., sy, sx] += wt
            if report is not None:
                report(i * len(xs) + j + 1, len(ys) * len(xs))
    assert acc is not None
    return (acc / weight)[..., : h * scale, : w * scale]
