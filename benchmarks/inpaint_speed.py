"""Inpainting a small hole in a large photo: the shipped ``inpaint`` model on a 3000x2000 photo
(scikit-image's astronaut enlarged) with a 600x400 hole, as a user removing an object would.

Two ways, side by side in one run: as shipped (the fill solved in the hole's window,
``masks.hole_window``, and only the tiles with a hole run) and the whole image (the window
switched off and every tile run, as before). Reports each one's wall time, their ratio, and how
far apart their outputs are in the hole (8-bit levels; known pixels are the input's in both).

    python benchmarks/inpaint_speed.py --threads 2 --out benchmarks/results/inpaint_speed.json
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from skimage import data

import pixelforge.tasks.image2image as image2image
from machine import cpu_model  # benchmarks/machine.py
from pixelforge import hub
from pixelforge.io.atomic import atomic_write_text
from pixelforge.restoration import masks

WIDTH, HEIGHT = 3000, 2000
HOLE = (slice(700, 1100), slice(1200, 1800))  # 400 rows x 600 columns, off-centre


def run(
    model: Any, image: torch.Tensor, mask: torch.Tensor, whole: bool
) -> tuple[np.ndarray, float]:
    """The model's 8-bit output and its wall time; ``whole``: no window, every tile."""
    window, tiled = masks.hole_window, image2image.run_tiled
    if whole:
        masks.hole_window = lambda *a, **k: None  # type: ignore[assignment]
        image2image.run_tiled = lambda *a, **k: tiled(*a, **{**k, "holes_only": False})  # type: ignore[assignment]
    try:
        start = time.perf_counter()
        out = image2image.apply_model(model, image, mask=mask)
        seconds = time.perf_counter() - start
    finally:
        masks.hole_window, image2image.run_tiled = window, tiled
    return (out * 255).round().byte().permute(1, 2, 0).numpy(), seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    photo = Image.fromarray(data.astronaut()).resize((WIDTH, HEIGHT), Image.BICUBIC)
    image = torch.from_numpy(np.asarray(photo).copy()).permute(2, 0, 1).float() / 255
    mask = torch.zeros(1, HEIGHT, WIDTH)
    mask[0, HOLE[0], HOLE[1]] = 1
    model = hub.load("inpaint")
    shipped, fast = run(model, image, mask, whole=False)
    before, slow = run(model, image, mask, whole=True)
    hole = mask[0].bool().numpy()
    diff = np.abs(shipped.astype(int) - before.astype(int))
    result = {
        "image": f"{WIDTH}x{HEIGHT}, hole 600x400",
        "threads": args.threads,
        "cpu": cpu_model(),
        "window_seconds": round(fast, 1),
        "whole_image_seconds": round(slow, 1),
        "speedup": round(slow / fast, 1),
        "hole_mean_abs_diff_levels": round(float(diff[hole].mean()), 2),
        "hole_max_abs_diff_levels": int(diff[hole].max()),
        "known_pixels_equal": bool((diff[~hole] == 0).all()),
    }
    text = json.dumps(result, indent=1)
    print(text)
    if args.out is not None:
        atomic_write_text(args.out, text + "\n")


if __name__ == "__main__":
    main()
