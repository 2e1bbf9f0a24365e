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

    python benchmarks/masks.py
    python benchmarks/inpaint_bounds.py --out benchmarks/results/inpaint_bounds.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from scipy import ndimage

from pixelforge.io.atomic import atomic_write_text
from pixelforge.io.images import list_images, read_image
from restoration import hole_psnr

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
        scores: dict[str, list[float]] = {name: [] for name in fills}
        for path in sorted(list_images(args.folder)):
            ref = read_image(path, mode="RGB").astype(np.float64)
            mask = read_image(args.masks / kind / f"{path.stem}.png", mode="L")[..., 0]
            hole = mask > 127
            for name, fill in fills.items():
                out = np.clip(np.round(fill(ref, hole)), 0, 255)  # as 8-bit output
                scores[name].append(hole_psnr(out, ref, hole))
        result[kind] = {name: round(float(np.mean(v)), 3) for name, v in scores.items()}
        result[kind]["images"] = len(scores["mean"])
        print(kind, json.dumps(result[kind]), flush=True)
    if args.out:
        atomic_write_text(
            args.out, json.dumps({"folder": args.folder.name, **result}, indent=2) + "\n"
        )


if __name__ == "__main__":
    main()
