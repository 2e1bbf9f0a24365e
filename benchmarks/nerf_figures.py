"""The README's NeRF picture: held-out views of a trained scene, ground truth | render | depth.

python benchmarks/nerf_figures.py RUN --views 3 --out docs/images/nerf-lego.png
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from pixelforge import hub
from pixelforge.io.images import write_png
from pixelforge.nerf.scenes import load_scene
from pixelforge.tasks.nerf import depth_image, render_views, to_uint8
from pixelforge.training.nerf import scene_path
from pixelforge.training.run import read_run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path)
    parser.add_argument("--views", type=int, default=3)
    parser.add_argument("--split", default="val")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    spec = read_run(args.run)
    scene = load_scene(scene_path(spec.data), downscale=spec.train.downscale)
    split = scene.splits[args.split]
    idx = torch.linspace(0, len(split.cameras) - 1, args.views).round().long()
    model = hub.load(args.run)
    views = render_views(model, split.cameras[idx])
    rows = []
    for i, view in zip(idx.tolist(), views, strict=True):
        truth = to_uint8(split.images[i])
        depth = depth_image(view["depth"][..., 0], view["acc"][..., 0])
        gap = np.full((truth.shape[0], 4, 3), 255, dtype=np.uint8)
        rows.append(np.concatenate([truth, gap, to_uint8(view["rgb"]), gap, depth], axis=1))
    band = np.full((4, rows[0].shape[1], 3), 255, dtype=np.uint8)
    grid = np.concatenate([x for r in rows for x in (r, band)][:-1], axis=0)
    write_png(args.out, grid, {"kind": "nerf figure", "run": str(args.run), "split": args.split})
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
