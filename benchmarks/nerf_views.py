"""Few views: held-out PSNR against the number of training views, for each family, on one budget.

Runs ``benchmarks/nerf_fields.py`` once per (family, view count) with ``--set train.views=N``
(the views spread evenly over the train split) and the same ``--minutes`` cap, and keeps its
last evaluation (every held-out view of the val split) and, when the scene has one, the test
split's PSNR (the plotted figure when there is one). Writes a JSON file and a line plot:

    python benchmarks/nerf_views.py ../shared/data/nerf_lego --views 3 5 10 25 70 --minutes 2 \
        --downscale 2 --threads 1 --out benchmarks/results/nerf_views_lego.json \
        --plot docs/images/nerf-views-lego.png

To use both cores, run one family per process (``--families nerf-grid`` and ``--families
nerf-mlp``, each with its own ``--out``), then ``--merge A.json B.json --out ALL.json --plot P``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

from pixelforge.io.atomic import atomic_write_text
from pixelforge.viz import line_plot

FIELDS = Path(__file__).with_name("nerf_fields.py")


def run_one(args: argparse.Namespace, family: str, views: int) -> dict[str, object]:
    cmd = [
        sys.executable, str(FIELDS), args.scene, "--family", family, "--downscale",
        str(args.downscale), "--threads", str(args.threads), "--minutes", str(args.minutes),
        "--eval-at", str(args.steps[family]), "--set", f"train.views={views}",
        "--eval-views", str(args.eval_views), "--test-views", str(args.test_views),
        "--render-views", "0",
    ]  # fmt: skip
    lines = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.splitlines()
    rows = [json.loads(line) for line in lines if line.startswith("{")]
    last = [r for r in rows if "val_psnr" in r][-1]
    test = [r["test_psnr"] for r in rows if "test_psnr" in r]
    return {
        "family": family, "views": views, "steps": last["step"],
        "train_seconds": last["train_seconds"], "val_psnr": round(last["val_psnr"], 2),
        "test_psnr": test[-1] if test else None,
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scene")
    parser.add_argument("--views", type=int, nargs="+", default=[3, 5, 10, 25, 70])
    parser.add_argument("--families", nargs="+", default=["nerf-grid", "nerf-mlp"])
    parser.add_argument("--minutes", type=float, default=2.0)
    parser.add_argument("--downscale", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--eval-views", type=int, default=0, help="val views scored (0: all)")
    parser.add_argument("--test-views", type=int, default=0, help="test views scored (0: all)")
    parser.add_argument("--merge", type=Path, nargs="+", default=[], help="result files to join")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--plot", type=Path, default=None)
    args = parser.parse_args()
    args.steps = {"nerf-grid": 3000, "nerf-mlp": 20000}  # each family's default schedule
    if args.merge:  # join finished runs (one per family) into one file and plot
        parts = [json.loads(path.read_text()) for path in args.merge]
        result = {**parts[0], "rows": [row for part in parts for row in part["rows"]]}
        atomic_write_text(args.out, json.dumps(result, indent=2) + "\n")
    else:
        rows: list[dict[str, object]] = []
        for family in args.families:
            for views in args.views:
                row = run_one(args, family, views)
                print(json.dumps(row), flush=True)
                rows.append(row)
                result = {"scene": args.scene, "minutes": args.minutes, "downscale": args.downscale,
                          "threads": args.threads, "eval_views": args.eval_views,
                          "test_views": args.test_views, "rows": rows}  # fmt: skip
                atomic_write_text(args.out, json.dumps(result, indent=2) + "\n")
    if args.plot:
        rows = result["rows"]
        key = "test_psnr" if all(r["test_psnr"] is not None for r in rows) else "val_psnr"
        families = dict.fromkeys(r["family"] for r in rows)
        series = {
            f: [(float(r["views"]), float(r[key])) for r in rows if r["family"] == f]
            for f in families
        }
        split = key.split("_")[0]
        title = (f"{split} PSNR (dB) after {result['minutes']:g} min of training, "
                 "by training views")  # fmt: skip
        line_plot(series, title=title, xlabel="training views").save(args.plot)


if __name__ == "__main__":
    main()
