"""`pixelforge demo`: a class-conditional DCGAN on the built-in digits, end to end.

Trains for about two minutes on two CPU cores (a fixed number of steps, so the result is the same
everywhere), then writes a sample grid per class, a grid of every class, the training curves and a
short report. A second run reuses the trained model.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import cast

import numpy as np
import torch
from rich.console import Console

from pixelforge import runs
from pixelforge.hub import load
from pixelforge.io.atomic import atomic_write_text
from pixelforge.io.images import write_png
from pixelforge.models.base import ImageGenerator
from pixelforge.training.logging import read_metrics
from pixelforge.training.run import prepare_run
from pixelforge.training.trainer import Trainer
from pixelforge.version import __version__
from pixelforge.viz import line_plot, make_grid, upscale_nearest

DEMO_SETTINGS = {
    "model": {"image_size": 32, "num_classes": None, "g_width": 32, "d_width": 32, "z_dim": 64},
    "train": {
        "steps": 1500,
        "batch_size": 64,
        "lr": 2e-4,
        "ema_decay": 0.995,
        "checkpoint_every": 250,
        "sample_every": 250,
        "log_every": 10,
        "seed": 0,
    },
}
SEED = 1234


def digits_classifier() -> tuple[object, float]:
    """A 3-nearest-neighbour classifier of 8x8 digits, and its accuracy on the held-out split."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split
    from sklearn.neighbors import KNeighborsClassifier

    x, y = load_digits(return_X_y=True)
    xtr, xte, ytr, yte = train_test_split(x, y, test_size=360, stratify=y, random_state=0)
    clf = KNeighborsClassifier(n_neighbors=3).fit(xtr / 16.0, ytr)
    return clf, float(clf.score(xte / 16.0, yte))


def class_agreement(images: torch.Tensor, labels: torch.Tensor, clf: object) -> float:
    """Share of generated digits (N x 1 x H x W in [0, 1]) that the classifier reads as their class."""
    small = torch.nn.functional.adaptive_avg_pool2d(images.float(), 8).flatten(1).numpy()
    pred = clf.predict(small)  # type: ignore[attr-defined]
    return float(np.mean(pred == labels.numpy()))


def run_demo(out: Path, *, retrain: bool = False, console: Console | None = None) -> list[Path]:
    """Train (or reuse) the demo model and write the results into ``out``; returns the files."""
    console = console or Console(stderr=True)
    run_dir = out / "run"
    if retrain and run_dir.exists():
        shutil.rmtree(run_dir)
    spec, _ = prepare_run("dcgan", "digits", run_dir, overrides=DEMO_SETTINGS)
    latest = runs.latest_checkpoint(run_dir)
    t0 = time.perf_counter()
    if latest is not None and latest[0] >= spec.train.steps:
        console.print(
            f"reusing the trained demo model in {run_dir} (pass --retrain to train again)"
        )
        trained_now = False
    else:
        console.print(
            f"training a class-conditional DCGAN on digits for {spec.train.steps} steps "
            f"(about two minutes on 2 CPU cores) into {run_dir}"
        )
        Trainer(spec, run_dir).fit()
        trained_now = True
    train_seconds = time.perf_counter() - t0

    model = cast(ImageGenerator, load(run_dir))
    k = model.num_classes
    written: list[Path] = []
    meta = {
        "family": "dcgan",
        "model_sha256": getattr(model, "model_sha256", None),
        "pixelforge_version": __version__,
        "command": "pixelforge demo",
    }
    for c in range(k):
        images = model.sample(64, seed=SEED + c, class_label=c)
        path = out / f"class-{c}.png"
        write_png(
            path,
            upscale_nearest(make_grid(images, nrow=8), 2),
            {**meta, "seed": SEED + c, "class_label": c},
        )
        written.append(path)
    labels = torch.arange(100) % k
    images = model.sample(100, seed=SEED, labels=labels)
    order = torch.argsort(labels, stable=True)
    grid_path = out / "all-classes.png"
    write_png(
        grid_path, upscale_nearest(make_grid(images[order], nrow=10), 2), {**meta, "seed": SEED}
    )
    written.append(grid_path)

    rows = read_metrics(run_dir)
    curve = line_plot(
        {
            name: [(r["step"], r[name]) for r in rows if r.get(name) is not None]
            for name in ("loss_D", "loss_G")
        },
        title="DCGAN on digits: training losses",
    )
    curve_path = out / "training-curve.png"
    write_png(curve_path, np.asarray(curve), {**meta, "kind": "training curve"})
    written.append(curve_path)

    clf, clf_acc = digits_classifier()
    many = torch.arange(1000) % k
    agreement = class_agreement(model.sample(1000, seed=SEED, labels=many), many, clf)
    report = out / "report.md"
    lines = [
        "# pixelforge demo: class-conditional DCGAN on digits",
        "",
        f"- model: `{run_dir}` ({spec.train.steps} steps, batch {spec.train.batch_size}, "
        f"{spec.model.image_size}x{spec.model.image_size}, {k} classes)",
        f"- training time this run: {train_seconds:.0f} s"
        if trained_now
        else "- reused an already trained model",
        f"- final losses: D {rows[-1].get('loss_D', float('nan')):.3f}, G {rows[-1].get('loss_G', float('nan')):.3f}"
        if rows
        else "- no metrics logged",
        f"- class agreement: a 3-nearest-neighbour digit classifier ({clf_acc:.1%} on held-out real digits) "
        f"reads {agreement:.1%} of 1,000 generated digits as the class they were asked for (chance: {1 / k:.0%})",
        "",
        "Files: " + ", ".join(f"`{p.name}`" for p in written),
        "",
        "Sample again with: `pixelforge sample "
        + str(run_dir)
        + " --n 64 --class 3 --out three.png`",
    ]
    atomic_write_text(report, "\n".join(lines) + "\n")
    atomic_write_text(
        out / "report.json",
        json.dumps(
            {
                "class_agreement": agreement,
                "classifier_accuracy": clf_acc,
                "steps": spec.train.steps,
            },
            indent=2,
        )
        + "\n",
    )
    written.append(report)
    console.print(report.read_text())
    return written
