"""How much of a style a fast network learns in a CPU budget, by the number of training photos.

Trains the fast-style family with its real train step (through the Trainer; the random-weight
VGG16 unless real weights are found) on fixed 128x128 crops of the first N CSun_Hays80 photos
(one crop per photo, seeded), and reports the relative content and style losses on those same
crops before training (by the untrained network) and after. One photo can be
memorised; the question is how fast the network learns a style that holds for many.

    python benchmarks/fast_style_probe.py --photos 1 2 40 --steps 150 --threads 1 \
        --out benchmarks/results/fast_style_probe.json
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from pixelforge.features.vgg import RandomWeightsWarning
from pixelforge.io.atomic import atomic_write_text
from pixelforge.io.images import list_images, read_image
from pixelforge.training.run import prepare_run
from pixelforge.training.trainer import Trainer

PHOTOS = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "CSun_Hays80"


class Crops:
    """A fixed set of crops as a training set (indices wrap, so a batch may repeat a crop)."""

    def __init__(self, crops: torch.Tensor, batch: int) -> None:
        self.crops, self.batch = crops, batch

    def __len__(self) -> int:
        return max(len(self.crops), self.batch)

    def get_batch(self, indices: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"image": self.crops[indices % len(self.crops)]}


def crops(n: int, size: int, seed: int) -> torch.Tensor:
    """One random ``size`` crop of each of the first ``n`` photos (resized to 2 x size square),
    N x 3 x size x size in [-1, 1]."""
    rng = np.random.default_rng(seed)
    out = []
    for path in list_images(PHOTOS)[:n]:
        pixels = np.asarray(Image.fromarray(read_image(path, mode="RGB")).resize((2 * size,) * 2))
        i, j = rng.integers(0, size, 2)
        out.append(torch.from_numpy(pixels[i : i + size, j : j + size].copy()).permute(2, 0, 1))
    return torch.stack(out).float() / 127.5 - 1


@torch.no_grad()
def measure(trainer: Trainer, x: torch.Tensor) -> dict[str, float]:
    task = trainer.task
    task._prepare_style(trainer.device)  # type: ignore[attr-defined]
    sums: dict[str, float] = {}
    for start in range(0, len(x), 8):
        part = (x[start : start + 8] + 1) * 127.5
        for k, v in task.losses(part).items():  # type: ignore[attr-defined]
            sums[k] = sums.get(k, 0.0) + float(v) * len(part)
    return {k: round(v / len(x), 4) for k, v in sums.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=int, nargs="+", default=[1, 2, 40])
    parser.add_argument("--steps", type=int, default=150)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--style", default="builtin:strokes")
    parser.add_argument("--set", action="append", default=[], dest="overrides")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    warnings.simplefilter("ignore", RandomWeightsWarning)
    train = {
        "style": args.style, "losses": "relative", "content_weight": 1.0, "style_weight": 10.0,
        "batch_size": args.batch, "steps": args.steps, "device": "cpu", "tensorboard": False,
        "sample_every": 0, "checkpoint_every": 10**9,
    }  # fmt: skip
    for item in args.overrides:
        key, _, value = item.partition("=")
        try:
            train[key.removeprefix("train.")] = json.loads(value)
        except json.JSONDecodeError:  # a bare word, as pixelforge train --set takes it
            train[key.removeprefix("train.")] = value
    rows = []
    for n in args.photos:
        x = crops(n, args.size, seed=0)
        with tempfile.TemporaryDirectory() as tmp:
            spec, _ = prepare_run(
                "fast-style", f"folder:{PHOTOS}", Path(tmp),
                overrides={"model": {"image_size": args.size}, "train": train},
            )  # fmt: skip
            trainer = Trainer(spec, tmp, progress=False, dataset=Crops(x, args.batch))
            before = measure(trainer, x)
            start = time.perf_counter()
            trainer.fit()
            seconds = time.perf_counter() - start
            after = measure(trainer, x)
        row = {"photos": n, "steps": args.steps, "before": before, "after": after,
               "train_seconds": round(seconds, 1)}  # fmt: skip
        print(json.dumps(row), flush=True)
        rows.append(row)
    result = {"style": args.style, "size": args.size, "batch": args.batch, "train": train,
              "threads": args.threads, "rows": rows}  # fmt: skip
    if args.out:
        atomic_write_text(args.out, json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
