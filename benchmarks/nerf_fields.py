"""Radiance fields: held-out PSNR against training time, and render time of a view.

Trains a family on a scene through the regular Trainer (no checkpoints), pausing the clock for
evaluations, and prints one JSON line per evaluation and a summary line:

    OMP_NUM_THREADS=1 python benchmarks/nerf_fields.py /work/shared/data/nerf_lego \
        --family nerf-grid --downscale 2 --threads 1 --eval-at 500 1000 2000 3000

``--set section.key=value`` overrides the family's defaults (as ``pixelforge train --set``).
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import torch

from pixelforge.config import split_overrides
from pixelforge.metrics.image_quality import psnr
from pixelforge.nerf.render import render_image
from pixelforge.training.run import prepare_run
from pixelforge.training.trainer import Trainer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scene")
    parser.add_argument("--family", default="nerf-grid")
    parser.add_argument("--downscale", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--eval-at", type=int, nargs="+", default=[500, 1000, 2000, 3000])
    parser.add_argument("--eval-views", type=int, default=0, help="0: every held-out view")
    parser.add_argument("--test-views", type=int, default=0, help="0: every test view")
    parser.add_argument("--render-views", type=int, default=3, help="timed renders (0: none)")
    parser.add_argument("--minutes", type=float, default=0.0, help="stop after this much training")
    parser.add_argument("--set", action="append", default=[], dest="overrides")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    overrides = split_overrides(args.overrides)
    train = overrides.setdefault("train", {})
    train.update(
        device="cpu", downscale=args.downscale, eval_views=args.eval_views, tensorboard=False,
        sample_every=0, checkpoint_every=10**9,
    )  # fmt: skip
    train.setdefault("steps", max(args.eval_at))
    with tempfile.TemporaryDirectory() as tmp:
        spec, _ = prepare_run(args.family, args.scene, Path(tmp), overrides=overrides)
        trainer = Trainer(spec, tmp, progress=False)
        trained, step = 0.0, 0
        for target in sorted(args.eval_at):
            start = time.perf_counter()
            while step < target:
                values = trainer.run_step(step)
                step += 1
                trainer.step = step
                if args.minutes and trained + time.perf_counter() - start > args.minutes * 60:
                    break
            trained += time.perf_counter() - start
            t0 = time.perf_counter()
            result = trainer.task.evaluate()
            print(
                json.dumps({
                    "step": step, "train_seconds": round(trained, 1),
                    "steps_per_second": round(step / trained, 2),
                    "train_psnr": round(values["psnr"], 2), **result,
                    "eval_seconds": round(time.perf_counter() - t0, 1),
                }),
                flush=True,
            )  # fmt: skip
            if step < target:
                break
        test = trainer.dataset.scene.splits.get("test")
        if test is not None:  # the test split: every view, or --test-views evenly spread
            n = len(test.images)
            index = torch.linspace(0, n - 1, min(args.test_views or n, n)).round().long()
            pred = trainer.task.render_views(test.cameras[index]).clamp(0, 1)
            target = test.images[index].permute(0, 3, 1, 2)
            value = psnr(pred.permute(0, 3, 1, 2), target, reduction="mean")
            row = {"step": step, "test_psnr": round(float(value), 2), "test_views": len(index)}
            print(json.dumps(row), flush=True)
        if not args.render_views:
            return
        model = trainer.task.export().eval()
        _, cameras = trainer.task.views
        render_image(model, cameras[0])
        t0 = time.perf_counter()
        for i in range(args.render_views):
            render_image(model, cameras[i % len(cameras)])
        ms = (time.perf_counter() - t0) / args.render_views * 1000
        summary = {
            "family": args.family, "threads": args.threads, "load": os.getloadavg()[0],
            "view": f"{cameras.width}x{cameras.height}", "render_ms": round(ms),
            "model": spec.model.__dict__, "train": {k: v for k, v in spec.train.__dict__.items()
                                                    if not k.startswith("eval_")},
        }  # fmt: skip
        print(json.dumps(summary, default=str), flush=True)


if __name__ == "__main__":
    main()
