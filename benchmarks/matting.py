"""Evaluate a matting model on held-out data; trains nothing. Prints JSON.

Two sets, both seeded, both disjoint from the training composites:

- ``composites``: N composites of the held-out split of :mod:`pixelforge.restoration.composites`
  (every 10th emoji, the shapes' test stream, the bundled photos ``chelsea`` and ``china`` as
  backgrounds) at ``--size`` pixels;
- ``lego``: the NeRF lego ``val`` renders (200x200, real alpha) composited at their own framing
  over ``--per-view`` random square crops of held-out photos (the same two bundled photos, or
  ``--backgrounds FOLDER``; CBSD68 is a fair choice here, it is a test set).

Every image goes through the model's own inference path (``MattingNet.predict_alpha``: the longer
side brought to ``infer_size``, alpha upsampled back), as ``pixelforge remove-bg`` runs it. Two
baselines run on the same images: ``ones`` (alpha = 1 everywhere) and ``border`` (alpha from
the RGB distance to the nearest of 256 pixels sampled on the image's 4-pixel border: 0 below
0.1, 1 above 0.2, linear between). IoU at 0.5, SAD/1000 at the set's resolution, and MSE are the
means over images.

    python benchmarks/matting.py --model matting --n 200 --threads 1
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from pixelforge.hub import load
from pixelforge.io.images import list_images, read_image
from pixelforge.metrics.matting import matting_metrics
from pixelforge.restoration.composites import (
    composite_over,
    composite_source,
    cover_resize,
    folder_backgrounds,
)

SEED = 20261122
LEGO_VAL = Path("/work/shared/data/nerf_lego/val")


def border_alpha(image: torch.Tensor, low: float = 0.1, high: float = 0.2) -> torch.Tensor:
    """The colour-distance-to-border baseline: ``image`` 3 x H x W in [0, 1] -> alpha H x W."""
    _, h, w = image.shape
    frame = torch.ones(h, w, dtype=torch.bool)
    frame[4:-4, 4:-4] = False
    border = image[:, frame].T  # B x 3
    g = torch.Generator().manual_seed(0)
    pick = border[torch.randperm(len(border), generator=g)[:256]]
    d = torch.cdist(image.reshape(3, -1).T, pick).min(dim=1).values.reshape(h, w)
    return ((d - low) / (high - low)).clamp(0, 1)


def evaluate(
    model: torch.nn.Module, images: list[np.ndarray], alphas: list[np.ndarray]
) -> dict[str, dict[str, float]]:
    """Metrics of the model and of the two baselines on uint8 images and float alphas."""
    preds: dict[str, list[torch.Tensor]] = {"model": [], "ones": [], "border": []}
    start = time.perf_counter()
    for image in images:
        x = torch.from_numpy(image).permute(2, 0, 1).float() / 255.0
        preds["model"].append(model.predict_alpha(x))  # type: ignore[operator]
    per_image = (time.perf_counter() - start) / max(1, len(images))
    for image in images:
        x = torch.from_numpy(image).permute(2, 0, 1).float() / 255.0
        preds["ones"].append(torch.ones(x.shape[1:]))
        preds["border"].append(border_alpha(x))
    out: dict[str, dict[str, float]] = {}
    for name, p in preds.items():
        rows = [matting_metrics(a, torch.from_numpy(t)) for a, t in zip(p, alphas, strict=True)]
        out[name] = {k: float(np.mean([r[k] for r in rows])) for k in ("iou", "sad", "mse")}
    out["model"]["seconds_per_image"] = per_image
    return out


def composites_set(n: int, size: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
    source = composite_source("test", seed=SEED)
    drawn = [source.draw(i, size) for i in range(n)]
    return [d[0] for d in drawn], [d[1] for d in drawn]


def lego_set(
    folder: Path, backgrounds: list[np.ndarray], per_view: int
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    images, alphas = [], []
    for v, path in enumerate(list_images(folder)):
        rgba = read_image(path, mode="RGBA")
        h, w = rgba.shape[:2]
        alpha = rgba[:, :, 3].astype(np.float32) / 255.0
        for k in range(per_view):
            rng = np.random.default_rng([SEED, v, k])
            photo = backgrounds[int(rng.integers(len(backgrounds)))]
            ph, pw = photo.shape[:2]
            side = int(rng.integers(min(ph, pw) // 3, min(ph, pw) + 1))
            top, left = int(rng.integers(0, ph - side + 1)), int(rng.integers(0, pw - side + 1))
            bg = cover_resize(photo[top : top + side, left : left + side], h, w)
            images.append(composite_over(rgba[:, :, :3], alpha, bg))
            alphas.append(alpha)
    return images, alphas


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="matting", help="model dir, run dir or shipped name")
    parser.add_argument("--n", type=int, default=200, help="held-out composites")
    parser.add_argument("--size", type=int, default=192, help="side of the composites")
    parser.add_argument("--lego", type=Path, default=LEGO_VAL, help="RGBA folder (real alpha)")
    parser.add_argument("--per-view", type=int, default=3, help="backgrounds per lego view")
    parser.add_argument("--backgrounds", type=Path, default=None, help="held-out photo folder")
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    start = time.perf_counter()
    model = load(args.model)
    images, alphas = composites_set(args.n, args.size)
    report: dict[str, object] = {
        "model": args.model,
        "model_sha256": getattr(model, "model_sha256", None),
        "infer_size": model.config.infer_size,  # type: ignore[union-attr]
        "composites": {
            "n": args.n,
            "size": args.size,
            "seed": SEED,
            **evaluate(model, images, alphas),
        },
    }
    if args.lego.is_dir():
        if args.backgrounds is not None:
            bgs = folder_backgrounds(args.backgrounds, for_training=False)
            bg_name = str(args.backgrounds)
        else:
            from pixelforge.restoration.composites import HELDOUT_PHOTOS, builtin_backgrounds

            bgs, bg_name = builtin_backgrounds("test"), "bundled " + "+".join(HELDOUT_PHOTOS)
        images, alphas = lego_set(args.lego, bgs, args.per_view)
        report["lego"] = {
            "folder": str(args.lego),
            "backgrounds": bg_name,
            "n": len(images),
            "size": list(alphas[0].shape),
            **evaluate(model, images, alphas),
        }
    report["seconds"] = round(time.perf_counter() - start, 1)
    report["command"] = "python benchmarks/matting.py " + " ".join(
        f"--{k.replace('_', '-')} {v}" for k, v in vars(args).items() if v is not None
    )
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
