"""The diffusion fills' solver against an earlier revision's, side by side in one run.

``masks.adaptive_fill`` (the ``inpaint`` model's fill, and all of ``uncrop``'s time on a large
photo) spends nearly all its time in ``masks._cg``, conjugate gradients on the pixel graph's
Laplacian. This times the fill as shipped against the same fill with the solver (``_cg``, with
its own Laplacian) of ``--baseline``, a git revision, read with ``git show``, at the sizes users
and the benchmarks meet: a CBSD68 photo with its centred 25% box, a training batch of four
256-px crops, a 1500x1000 photo with a quarter-area box, and the 2250x1500 canvas of uncropping
that photo by half. Rounds alternate which version runs first; reports each version's times, the
ratio of medians, and the largest difference between the two fills in 8-bit levels.

    python benchmarks/fill_solver.py --threads 2 --out benchmarks/results/fill_solver.json
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from skimage import data

from machine import busy_cpu_seconds, cpu_model, other_cpu_seconds  # benchmarks/machine.py
from pixelforge.io.atomic import atomic_write_text
from pixelforge.io.images import read_image
from pixelforge.restoration import masks

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"


def baseline_solver(revision: str) -> Callable[..., torch.Tensor]:
    """``_cg`` as ``masks.py`` had it at ``revision``, with that revision's own Laplacian (the
    fills find the solver through the module, ``masks._cg``, so swapping it swaps both)."""
    source = subprocess.run(
        ["git", "-C", str(ROOT), "show", f"{revision}:src/pixelforge/restoration/masks.py"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    namespace: dict[str, Any] = {"__name__": "baseline_masks"}
    exec(compile(source, f"{revision}:masks.py", "exec"), namespace)
    solver: Callable[..., torch.Tensor] = namespace["_cg"]
    return solver


def as_tensor(photo: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(photo.copy()).permute(2, 0, 1).float()[None] / 255


def centred_box(height: int, width: int, n: int = 1) -> torch.Tensor:
    """A centred box of a quarter of the area (half of each side)."""
    mask = torch.zeros(n, 1, height, width)
    mask[..., height // 4 : height - height // 4, width // 4 : width - width // 4] = 1
    return mask


def cases() -> list[tuple[str, torch.Tensor, torch.Tensor]]:
    """(name, image, mask) for each size measured."""
    out = []
    photo = as_tensor(read_image(sorted((DATA / "CBSD68").glob("*.png"))[0]))
    out.append(("CBSD68 photo 481x321, centred box", photo, centred_box(*photo.shape[-2:])))
    crops = []
    for path in sorted((DATA / "CSun_Hays80").glob("*"))[:4]:
        image = as_tensor(read_image(path))
        top, left = (image.shape[-2] - 256) // 2, (image.shape[-1] - 256) // 2
        crops.append(image[..., top : top + 256, left : left + 256])
    batch = torch.cat(crops)
    out.append(("training batch 4 x 256x256, centred box", batch, centred_box(256, 256, 4)))
    big = as_tensor(
        np.asarray(Image.fromarray(data.astronaut()).resize((1500, 1000), Image.BICUBIC))
    )
    out.append(("photo 1500x1000, centred box", big, centred_box(1000, 1500)))
    canvas = torch.zeros(1, 3, 1500, 2250)
    canvas[..., 250:1250, 375:1875] = big
    border = torch.ones(1, 1, 1500, 2250)
    border[..., 250:1250, 375:1875] = 0
    out.append(("uncrop canvas 2250x1500 (that photo, --extend 0.5)", canvas, border))
    return out


def timed(image: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, float]:
    start = time.perf_counter()
    out = masks.adaptive_fill(image * (1 - mask), mask)
    return out, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", default="a2c03df", help="git revision to compare against")
    parser.add_argument("--repeats", type=int, default=3, help="rounds per size")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    solvers = {"shipped": masks._cg, "baseline": baseline_solver(args.baseline)}
    busy_start = busy_cpu_seconds()
    own_start = resource.getrusage(resource.RUSAGE_SELF)
    start = time.perf_counter()
    rows = []
    for name, image, mask in cases():
        times: dict[str, list[float]] = {"shipped": [], "baseline": []}
        outputs: dict[str, torch.Tensor] = {}
        for round_ in range(args.repeats):
            order = ["baseline", "shipped"] if round_ % 2 == 0 else ["shipped", "baseline"]
            for version in order:
                masks._cg = solvers[version]  # type: ignore[assignment]
                try:
                    outputs[version], seconds = timed(image, mask)
                finally:
                    masks._cg = solvers["shipped"]  # type: ignore[assignment]
                times[version].append(round(seconds, 3))
        diff = (outputs["shipped"] - outputs["baseline"]).abs().max().item() * 255
        medians = {v: statistics.median(t) for v, t in times.items()}
        row = {
            "case": name,
            "seconds": times,
            "median_seconds": medians,
            "speed_up": round(medians["baseline"] / medians["shipped"], 3),
            "round_speed_ups": [
                round(b / s, 3) for b, s in zip(times["baseline"], times["shipped"], strict=True)
            ],
            "max_difference_levels": round(diff, 4),
        }
        rows.append(row)
        print(json.dumps(row), flush=True)
    own = resource.getrusage(resource.RUSAGE_SELF)
    wall = time.perf_counter() - start
    own_cpu = own.ru_utime + own.ru_stime - own_start.ru_utime - own_start.ru_stime
    others = other_cpu_seconds(busy_start, own_cpu)
    result = {
        "command": "python benchmarks/fill_solver.py "
        f"--baseline {args.baseline} --repeats {args.repeats} --threads {args.threads}",
        "cpu": cpu_model(),
        "threads": args.threads,
        "torch": torch.__version__,
        "seconds": round(wall, 1),
        "other_processes_cpu_per_second": None if others is None else round(others / wall, 3),
        "cases": rows,
    }
    text = json.dumps(result, indent=2)
    print(text)
    if args.out is not None:
        atomic_write_text(args.out, text + "\n")


if __name__ == "__main__":
    main()
