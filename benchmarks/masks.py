"""Write the inpainting benchmark masks for a folder of test images (CBSD68 by default).

Two masks per image, seeded by the image's position in the sorted file list, so they never
depend on a model or a run: ``box/NAME.png``, a centred box of 25% of the area, and
``free/NAME.png``, free-form strokes covering 15-25% of it. White (255) = hole.

    python benchmarks/masks.py ../shared/data/CBSD68 --out benchmarks/.cache/masks/CBSD68
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from pixelforge.io.images import image_info, list_images, write_png
from pixelforge.restoration.masks import box_mask, free_form_mask

SEED = 20261122


def write_masks(folder: Path, out: Path) -> dict[str, dict[str, float]]:
    """Write both masks for every image of ``folder``; returns each mask's covered fraction."""
    coverage: dict[str, dict[str, float]] = {}
    for index, path in enumerate(sorted(list_images(folder))):
        width, height, _, _ = image_info(path)
        rng = np.random.default_rng([SEED, index])
        masks = {
            "box": box_mask(height, width, area=0.25),
            "free": free_form_mask(height, width, rng, coverage=(0.15, 0.25)),
        }
        for kind, mask in masks.items():
            (out / kind).mkdir(parents=True, exist_ok=True)
            write_png(out / kind / f"{path.stem}.png", mask * 255)
        coverage[path.stem] = {k: float(m.mean()) for k, m in masks.items()}
    return coverage


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path, nargs="?", default=Path("../shared/data/CBSD68"))
    parser.add_argument("--out", type=Path, default=Path("benchmarks/.cache/masks/CBSD68"))
    args = parser.parse_args()
    coverage = write_masks(args.folder, args.out)
    free = [c["free"] for c in coverage.values()]
    print(
        json.dumps(
            {
                "images": len(coverage),
                "box": 0.25,
                "free_min": min(free),
                "free_max": max(free),
                "out": str(args.out),
            }
        )
    )


if __name__ == "__main__":
    main()
