"""How far a smooth fill can go on the inpainting benchmark: fills that peek at the hidden pixels.

For each CBSD68 image and committed mask (benchmarks/masks.py), the hole is filled with the
least-squares fit to its *true* pixels of, per RGB channel:

- ``mean``: one constant colour (per connected hole for free-form strokes);
- ``poly1``, ``poly2``, ``poly3``: a polynomial surface of degree 1 (a plane), 2 and 3 in the pixel
  coordinates, fitted over the whole hole.

These are not inpainting methods (they use what an inpainter cannot see); they measure how much
of the hole's PSNR its low-frequency content alone is worth. A method that scores above ``poly1``
in the hole predicts the hidden pixels better than the best plane through them. PSNR is over the
hole's pixels on the rounded uint8 fill, as ``restoration.py inpaint`` scores models.

Two smooth fills that see only the known pixels are scored beside them, with one more oracle:

- ``harmonic``: pixelforge's Laplace interpolation (``masks.harmonic_fill``, the inpainting
  networks' starting fill);
- ``biharmonic``: scikit-image's ``inpaint_biharmonic`` (smooth across the border in value and
  slope);
- ``best_blend``: per image, the best of ``(1 - a) harmonic + a biharmonic`` for a in
  0, 0.25, 0.5, 0.75, 1, chosen by the true pixels: what choosing the fill's smoothness order
  image by image could be worth at most.

    python benchmarks/masks.py
    python benchmarks/inpaint_bounds.py --out benchmarks/results/inpaint_bounds.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
from scipy import ndimage
from skimage.restoration import inpaint_biharmonic

from pixelforge.io.atomic import atomic_write_text
from pixelforge.io.images import list_images, read_image
from pixelforge.restoration.masks import harmonic_fill
from restoration import hole_psnr, read_mask, to_tensor

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def mean_fill(ref: np.ndarray, hole: np.ndarray) -> np.ndarray:
    """Each connected part of the hole filled with its true mean colour."""
    out = ref.copy()
    labels, n = ndimage.label(hole)
    for k in range(1, n + 1):
        part = labels == k
        out[part] = ref[part].mean(0)
    return out


def poly_fill(ref: np.ndarray, hole: np.ndarray, degree: int) -> np.ndarray:
    """The hole filled with the least-squares polynomial surface of ``degree`` through its true
    pixels (per channel; coordinates standardised for conditioning)."""
    ys, xs = (v.astype(np.float64) for v in np.nonzero(hole))
    ys, xs = (ys - ys.mean()) / max(ys.std(), 1.0), (xs - xs.mean()) / max(xs.std(), 1.0)
    basis = np.stack(
        [ys**i * xs**j for i in range(degree + 1) for j in range(degree + 1 - i)], axis=1
    )
    coef, *_ = np.linalg.lstsq(basis, ref[hole], rcond=None)
    out = ref.copy()
    out[hole] = basis @ coef
    return out


def harmonic(ref: np.ndarray, hole: np.ndarray) -> np.ndarray:
    """pixelforge's harmonic fill of the hole, from the known pixels only."""
    m = torch.from_numpy(hole).float()[None, None]
    x = to_tensor(ref.astype(np.uint8))[None]
    return harmonic_fill(x * (1 - m), m)[0].permute(1, 2, 0).double().numpy() * 255


def biharmonic(ref: np.ndarray, hole: np.ndarray) -> np.ndarray:
    """scikit-image's biharmonic fill of the hole, from the known pixels only."""
    known = ref / 255 * (1 - hole[..., None])
    return inpaint_biharmonic(known, hole, channel_axis=-1) * 255


BLENDS = (0.0, 0.25, 0.5, 0.75, 1.0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folder", type=Path, default=DATA / "CBSD68")
    parser.add_argument("--masks", type=Path, default=Path("benchmarks/.cache/masks/CBSD68"))
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    fills = {
        "mean": mean_fill,
        **{f"poly{d}": (lambda r, h, d=d: poly_fill(r, h, d)) for d in (1, 2, 3)},
    }
    result: dict[str, dict[str, float]] = {}
    for kind in ("box", "free"):
        scores: dict[str, list[float]] = {
            name: [] for name in [*fills, "harmonic", "biharmonic", "best_blend"]
        }
        for path in sorted(list_images(args.folder)):
            ref = read_image(path, mode="RGB").astype(np.float64)
            hole = read_mask(args.masks, kind, path.stem) > 0
            for name, fill in fills.items():
                out = np.clip(np.round(fill(ref, hole)), 0, 255)  # as 8-bit output
                scores[name].append(hole_psnr(out, ref, hole))
            h, b = harmonic(ref, hole), biharmonic(ref, hole)
            blends = [
                hole_psnr(np.clip(np.round((1 - a) * h + a * b), 0, 255), ref, hole) for a in BLENDS
            ]
            scores["harmonic"].append(blends[0])
            scores["biharmonic"].append(blends[-1])
            scores["best_blend"].append(max(blends))
        result[kind] = {name: round(float(np.mean(v)), 3) for name, v in scores.items()}
        result[kind]["images"] = len(scores["mean"])
        print(kind, json.dumps(result[kind]), flush=True)
    if args.out:
        atomic_write_text(
            args.out, json.dumps({"folder": args.folder.name, **result}, indent=2) + "\n"
        )


if __name__ == "__main__":
    main()
