"""Pictures made from tensors and numbers: image grids and simple line plots (PIL only)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont


def make_grid(
    images: torch.Tensor, *, nrow: int | None = None, padding: int = 2, pad_value: float = 1.0
) -> np.ndarray:
    """Tile N x C x H x W images in [0, 1] into one H' x W' x C uint8 array."""
    if images.ndim != 4:
        raise ValueError(f"expected N x C x H x W images, got shape {tuple(images.shape)}")
    n, c, h, w = images.shape
    nrow = nrow or math.ceil(math.sqrt(n))
    ncol_rows = math.ceil(n / nrow)
    grid = torch.full(
        (c, ncol_rows * (h + padding) + padding, nrow * (w + padding) + padding), pad_value
    )
    for i in range(n):
        r, col = divmod(i, nrow)
        y, x = padding + r * (h + padding), padding + col * (w + padding)
        grid[:, y : y + h, x : x + w] = images[i].float().clamp(0, 1)
    arr = (grid * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()
    return np.ascontiguousarray(arr)


def upscale_nearest(image: np.ndarray, factor: int) -> np.ndarray:
    """Enlarge an H x W x C uint8 array by an integer factor without blurring it."""
    if factor <= 1:
        return image
    return np.ascontiguousarray(image.repeat(factor, axis=0).repeat(factor, axis=1))


_COLORS = [(31, 119, 180), (214, 39, 40), (44, 160, 44), (148, 103, 189), (255, 127, 14)]


def line_plot(
    series: Mapping[str, Sequence[tuple[float, float]]],
    *,
    title: str = "",
    xlabel: str = "step",
    size: tuple[int, int] = (720, 420),
) -> Image.Image:
    """A plain line plot of named (x, y) series, with axes, tick labels and a legend."""
    width, height = size
    left, right, top, bottom = 70, 20, 36, 50
    img = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(img)
    font = ImageFont.load_default()
    points = [p for s in series.values() for p in s if math.isfinite(p[1])]
    if not points:
        draw.text((left, top), "no data", fill="black", font=font)
        return img
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    x0, x1 = min(xs), max(xs) if max(xs) > min(xs) else min(xs) + 1
    y0, y1 = min(ys), max(ys)
    if y1 - y0 < 1e-12:
        y0, y1 = y0 - 1, y1 + 1
    pad = 0.05 * (y1 - y0)
    y0, y1 = y0 - pad, y1 + pad

    def to_px(x: float, y: float) -> tuple[float, float]:
        px = left + (x - x0) / (x1 - x0) * (width - left - right)
        py = top + (1 - (y - y0) / (y1 - y0)) * (height - top - bottom)
        return px, py

    draw.rectangle([left, top, width - right, height - bottom], outline="black")
    for i in range(5):
        yv = y0 + (y1 - y0) * i / 4
        _, py = to_px(x0, yv)
        draw.line([left - 4, py, left, py], fill="black")
        draw.text((4, py - 6), f"{yv:.3g}", fill="black", font=font)
        xv = x0 + (x1 - x0) * i / 4
        px, _ = to_px(xv, y0)
        draw.line([px, height - bottom, px, height - bottom + 4], fill="black")
        draw.text((px - 12, height - bottom + 8), f"{xv:.0f}", fill="black", font=font)
    draw.text(((width - len(xlabel) * 6) / 2, height - 18), xlabel, fill="black", font=font)
    if title:
        draw.text((left, 10), title, fill="black", font=font)
    for k, (name, s) in enumerate(series.items()):
        color = _COLORS[k % len(_COLORS)]
        pts = [to_px(x, y) for x, y in s if math.isfinite(y)]
        if len(pts) > 1:
            draw.line(pts, fill=color, width=2)
        lx = width - right - 150
        ly = top + 8 + 16 * k
        draw.line([lx, ly + 6, lx + 20, ly + 6], fill=color, width=3)
        draw.text((lx + 26, ly), name, fill="black", font=font)
    return img
