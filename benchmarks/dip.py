"""Deep image prior on CBSD68: inpainting with the benchmark masks and denoising at sigma 25.

Run from the project root (the masks first; they are fixed by benchmarks/masks.py's seeds)::

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/masks.py
    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/dip.py [--n 5] [--iterations 1000]
        [--threads 1] [--tasks box,free,denoise] [--json-out benchmarks/results/dip.json]

For each of the first ``--n`` images (sorted by name) of ``--folder``, and each task, one
:func:`pixelforge.restoration.dip.deep_image_prior` run with the library's default network and
seed 0:

``box``      inpaint the centred box (25% of the area) of ``--masks``/box/NAME.png
``free``     inpaint the free-form strokes (15-25%) of ``--masks``/free/NAME.png
``denoise``  denoise the image plus Gaussian noise of sigma 25 (on 0-255; seeded by the image's
             position, clipped to 0-255 and rounded to uint8), moving average of outputs

Metrics (images in [0, 1], RGB, :mod:`pixelforge.metrics.image_quality`): PSNR and SSIM of the
network's output against the clean image over the whole image; for inpainting also of the
composite (known pixels from the input, hole from the network), and PSNR and SSIM inside the
hole: the MSE over hole pixels, and the mean of the SSIM map (11 x 11 Gaussian windows, the
definition of ``ssim``) over the window centres that lie in the hole. For denoising also the PSNR
and SSIM of the noisy input. Plus seconds per image and per iteration.

This is a benchmark, not a test: it prints one JSON document (also written to ``--json-out``).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from machine import cpu_model  # benchmarks/machine.py
from pixelforge.io.images import list_images, read_image
from pixelforge.metrics.image_quality import SSIM_K1, SSIM_K2, SSIM_RADIUS, SSIM_SIGMA, psnr, ssim
from pixelforge.restoration.dip import DIPNetConfig, deep_image_prior, read_mask

NOISE_SEED = 20261122
SIGMA = 25.0
TASKS = ("box", "free", "denoise")


def to_tensor(image: np.ndarray) -> torch.Tensor:
    """H x W x C uint8 or float in [0, 1] -> 1 x C x H x W float64."""
    array = image.astype(np.float64)
    if image.dtype == np.uint8:
        array /= 255.0
    return torch.from_numpy(array).permute(2, 0, 1)[None]


def ssim_map(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """The local SSIM of ``pixelforge.metrics.image_quality.ssim`` at every window lying fully
    inside the image, mean over channels: (H - 10) x (W - 10) for 1 x C x H x W in [0, 1]."""
    n, c, h, w = x.shape
    r = torch.arange(-SSIM_RADIUS, SSIM_RADIUS + 1, dtype=torch.float64)
    g = torch.exp(-0.5 * (r / SSIM_SIGMA) ** 2)
    g = g / g.sum()
    stack = torch.stack([x, y, x * x, y * y, x * y], dim=2).reshape(n * c * 5, 1, h, w)
    blurred = F.conv2d(F.conv2d(stack, g.view(1, 1, -1, 1)), g.view(1, 1, 1, -1))
    mx, my, mxx, myy, mxy = blurred.reshape(n, c, 5, *blurred.shape[-2:]).unbind(dim=2)
    vx, vy, cxy = mxx - mx * mx, myy - my * my, mxy - mx * my
    c1, c2 = SSIM_K1**2, SSIM_K2**2
    s = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))
    return s.mean(dim=1)[0]


def scores(result: np.ndarray, clean: np.ndarray) -> dict[str, float]:
    x, y = to_tensor(result), to_tensor(clean)
    return {"psnr": float(psnr(x, y)), "ssim": float(ssim(x, y))}


def hole_scores(result: np.ndarray, clean: np.ndarray, hole: np.ndarray) -> dict[str, float]:
    x, y = to_tensor(result), to_tensor(clean)
    sel = torch.from_numpy(hole)
    mse = float((x - y)[..., sel].square().mean())
    local = ssim_map(x, y)
    whole = float(ssim(x, y))
    assert abs(float(local.mean()) - whole) < 1e-9, "ssim_map disagrees with ssim"
    inner = sel[SSIM_RADIUS:-SSIM_RADIUS, SSIM_RADIUS:-SSIM_RADIUS]
    return {"psnr_hole": 10.0 * float(np.log10(1.0 / mse)), "ssim_hole": float(local[inner].mean())}


def noisy_version(clean: np.ndarray, index: int) -> np.ndarray:
    rng = np.random.default_rng([NOISE_SEED, index])
    noisy = clean.astype(np.float64) + rng.normal(0.0, SIGMA, clean.shape)
    return np.clip(np.rint(noisy), 0, 255).astype(np.uint8)


def run_one(
    task: str, clean: np.ndarray, index: int, name: str, args: argparse.Namespace
) -> dict[str, Any]:
    row: dict[str, Any] = {"image": name}
    if task == "denoise":
        noisy = noisy_version(clean, index)
        result = deep_image_prior(
            noisy, "denoise", iterations=args.iterations, seed=args.seed, device=args.device
        )
        row |= scores(result.image, clean)
        row |= {f"noisy_{k}": v for k, v in scores(noisy, clean).items()}
    else:
        hole = read_mask(args.masks / task / f"{name}.png", *clean.shape[:2])
        result = deep_image_prior(
            clean,
            "inpaint",
            mask=hole,
            iterations=args.iterations,
            seed=args.seed,
            device=args.device,
        )
        row |= scores(result.image, clean)
        composite = np.where(hole[..., None], result.image, clean.astype(np.float32) / 255.0)
        row |= {f"composite_{k}": v for k, v in scores(composite, clean).items()}
        row |= hole_scores(result.image, clean, hole)
        row["hole_fraction"] = float(hole.mean())
    row["seconds"] = result.seconds
    row["seconds_per_iteration"] = result.seconds_per_iteration
    row["final_loss"] = result.losses[-1]
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folder", type=Path, default=Path("../shared/data/CBSD68"))
    parser.add_argument("--masks", type=Path, default=Path("benchmarks/.cache/masks/CBSD68"))
    parser.add_argument("--n", type=int, default=5, help="First N images (sorted).")
    parser.add_argument("--iterations", type=int, default=1000)
    parser.add_argument("--tasks", default=",".join(TASKS), help="Comma list of box,free,denoise.")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads.")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--json-out", type=Path, default=None)
    args = parser.parse_args()
    tasks = [t for t in args.tasks.split(",") if t]
    unknown = sorted(set(tasks) - set(TASKS))
    if unknown:
        parser.error(f"unknown tasks {unknown}; use {','.join(TASKS)}")
    torch.set_num_threads(args.threads)
    paths = sorted(list_images(args.folder))[: args.n]
    if any(t != "denoise" for t in tasks) and not (args.masks / "box").is_dir():
        parser.error(f"no masks in {args.masks}: run `python benchmarks/masks.py` first")

    results: dict[str, Any] = {}
    start = time.perf_counter()
    for task in tasks:
        rows = []
        for index, path in enumerate(paths):
            rows.append(run_one(task, read_image(path), index, path.stem, args))
        keys = [k for k, v in rows[0].items() if isinstance(v, float)]
        results[task] = {
            "images": rows,
            "mean": {k: float(np.mean([r[k] for r in rows])) for k in keys},
        }
    doc = {
        "benchmark": "deep image prior on CBSD68",
        "command": "python benchmarks/dip.py "
        f"--n {args.n} --iterations {args.iterations} --threads {args.threads} "
        f"--tasks {','.join(tasks)} --seed {args.seed}",
        "network": {
            k: list(v) if isinstance(v, tuple) else v for k, v in vars(DIPNetConfig()).items()
        },
        "noise_sigma": SIGMA,
        "noise_seed": NOISE_SEED,
        "iterations": args.iterations,
        "seed": args.seed,
        "machine": {"cpu": cpu_model(), "threads": args.threads, "device": args.device},
        "torch": torch.__version__,
        "total_seconds": time.perf_counter() - start,
        "results": results,
    }
    text = json.dumps(doc, indent=2)
    print(text)
    if args.json_out is not None:
        args.json_out.parent.mkdir(parents=True, exist_ok=True)
        args.json_out.write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
