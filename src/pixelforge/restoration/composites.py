"""Matting data made here: foregrounds with a known alpha pasted onto photo backgrounds.

Foregrounds (:class:`Foreground`, straight RGB + alpha in [0, 1]):

- ``emoji``: every emoji of the installed colour-emoji font, drawn with its own alpha (the font's
  anti-aliased bitmaps), cropped to its visible box. Held out: every 10th emoji (index % 10 == 0).
- ``shapes``: the procedural shapes of :mod:`pixelforge.data.shapes`, centred, drawn at 4x and
  box-filtered (soft anti-aliased edges); some filled with a photo texture instead of a flat
  colour, some feathered (blurred alpha) or uniformly semi-transparent. The held-out split draws
  from the shapes' own ``test`` stream.
- ``folder``: any folder of RGBA images with real alpha (e.g. the NeRF lego renders), read through
  :func:`pixelforge.io.images.read_image` with ``mode="RGBA"``. A folder is wholly train or
  wholly evaluation: the caller chooses (lego ``train/`` for training, ``val/`` for evaluation).

Backgrounds: the photos bundled with scikit-image / scikit-learn (train: all but
:data:`HELDOUT_PHOTOS`; test: only those), any folder of photos, and, for a fifth of the training
composites, smooth synthetic backgrounds (plain, gradient, low-frequency noise). The
restoration test sets CSet5, CSet14 and CBSD68 are refused as *training* backgrounds.

Each composite ``index`` of a split is a pure function of ``(seed, split, index)``: which
foreground and background, the crop of the background, the foreground's scale and position,
colour jitter, background defocus, a slight global blur and sensor noise are all drawn from
``numpy.random.default_rng([seed, split_id, index])``. The image is ``a*F + (1-a)*B`` in float,
then rounded; the alpha is returned unrounded. :func:`write_composites` stores a paired folder
(``A/`` images, ``B/`` alphas) that ``--data paired:PATH`` trains on.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from pixelforge.errors import DataError, ImageReadError
from pixelforge.io.images import list_images, read_image, write_png

#: Split name -> stream id of the random draws (disjoint streams, hence disjoint composites).
SPLITS: dict[str, int] = {"train": 0, "test": 1}
#: Built-in photos used only as evaluation backgrounds.
HELDOUT_PHOTOS: tuple[str, ...] = ("chelsea", "china")
#: Test sets of the restoration benchmarks: never training backgrounds.
RESERVED_TEST_SETS: tuple[str, ...] = ("CSet5", "CSet14", "CBSD68")
#: Composites in the built-in ``composites`` dataset, per split.
BUILTIN_COUNTS: dict[str, int] = {"train": 3000, "test": 300}
#: Foreground side as a fraction of the composite side (longer side of the foreground's box).
FG_SCALE = (0.35, 0.95)
EMOJI_HOLDOUT_EVERY = 10
_SHAPE_SIDE = 128
_SUPERSAMPLE = 4


@dataclass(frozen=True)
class Foreground:
    """An object with a known alpha: ``rgb`` H x W x 3 uint8 (straight, not premultiplied) and
    ``alpha`` H x W float32 in [0, 1]."""

    rgb: np.ndarray
    alpha: np.ndarray
    source: str  # e.g. "emoji:1F600", "shape:test:17", "folder:r_3.png"


# ------------------------------------------------------------------------------ foregrounds


def _crop_to_alpha(rgba: np.ndarray, source: str) -> Foreground | None:
    alpha = rgba[:, :, 3]
    ys, xs = np.nonzero(alpha > 0)
    if len(ys) == 0:
        return None
    y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    crop = rgba[y0:y1, x0:x1]
    return Foreground(
        np.ascontiguousarray(crop[:, :, :3]), crop[:, :, 3].astype(np.float32) / 255.0, source
    )


@functools.lru_cache(maxsize=2)
def _emoji_rgba(path: str, mtime: float) -> tuple[Foreground, ...]:
    from pixelforge.data import emoji as emoji_mod

    font = emoji_mod._load_font(Path(path))
    cell = emoji_mod._cell(font)
    out = []
    for ch, _ in emoji_mod._glyphs(path, mtime):
        rgba = np.asarray(emoji_mod._draw(font, ch, cell))
        fg = _crop_to_alpha(rgba, f"emoji:{ord(ch):X}")
        if fg is not None:
            out.append(fg)
    return tuple(out)


def emoji_foregrounds(split: str) -> list[Foreground]:
    """The emoji of ``split`` with their alpha (test: every 10th emoji; train: the others)."""
    from pixelforge.data.emoji import find_emoji_font

    _check_split(split)
    path = find_emoji_font()
    every = _emoji_rgba(str(path), path.stat().st_mtime)
    held = [i % EMOJI_HOLDOUT_EVERY == 0 for i in range(len(every))]
    return [fg for fg, h in zip(every, held, strict=True) if h == (split == "test")]


def shape_foreground(
    seed: int, split: str, index: int, textures: Sequence[np.ndarray] = ()
) -> Foreground:
    """Shape ``index`` of the shapes' ``split`` stream, centred, with a soft coverage alpha.

    A third are filled with a crop of one of ``textures`` (when given), a fifth have a feathered
    edge, one in ten is uniformly semi-transparent (opacity 0.4-0.9).
    """
    from pixelforge.data import shapes as shapes_mod

    base = shapes_mod.sample_shape(seed, split, index)
    rng = np.random.default_rng([seed, SPLITS[split], index, 7])
    sample = replace(base, cx=0.5, cy=0.5, radius=float(rng.uniform(0.42, 0.48)))
    sample = replace(sample, angle=float(rng.uniform(-40, 40)))
    side = _SHAPE_SIDE * _SUPERSAMPLE
    hi = Image.new("L", (side, side), 0)
    draw = ImageDraw.Draw(hi)
    if sample.shape == "circle":
        r, c = sample.radius * side, 0.5 * side
        draw.ellipse((c - r, c - r, c + r, c + r), fill=255)
    else:
        draw.polygon(shapes_mod._polygon(sample, side), fill=255)
    low = hi.resize((_SHAPE_SIDE, _SHAPE_SIDE), Image.Resampling.BOX)
    if rng.random() < 0.2:
        low = low.filter(ImageFilter.GaussianBlur(float(rng.uniform(0.8, 3.0))))
    alpha = np.asarray(low, dtype=np.float32) / 255.0
    if rng.random() < 0.1:
        alpha = alpha * float(rng.uniform(0.4, 0.9))
    if textures and rng.random() < 1 / 3:
        photo = textures[int(rng.integers(len(textures)))]
        rgb = _random_crop(photo, _SHAPE_SIDE, rng)
    else:
        colour = np.array(shapes_mod.PALETTE[sample.colour], dtype=np.float32)
        shade = np.linspace(float(rng.uniform(0.7, 1.0)), float(rng.uniform(1.0, 1.3)), _SHAPE_SIDE)
        rgb = np.clip(colour[None, None, :] * shade[:, None, None], 0, 255)
        rgb = np.broadcast_to(rgb, (_SHAPE_SIDE, _SHAPE_SIDE, 3)).astype(np.uint8)
    rgba = np.dstack([rgb, np.rint(alpha * 255).astype(np.uint8)])
    fg = _crop_to_alpha(rgba, f"shape:{split}:{index}")
    assert fg is not None
    return Foreground(fg.rgb, alpha[_bbox(alpha)], fg.source)


def _bbox(alpha: np.ndarray) -> tuple[slice, slice]:
    ys, xs = np.nonzero(np.rint(alpha * 255) > 0)
    return slice(ys.min(), ys.max() + 1), slice(xs.min(), xs.max() + 1)


def folder_foregrounds(folder: str | Path) -> list[Foreground]:
    """Every RGBA image of ``folder`` with some transparency, cropped to its visible box.

    Raises :class:`DataError` when the folder holds no image with an alpha channel in use.
    """
    files = list_images(folder)
    out = []
    for f in files:
        try:
            rgba = read_image(f, mode="RGBA")
        except ImageReadError:
            continue
        if rgba[:, :, 3].min() == 255:
            continue  # no transparency: nothing to learn about the edge
        fg = _crop_to_alpha(rgba, f"folder:{f.name}")
        if fg is not None:
            out.append(fg)
    if not out:
        raise DataError(
            f"{folder}: no readable image with transparency ({len(files)} image files); "
            "foreground folders need RGBA images (PNG/WebP/TIFF) whose alpha marks the object."
        )
    return out


# ------------------------------------------------------------------------------ backgrounds


def builtin_backgrounds(split: str) -> list[np.ndarray]:
    """The bundled photos as H x W x 3 uint8: test = :data:`HELDOUT_PHOTOS`, train = the rest."""
    from pixelforge.data.builtin import _photos

    _check_split(split)
    photos = [(n, np.asarray(im)) for n, im in _photos()]
    picked = [p for n, p in photos if (n in HELDOUT_PHOTOS) == (split == "test")]
    if not picked:
        raise DataError(
            "no bundled photos found for backgrounds (scikit-image's data files are missing); "
            "pass a folder of photos instead."
        )
    return picked


def folder_backgrounds(folder: str | Path, *, for_training: bool = True) -> list[np.ndarray]:
    """Every readable photo of ``folder`` as RGB. The restoration test sets (CSet5, CSet14,
    CBSD68) are refused when ``for_training``."""
    root = Path(folder)
    if for_training and any(part in RESERVED_TEST_SETS for part in root.resolve().parts):
        raise DataError(
            f"{root} is a restoration test set ({', '.join(RESERVED_TEST_SETS)}); it may serve "
            "as evaluation backgrounds only. Train on other photos (e.g. CSun_Hays80)."
        )
    out = []
    for f in list_images(root):
        try:
            out.append(read_image(f, mode="RGB"))
        except ImageReadError:
            continue
    if not out:
        raise DataError(f"{root}: no readable photo for backgrounds.")
    return out


def _synthetic_background(side: int, rng: np.random.Generator) -> np.ndarray:
    c1 = rng.uniform(20, 235, size=3).astype(np.float32)
    kind = int(rng.integers(3))
    img: np.ndarray
    if kind == 0:
        img = np.broadcast_to(c1, (side, side, 3)).astype(np.float32)
    elif kind == 1:
        c2 = rng.uniform(20, 235, size=3).astype(np.float32)
        a = rng.uniform(0, 2 * math.pi)
        coords = (np.arange(side, dtype=np.float32) + 0.5) / side - 0.5
        t = (coords[None, :] * math.cos(a) + coords[:, None] * math.sin(a)) / math.sqrt(0.5)
        t = ((t + 1) / 2)[:, :, None]
        img = c1 * (1 - t) + c2 * t
    else:
        cells = int(rng.integers(3, 9))
        noise = rng.uniform(-1, 1, size=(cells, cells, 3)).astype(np.float32)
        planes = [
            np.asarray(
                Image.fromarray(np.ascontiguousarray(noise[:, :, c]), mode="F").resize(
                    (side, side), Image.Resampling.BICUBIC
                )
            )
            for c in range(3)
        ]
        img = c1 + float(rng.uniform(15, 60)) * np.stack(planes, axis=2)
    return np.clip(img, 0, 255)


def _random_crop(photo: np.ndarray, side: int, rng: np.random.Generator) -> np.ndarray:
    """A square crop (20-100% of the shorter side, log-uniform) resized to ``side``, maybe
    mirrored. uint8 H x W x 3."""
    h, w = photo.shape[:2]
    short = min(h, w)
    crop = math.exp(rng.uniform(math.log(0.2), 0.0)) * short
    left, top = rng.uniform(0, w - crop), rng.uniform(0, h - crop)
    im = Image.fromarray(photo).resize(
        (side, side), Image.Resampling.BILINEAR, box=(left, top, left + crop, top + crop)
    )
    out = np.asarray(im)
    return out[:, ::-1] if rng.random() < 0.5 else out


def cover_resize(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """``image`` scaled (keeping its aspect) to cover ``height x width``, then centre-cropped to
    it: how a background is fitted to a foreground. uint8 H x W x C."""
    h, w = image.shape[:2]
    s = max(height / h, width / w)
    nh, nw = max(height, round(h * s)), max(width, round(w * s))
    im = Image.fromarray(image).resize((nw, nh), Image.Resampling.BICUBIC)
    top, left = (nh - height) // 2, (nw - width) // 2
    return np.asarray(im)[top : top + height, left : left + width]


def composite_over(fg: np.ndarray, alpha: np.ndarray, bg: np.ndarray) -> np.ndarray:
    """``alpha * fg + (1 - alpha) * bg`` for uint8 H x W x 3 images and an H x W (or H x W x 1)
    alpha in [0, 1]; returns uint8."""
    a = alpha.astype(np.float32)
    a = a[:, :, None] if a.ndim == 2 else a
    out = a * fg.astype(np.float32) + (1.0 - a) * bg.astype(np.float32)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


# ------------------------------------------------------------------------------ composites


def _check_split(split: str) -> None:
    if split not in SPLITS:
        raise ValueError(f"split must be one of {sorted(SPLITS)}, got {split!r}")


def _jitter(rgb: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Colour jitter of a foreground: per-channel gain, brightness offset, saturation."""
    x = rgb.astype(np.float32)
    x = x * rng.uniform(0.85, 1.15, size=3).astype(np.float32) + float(rng.uniform(-20, 20))
    grey = x.mean(axis=2, keepdims=True)
    x = grey + (x - grey) * float(rng.uniform(0.7, 1.3))
    return np.clip(x, 0, 255)


def make_composite(
    fg: Foreground, background: np.ndarray, size: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Paste ``fg`` onto a random crop of ``background`` (already ``size`` square, or a photo to
    crop from). Returns ``(image uint8 size x size x 3, alpha float32 size x size)``."""
    bg = background if background.shape[:2] == (size, size) else _random_crop(background, size, rng)
    bg_f = bg.astype(np.float32)
    if rng.random() < 0.3:  # defocused background
        sigma = float(rng.uniform(0.5, 2.5)) * size / 128
        bg_f = np.asarray(
            Image.fromarray(bg).filter(ImageFilter.GaussianBlur(sigma)), dtype=np.float32
        )
    fh, fw = fg.alpha.shape
    longer = rng.uniform(*FG_SCALE) * size
    s = longer / max(fh, fw)
    nh, nw = max(2, round(fh * s)), max(2, round(fw * s))
    rgba = np.dstack([fg.rgb, np.rint(fg.alpha * 255).astype(np.uint8)])
    flip = rng.random() < 0.5
    small = np.asarray(Image.fromarray(rgba, "RGBA").resize((nw, nh), Image.Resampling.BICUBIC))
    if flip:
        small = small[:, ::-1]
    # position: mostly inside; up to 15% of the foreground may leave the frame
    mx, my = 0.15 * nw, 0.15 * nh
    x0 = round(rng.uniform(-mx, size - nw + mx)) if size - nw + 2 * mx > 0 else (size - nw) // 2
    y0 = round(rng.uniform(-my, size - nh + my)) if size - nh + 2 * my > 0 else (size - nh) // 2
    alpha = np.zeros((size, size), np.float32)
    colour = np.zeros((size, size, 3), np.float32)
    ys, xs = slice(max(0, y0), min(size, y0 + nh)), slice(max(0, x0), min(size, x0 + nw))
    src = small[ys.start - y0 : ys.stop - y0, xs.start - x0 : xs.stop - x0]
    alpha[ys, xs] = src[:, :, 3].astype(np.float32) / 255.0
    colour[ys, xs] = _jitter(src[:, :, :3], rng)
    a = alpha[:, :, None]
    image = a * colour + (1.0 - a) * bg_f
    if rng.random() < 0.25:  # slight camera blur: image and alpha alike
        sigma = float(rng.uniform(0.3, 0.9))
        image = np.stack([_blur_plane(image[:, :, c], sigma) for c in range(3)], axis=2)
        alpha = _blur_plane(alpha, sigma)
    image = image + rng.normal(0, float(rng.uniform(0, 5)), size=image.shape)
    return np.clip(np.rint(image), 0, 255).astype(np.uint8), np.clip(alpha, 0, 1)


def _blur_plane(plane: np.ndarray, sigma: float) -> np.ndarray:
    from scipy.ndimage import gaussian_filter  # scipy comes with scikit-image

    return gaussian_filter(plane.astype(np.float32), sigma, mode="nearest")


@dataclass
class CompositeSource:
    """Foreground and background pools of one split (built once, reused for every index)."""

    split: str
    emoji: list[Foreground]
    folder_fg: list[Foreground]
    backgrounds: list[np.ndarray]
    synthetic_fraction: float
    seed: int

    def draw(self, index: int, size: int) -> tuple[np.ndarray, np.ndarray, str]:
        """Composite ``index``: ``(image uint8 HxWx3, alpha float32 HxW, foreground source)``."""
        rng = np.random.default_rng([self.seed, SPLITS[self.split], index])
        weights = {"folder": 3.0 * bool(self.folder_fg), "emoji": 3.0 * bool(self.emoji)}
        weights["shape"] = 1.0  # emoji (and folder objects) 3 : shapes 1
        names = list(weights)
        p = np.array([weights[k] for k in names]) / sum(weights.values())
        pick = names[int(rng.choice(len(names), p=p))]
        if pick == "folder":
            fg = self.folder_fg[int(rng.integers(len(self.folder_fg)))]
        elif pick == "emoji":
            fg = self.emoji[int(rng.integers(len(self.emoji)))]
        else:
            fg = shape_foreground(self.seed, self.split, index, self.backgrounds)
        if rng.random() < self.synthetic_fraction:
            bg = _synthetic_background(size, rng).astype(np.uint8)
        else:
            bg = self.backgrounds[int(rng.integers(len(self.backgrounds)))]
        image, alpha = make_composite(fg, bg, size, rng)
        return image, alpha, fg.source


def composite_source(
    split: str = "train",
    *,
    seed: int = 0,
    emoji: bool = True,
    foreground_folders: Sequence[str | Path] = (),
    background_folders: Sequence[str | Path] = (),
    builtin_photos: bool = True,
) -> CompositeSource:
    """The pools for ``split``: emoji (unless ``emoji=False``) and shapes of that split plus the
    RGBA ``foreground_folders``; backgrounds from ``background_folders`` and (unless
    ``builtin_photos=False``) the bundled photos of that split. Training also gets 20% synthetic
    backgrounds."""
    _check_split(split)
    emoji_fgs = emoji_foregrounds(split) if emoji else []
    folder_fgs = [fg for f in foreground_folders for fg in folder_foregrounds(f)]
    train = split == "train"
    bgs = [b for f in background_folders for b in folder_backgrounds(f, for_training=train)]
    if builtin_photos or not bgs:
        bgs += builtin_backgrounds(split)
    return CompositeSource(split, emoji_fgs, folder_fgs, bgs, 0.2 if train else 0.0, seed)


def make_composites(
    n: int, size: int, *, split: str = "train", seed: int = 0, source: CompositeSource | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """``n`` composites of ``split``: ``(images N x size x size x 3 uint8, alphas N x size x size
    float32 in [0, 1])``, the same for the same arguments."""
    src = source if source is not None else composite_source(split, seed=seed)
    images = np.empty((n, size, size, 3), np.uint8)
    alphas = np.empty((n, size, size), np.float32)
    for i in range(n):
        images[i], alphas[i], _ = src.draw(i, size)
    return images, alphas


def write_composites(
    out: str | Path, n: int, size: int, *, source: CompositeSource, start: int = 0
) -> Path:
    """Write composites ``start .. start+n-1`` as a paired folder: ``out/A/NNNNNN.png`` (image)
    and ``out/B/NNNNNN.png`` (alpha as grey), ready for ``--data paired:out``."""
    root = Path(out)
    for i in range(start, start + n):
        image, alpha, fg = source.draw(i, size)
        meta = {"kind": "matting composite", "split": source.split, "index": i, "foreground": fg}
        write_png(root / "A" / f"{i:06d}.png", image, meta)
        write_png(root / "B" / f"{i:06d}.png", alpha, meta)
    return root


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m pixelforge.restoration.composites OUT --n N --size S``: write a paired folder
    (``OUT/A`` images, ``OUT/B`` alphas) for ``pixelforge train matting --data paired:OUT``."""
    import argparse
    import json

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("out", type=Path)
    parser.add_argument("--n", type=int, default=3000, help="composites to write")
    parser.add_argument("--size", type=int, default=96, help="side of each composite")
    parser.add_argument("--split", choices=sorted(SPLITS), default="train")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--foregrounds", type=Path, nargs="*", default=[], help="RGBA folders")
    parser.add_argument("--backgrounds", type=Path, nargs="*", default=[], help="photo folders")
    parser.add_argument("--no-emoji", action="store_true", help="shapes (and folders) only")
    parser.add_argument("--no-builtin-photos", action="store_true")
    args = parser.parse_args(argv)
    source = composite_source(
        args.split,
        seed=args.seed,
        emoji=not args.no_emoji,
        foreground_folders=args.foregrounds,
        background_folders=args.backgrounds,
        builtin_photos=not args.no_builtin_photos,
    )
    write_composites(args.out, args.n, args.size, source=source)
    summary = {
        "out": str(args.out),
        "n": args.n,
        "size": args.size,
        "split": args.split,
        "seed": args.seed,
        "emoji": len(source.emoji),
        "folder_foregrounds": len(source.folder_fg),
        "backgrounds": len(source.backgrounds),
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
