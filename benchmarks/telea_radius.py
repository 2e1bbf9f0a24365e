"""How much the inpainting baseline depends on its one free parameter: OpenCV's neighbourhood
radius, for Telea's fast marching method and for Navier-Stokes (``cv2.INPAINT_NS``).

``restoration.py inpaint`` scores Telea at radius 5, as it has since it was first written,
before the first inpainting model was shipped. OpenCV's own examples use 3. This scores both methods at several radii on the same
images and committed masks, hole PSNR on the uint8 result as ``restoration.py inpaint`` scores
it, so that a reader can set the benchmark's bar against other papers' Telea figures.

    python benchmarks/masks.py
    python benchmarks/telea_radius.py --out benchmarks/results/telea_radius.json
"""

from __future__ import annotations

import argparse
import json

import numpy as np

from pixelforge.io.atomic import atomic_write_text
from pixelforge.io.images import list_images, read_image
from restoration import hole_psnr, read_mask


def main() -> None:
    import cv2

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--folder", default="../shared/data/CBSD68")
    ap.add_argument("--masks", default="benchmarks/.cache/masks/CBSD68")
    ap.add_argument("--radii", type=int, nargs="+", default=[1, 2, 3, 5, 7, 10, 15, 25, 40])
    ap.add_argument("--out", default="")
    args = ap.parse_args()
    files = sorted(list_images(args.folder))
    methods = {"telea": cv2.INPAINT_TELEA, "ns": cv2.INPAINT_NS}
    result: dict[str, object] = {"folder": args.folder, "images": len(files)}
    for kind in ("box", "free"):
        pairs = []
        for path in files:
            clean = read_image(path)
            mask = read_mask(args.masks, kind, path.stem)
            pairs.append((clean, mask))
        table: dict[str, dict[str, float]] = {name: {} for name in methods}
        for radius in args.radii:
            for name, flag in methods.items():
                scores = [
                    hole_psnr(cv2.inpaint(c * (1 - m[..., None]), m, radius, flag), c, m)
                    for c, m in pairs
                ]
                table[name][str(radius)] = round(float(np.mean(scores)), 3)
            print(kind, radius, {n: table[n][str(radius)] for n in methods}, flush=True)
        result[kind] = table
    if args.out:
        atomic_write_text(args.out, json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
