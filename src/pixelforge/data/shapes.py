"""Procedural coloured shapes with captions and masks: the built-in ``shapes`` dataset.

Each image holds exactly **one** shape, so its label, caption and mask all describe the same
object. The shape's class (the label), colour, size and 3x3 grid cell are drawn from a random
generator keyed by ``(seed, split, index)``; all geometry is in fractions of the image, so the same
index gives the same picture at any image size. Shapes are drawn with PIL at 4x and
box-filtered down (anti-aliasing) onto a smooth background; the mask marks pixels at least half
covered by the shape.

Caption grammar: ``"a {size} {colour} {shape} at the {position}"``, e.g.
``"a small red circle at the top left"``, ``"a large blue star at the centre"``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

#: Shape classes; a sample's label is the index of its shape here.
SHAPE_CLASSES: tuple[str, ...] = ("circle", "square", "triangle", "diamond", "star", "cross")
#: Named shape colours (saturated, so they stand out from the greyish backgrounds).
PALETTE: dict[str, tuple[int, int, int]] = {
    "red": (220, 40, 40),
    "green": (40, 160, 60),
    "blue": (40, 90, 225),
    "yellow": (240, 210, 40),
    "purple": (150, 60, 200),
    "orange": (245, 135, 25),
}
#: Size words and the shape's circumradius range, as a fraction of the image side.
SIZES: dict[str, tuple[float, float]] = {"small": (0.075, 0.095), "large": (0.135, 0.155)}
#: Position names of the 3x3 grid, row by row (top to bottom), left to right.
POSITIONS: tuple[tuple[str, ...], ...] = (
    ("top left", "top", "top right"),
    ("left", "centre", "right"),
    ("bottom left", "bottom", "bottom right"),
)
#: Background kinds: a plain tinted grey, a linear gradient, or smooth noise.
BACKGROUNDS: tuple[str, ...] = ("plain", "gradient", "noise")
#: Splits and the stream each draws from (disjoint random streams, hence disjoint images).
SPLITS: dict[str, int] = {"train": 0, "test": 1}
_SUPERSAMPLE = 4
_NOISE_CELLS = 6


@dataclass(frozen=True)
class ShapeSample:
    """Everything that defines one image, in fractions of the image side."""

    shape: str
    colour: str
    size: str
    row: int  # 0 top .. 2 bottom
    col: int  # 0 left .. 2 right
    background: str
    cx: float
    cy: float
    radius: float
    angle: float  # rotation in degrees (triangle, star and cross only)
    bg_colours: tuple[tuple[float, float, float], tuple[float, float, float]]
    gradient_angle: float
    noise: np.ndarray  # _NOISE_CELLS x _NOISE_CELLS x 3 in [-1, 1]

    @property
    def label(self) -> int:
        """Index of the shape in :data:`SHAPE_CLASSES`."""
        return SHAPE_CLASSES.index(self.shape)

    @property
    def position(self) -> str:
        """Name of the grid cell holding the shape's centre."""
        return POSITIONS[self.row][self.col]

    @property
    def caption(self) -> str:
        """``"a {size} {colour} {shape} at the {position}"``."""
        return f"a {self.size} {self.colour} {self.shape} at the {self.position}"


def sample_shape(seed: int, split: str, index: int) -> ShapeSample:
    """The parameters of image ``index`` of ``split`` for ``seed`` (independent of image size)."""
    rng = np.random.default_rng([seed, SPLITS[split], index])
    shape = SHAPE_CLASSES[rng.integers(len(SHAPE_CLASSES))]
    colour = list(PALETTE)[rng.integers(len(PALETTE))]
    size = list(SIZES)[rng.integers(len(SIZES))]
    row, col = (int(v) for v in rng.integers(3, size=2))
    background = BACKGROUNDS[rng.integers(len(BACKGROUNDS))]
    lo, hi = SIZES[size]
    radius = float(rng.uniform(lo, hi))
    jitter = max(0.0, 1 / 6 - radius) * 0.8  # the centre stays well inside its cell
    cx = (col + 0.5) / 3 + float(rng.uniform(-jitter, jitter))
    cy = (row + 0.5) / 3 + float(rng.uniform(-jitter, jitter))
    angle = float(rng.uniform(-15, 15)) if shape in ("triangle", "star", "cross") else 0.0
    bg = tuple(_background_colour(rng) for _ in range(2))
    gradient_angle = float(rng.uniform(0, 2 * math.pi))
    noise = rng.uniform(-1, 1, size=(_NOISE_CELLS, _NOISE_CELLS, 3)).astype(np.float32)
    return ShapeSample(
        shape=shape,
        colour=colour,
        size=size,
        row=row,
        col=col,
        background=background,
        cx=cx,
        cy=cy,
        radius=radius,
        angle=angle,
        bg_colours=bg,  # type: ignore[arg-type]
        gradient_angle=gradient_angle,
        noise=noise,
    )


def _background_colour(rng: np.random.Generator) -> tuple[float, float, float]:
    grey = rng.uniform(35, 215)
    r, g, b = grey + rng.uniform(-20, 20, size=3)
    return float(r), float(g), float(b)


def _background(sample: ShapeSample, side: int) -> np.ndarray:
    """``side x side x 3`` float background."""
    c1 = np.array(sample.bg_colours[0], dtype=np.float32)
    if sample.background == "plain":
        return np.broadcast_to(c1, (side, side, 3)).astype(np.float32)
    if sample.background == "gradient":
        c2 = np.array(sample.bg_colours[1], dtype=np.float32)
        coords = (np.arange(side, dtype=np.float32) + 0.5) / side - 0.5
        dx, dy = math.cos(sample.gradient_angle), math.sin(sample.gradient_angle)
        t = coords[None, :] * dx + coords[:, None] * dy  # in [-0.71, 0.71]
        t = (t / math.sqrt(0.5) + 1) / 2
        return c1 * (1 - t[:, :, None]) + c2 * t[:, :, None]
    planes = []
    for c in range(3):
        low = Image.fromarray(np.ascontiguousarray(sample.noise[:, :, c]), mode="F")
        planes.append(np.asarray(low.resize((side, side), Image.Resampling.BICUBIC)))
    return c1 + 28.0 * np.stack(planes, axis=2)


def _polygon(sample: ShapeSample, side: int) -> list[tuple[float, float]]:
    """Vertices in pixels of a ``side``-pixel canvas (regular shapes: centroid at the centre)."""
    r = sample.radius
    if sample.shape == "square":
        pts = [
            (math.cos(a), math.sin(a)) for a in (0.25 * math.pi + k * math.pi / 2 for k in range(4))
        ]
    elif sample.shape == "diamond":
        pts = [(0.0, -1.0), (0.7, 0.0), (0.0, 1.0), (-0.7, 0.0)]
    elif sample.shape == "triangle":
        pts = [
            (math.cos(a), math.sin(a))
            for a in (-math.pi / 2 + k * 2 * math.pi / 3 for k in range(3))
        ]
    elif sample.shape == "star":
        pts = []
        for k in range(10):
            a = -math.pi / 2 + k * math.pi / 5
            rr = 1.0 if k % 2 == 0 else 0.45
            pts.append((rr * math.cos(a), rr * math.sin(a)))
    elif sample.shape == "cross":
        w = 0.33
        pts = [(-w, -1), (w, -1), (w, -w), (1, -w), (1, w), (w, w), (w, 1), (-w, 1), (-w, w),
               (-1, w), (-1, -w), (-w, -w)]  # fmt: skip
    else:  # pragma: no cover
        raise ValueError(sample.shape)
    rot = math.radians(sample.angle)
    cos, sin = math.cos(rot), math.sin(rot)
    out = []
    for x, y in pts:
        xr, yr = x * cos - y * sin, x * sin + y * cos
        out.append(((sample.cx + r * xr) * side, (sample.cy + r * yr) * side))
    return out


def render_shape(sample: ShapeSample, image_size: int) -> tuple[np.ndarray, np.ndarray]:
    """``(image, mask)``: ``image_size``-square ``uint8`` RGB image and 0/1 ``uint8`` mask."""
    side = image_size * _SUPERSAMPLE
    mask_hi = Image.new("L", (side, side), 0)
    draw = ImageDraw.Draw(mask_hi)
    if sample.shape == "circle":
        r = sample.radius * side
        cx, cy = sample.cx * side, sample.cy * side
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=255)
    else:
        draw.polygon(_polygon(sample, side), fill=255)
    # Box-filtering the 4x composite equals compositing with the box-filtered coverage, since
    # the background is smooth and the shape one flat colour: so the background is made at 1x.
    low = mask_hi.resize((image_size, image_size), Image.Resampling.BOX)
    coverage = np.asarray(low, dtype=np.float32)[:, :, None] / 255.0
    colour = np.array(PALETTE[sample.colour], dtype=np.float32)
    image = _background(sample, image_size) * (1.0 - coverage) + colour * coverage
    mask = (coverage[:, :, 0] >= 0.5).astype(np.uint8)
    return np.clip(np.rint(image), 0, 255).astype(np.uint8), mask


def split_size(split: str, shapes_count: int) -> int:
    """Images in ``split``: ``shapes_count`` for train, a quarter of it (at least 1) for test."""
    return shapes_count if split == "train" else max(1, shapes_count // 4)
