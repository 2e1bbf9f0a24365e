"""Procedural style images, drawn deterministically from a seed at any size (no downloads).

The machine pixelforge runs on may have no paintings, so ``--style builtin:NAME`` draws one:

- ``mosaic``: stained glass - Voronoi cells of mixed sizes in a saturated palette, shaded inside,
  with dark leading lines between them.
- ``strokes``: short thick brush strokes that follow a swirling flow field, in a Van-Gogh-like
  palette of deep blues and yellows (large strokes first, then smaller ones on top).
- ``pointillism``: dense coloured dots whose hue follows a smooth landscape-like field.
- ``cubist``: overlapping translucent angular polygons in ochres, greys and browns with dark
  outlines.

Each has texture at several scales and a clear palette, so Gram statistics carry a strong style.
The same ``(name, size, seed)`` always gives the same pixels. Sizes are relative to the image,
so a style looks alike at 128 and at 1024 pixels.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from pixelforge.errors import ConfigError

Size = tuple[int, int]  # (height, width)

PREFIX = "builtin:"


def _palette(hexes: str) -> np.ndarray:
    return np.array([[int(h[i : i + 2], 16) for i in (0, 2, 4)] for h in hexes.split()], float)


_MOSAIC = _palette("c1121f 1d4ed8 f59e0b 059669 7c3aed ea580c 0ea5e9 facc15 be185d 16a34a")
_STROKES = _palette("0b1d51 1e3a8a 2563eb 3b82f6 93c5fd facc15 fde047 eab308 f8fafc 164e63")
_POINTS = _palette("1e40af 0891b2 16a34a 65a30d facc15 f97316 dc2626 db2777 f5f5f4")
_CUBIST = _palette("b45309 92400e d97706 78716c 44403c a8a29e 57534e ca8a04 1c1917 7f1d1d")


def _smooth_field(rng: np.random.Generator, size: Size, waves: int = 6) -> np.ndarray:
    """A smooth field in [0, 1]: a sum of random low-frequency sinusoids."""
    h, w = size
    yy, xx = np.mgrid[0:h, 0:w].astype(float)
    yy, xx = yy / max(h, w), xx / max(h, w)
    f = np.zeros((h, w))
    for _ in range(waves):
        k = rng.uniform(1.0, 5.0) * 2 * np.pi
        a = rng.uniform(0, 2 * np.pi)
        f += np.sin(k * (np.cos(a) * xx + np.sin(a) * yy) + rng.uniform(0, 2 * np.pi))
    return (f - f.min()) / max(float(np.ptp(f)), 1e-9)


def _nearest_two(points: np.ndarray, size: Size) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Index of the nearest point, its distance and the second-nearest distance per pixel."""
    h, w = size
    yy, xx = np.mgrid[0:h, 0:w]
    coords = np.stack([yy.ravel(), xx.ravel()], axis=1).astype(np.float32)
    idx = np.empty(h * w, np.int64)
    d1 = np.empty(h * w, np.float32)
    d2 = np.empty(h * w, np.float32)
    pts = points.astype(np.float32)
    chunk = max(1, 4_000_000 // max(len(pts), 1))
    for s in range(0, h * w, chunk):
        d = ((coords[s : s + chunk, None, :] - pts[None]) ** 2).sum(-1)
        two = np.argpartition(d, 1, axis=1)[:, :2]
        dd = np.take_along_axis(d, two, axis=1)
        first = dd[:, 0] <= dd[:, 1]
        idx[s : s + chunk] = np.where(first, two[:, 0], two[:, 1])
        d1[s : s + chunk] = np.sqrt(np.minimum(dd[:, 0], dd[:, 1]))
        d2[s : s + chunk] = np.sqrt(np.maximum(dd[:, 0], dd[:, 1]))
    return idx.reshape(h, w), d1.reshape(h, w), d2.reshape(h, w)


def mosaic(size: Size, seed: int = 0) -> np.ndarray:
    """Stained glass: Voronoi cells (large and small) with dark leading lines."""
    rng = np.random.default_rng(seed)
    h, w = size
    side = max(h, w)
    n_big = max(8, round(60 * h * w / 256**2))
    n_small = max(8, round(120 * h * w / 256**2))
    big = rng.uniform(0, 1, (n_big, 2)) * [h, w]
    # small cells cluster in a few places: texture at a second scale
    centres = rng.uniform(0, 1, (4, 2)) * [h, w]
    small = centres[rng.integers(0, 4, n_small)] + rng.normal(0, side / 8, (n_small, 2))
    points = np.concatenate([big, np.clip(small, 0, [h - 1, w - 1])])
    idx, d1, d2 = _nearest_two(points, size)
    colours = _MOSAIC[rng.integers(0, len(_MOSAIC), len(points))]
    image = colours[idx]
    # glass shading: lighter toward the cell centre, plus a fine mottled grain
    shade = np.clip(1.15 - d1 / (side / 14), 0.65, 1.15)
    grain = _smooth_field(rng, size, waves=24) * 0.25 + 0.875
    image = image * shade[..., None] * grain[..., None]
    lead = np.clip((d2 - d1) / max(1.5, side / 160), 0, 1)  # 0 on the border between two cells
    image = image * lead[..., None] + 20 * (1 - lead[..., None])
    return np.clip(image, 0, 255).astype(np.uint8)


def strokes(size: Size, seed: int = 0) -> np.ndarray:
    """Swirling brush strokes in blues and yellows (Van-Gogh-like)."""
    rng = np.random.default_rng(seed)
    h, w = size
    side = max(h, w)
    im = Image.new("RGB", (w, h), (14, 30, 80))
    draw = ImageDraw.Draw(im)
    swirls = rng.uniform(0, 1, (5, 2)) * [w, h]
    spin = rng.choice([-1.0, 1.0], 5)
    bright = _smooth_field(rng, size, waves=5)  # where the yellows go

    def angle(x: float, y: float) -> float:
        vx, vy = 1.0, 0.3  # a gentle drift ...
        for (cx, cy), s in zip(swirls, spin, strict=True):  # ... plus vortices around centres
            dx, dy = x - cx, y - cy
            r2 = dx * dx + dy * dy + (side / 20) ** 2
            g = s * (side / 3) ** 2 / r2
            vx, vy = vx - g * dy / side * 4, vy + g * dx / side * 4
        return float(np.arctan2(vy, vx))

    for scale, count in ((1.0, 900), (0.55, 2200), (0.3, 3500)):
        n = max(50, round(count * h * w / 256**2))
        length, width = side * 0.05 * scale, max(1, round(side * 0.018 * scale))
        for _ in range(n):
            x, y = rng.uniform(0, w), rng.uniform(0, h)
            t = bright[min(int(y), h - 1), min(int(x), w - 1)]
            if rng.uniform() < t**2 * 1.6:
                base = _STROKES[rng.integers(5, 9)]  # yellows and white
            else:
                base = _STROKES[rng.choice([0, 1, 2, 3, 4, 9])]
            colour = tuple(int(c) for c in np.clip(base + rng.normal(0, 14, 3), 0, 255))
            # a short curved stroke: three segments along the flow
            pts = [(x, y)]
            for _ in range(3):
                a = angle(x, y)
                x, y = x + np.cos(a) * length / 3, y + np.sin(a) * length / 3
                pts.append((x, y))
            draw.line(pts, fill=colour, width=width, joint="curve")
    return np.asarray(im, dtype=np.uint8).copy()


def pointillism(size: Size, seed: int = 0) -> np.ndarray:
    """Dense coloured dots; their hue follows a smooth landscape-like field."""
    rng = np.random.default_rng(seed)
    h, w = size
    side = max(h, w)
    im = Image.new("RGB", (w, h), (245, 240, 225))
    draw = ImageDraw.Draw(im)
    field = _smooth_field(rng, size, waves=4)
    yy = np.linspace(0, 1, h)[:, None]
    field = 0.6 * field + 0.4 * yy  # bands from top to bottom, like sky over land
    for scale, count in ((1.0, 2500), (0.6, 6000), (0.35, 9000)):
        n = max(100, round(count * h * w / 256**2))
        r = max(1.0, side * 0.008 * scale)
        xs, ys = rng.uniform(0, w, n), rng.uniform(0, h, n)
        for x, y in zip(xs, ys, strict=True):
            v = field[min(int(y), h - 1), min(int(x), w - 1)]
            k = int(np.clip(v * (len(_POINTS) - 1) + rng.normal(0, 1.1), 0, len(_POINTS) - 1))
            colour = tuple(int(c) for c in np.clip(_POINTS[k] + rng.normal(0, 12, 3), 0, 255))
            rr = r * rng.uniform(0.7, 1.3)
            draw.ellipse((x - rr, y - rr, x + rr, y + rr), fill=colour)
    return np.asarray(im, dtype=np.uint8).copy()


def cubist(size: Size, seed: int = 0) -> np.ndarray:
    """Overlapping translucent angular polygons in ochres and greys with dark outlines."""
    rng = np.random.default_rng(seed)
    h, w = size
    side = max(h, w)
    im = Image.new("RGBA", (w, h), (120, 100, 80, 255))
    for scale, count in ((1.0, 40), (0.5, 90), (0.25, 160)):
        n = max(6, round(count * h * w / 256**2))
        for _ in range(n):
            layer = Image.new("RGBA", (w, h), (0, 0, 0, 0))
            draw = ImageDraw.Draw(layer)
            cx, cy = rng.uniform(0, w), rng.uniform(0, h)
            k = int(rng.integers(3, 6))
            angles = np.sort(rng.uniform(0, 2 * np.pi, k))
            radii = side * 0.15 * scale * rng.uniform(0.5, 1.5, k)
            pts = [
                (cx + r * np.cos(a), cy + r * np.sin(a)) for a, r in zip(angles, radii, strict=True)
            ]
            c = _CUBIST[rng.integers(0, len(_CUBIST))]
            fill = (*(int(v) for v in c), int(rng.uniform(110, 200)))
            draw.polygon(pts, fill=fill)
            outline = max(1, round(side * 0.006 * scale))
            draw.line([*pts, pts[0]], fill=(25, 20, 15, 230), width=outline)
            im = Image.alpha_composite(im, layer)
    rgb = im.convert("RGB").filter(ImageFilter.DETAIL)
    return np.asarray(rgb, dtype=np.uint8).copy()


#: name -> (drawing function, one-line description)
BUILTIN_STYLES: dict[str, tuple[Callable[[Size, int], np.ndarray], str]] = {
    "mosaic": (mosaic, "stained glass: saturated Voronoi cells with dark leading lines"),
    "strokes": (strokes, "swirling thick brush strokes in blues and yellows (Van-Gogh-like)"),
    "pointillism": (pointillism, "dense coloured dots following a smooth landscape"),
    "cubist": (cubist, "overlapping translucent angular polygons in ochres and greys"),
}


def is_builtin(spec: object) -> bool:
    """Whether ``spec`` names a built-in style (``builtin:NAME``)."""
    return isinstance(spec, str) and spec.startswith(PREFIX)


def render_style(name: str, size: int | Size = 256, seed: int = 0) -> np.ndarray:
    """The built-in style ``name`` (with or without ``builtin:``) as an H x W x 3 uint8 array.

    ``size``: an int (square) or ``(height, width)``. Same name, size and seed: same pixels.
    """
    key = name[len(PREFIX) :] if name.startswith(PREFIX) else name
    if key not in BUILTIN_STYLES:
        raise ConfigError(
            f"unknown built-in style '{key}'; known: "
            f"{', '.join(PREFIX + n for n in BUILTIN_STYLES)}."
        )
    hw = (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))
    if min(hw) < 8:
        raise ConfigError(f"a built-in style needs at least 8 x 8 pixels, got {hw[0]} x {hw[1]}.")
    return BUILTIN_STYLES[key][0](hw, seed)
