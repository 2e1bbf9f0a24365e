"""The digits judge: a classifier that reads generated digits for the quality benchmarks.

Run from the project root::

    .venv/bin/python benchmarks/digits_judge.py --size 16 [--steps 1500] [--seed 0]
        [--threads 1] [--out benchmarks/.cache/judge-16.safetensors] [--retrain]

It trains :class:`pixelforge.study.classifier.SmallCNN` on the ``digits`` train split (1,437
images) and on nothing else: it is not the domain feature extractor of the metrics and is not used
for guidance. The real 8x8 digits are brought to ``--size`` (16 for the diffusion models, 32 for
the GANs) by pixelforge's data loading, exactly as the models see them (bicubic in float, then
rounded to ``uint8``). It prints one JSON document with its accuracy on the held-out
``digits:test`` (360 images) and saves the weights, with the recipe and that accuracy in the
safetensors metadata, to ``--out`` (default ``benchmarks/.cache/judge-SIZE.safetensors``; the
``.cache`` folder holds a ``.gitignore`` of ``*``, so nothing in it is committed).

From a benchmark script (with ``benchmarks/`` on ``sys.path``)::

    from digits_judge import classify, judge_accuracy

    images = model.sample(1000, seed=0, labels=labels)        # N x 1 x S x S floats in [0, 1]
    acc = judge_accuracy(images, labels, size=16)             # fraction read as their label
    predicted = classify(images, size=16)                     # int64 N

Both load the cached judge of that size, training (and caching) it first when it is missing.
Images of another size or with 3 channels are brought to the judge's input by the same data
transforms (``uint8`` quantisation, BT.601 luma, bicubic resize).
"""

from __future__ import annotations

import argparse
import functools
import json
import platform
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open

from pixelforge.data import open_dataset
from pixelforge.hub import read_safetensors, write_safetensors
from pixelforge.study.classifier import (
    ClassifierBudget,
    SmallCNN,
    accuracy,
    predict,
    prepare_images,
    train_classifier,
)
from pixelforge.version import __version__

CACHE = Path(__file__).resolve().parent / ".cache"
SIZES = (16, 32)
DATA, TEST = "digits", "digits:test"
NUM_CLASSES, CHANNELS = 10, 1
# A stronger budget than the study's: wider, longer, with 1-source-pixel shifts (1/8 of the side).
BUDGET = ClassifierBudget(steps=1500, batch_size=64, lr=2e-3, width=32, translate=0.125)
SEED = 0


def default_path(size: int) -> Path:
    """Where the judge of input ``size`` is cached."""
    return CACHE / f"judge-{size}.safetensors"


def _check_size(size: int) -> int:
    if size not in SIZES:
        raise SystemExit(f"error: --size must be one of {', '.join(map(str, SIZES))}, got {size}.")
    return size


def train_judge(
    size: int, *, budget: ClassifierBudget = BUDGET, seed: int = SEED, out: Path | None = None
) -> tuple[SmallCNN, dict[str, Any]]:
    """Train the judge of input ``size`` on ``digits`` train; save it; return it and its report."""
    _check_size(size)
    started = time.perf_counter()
    train = open_dataset(DATA, image_size=size, channels=CHANNELS)
    test = open_dataset(TEST, image_size=size, channels=CHANNELS)
    assert train.labels is not None and test.labels is not None
    model = train_classifier(
        [(train.images, train.labels)], num_classes=NUM_CLASSES, budget=budget, seed=seed
    )
    test_acc = accuracy(model, test.images, test.labels)
    train_acc = accuracy(model, train.images, train.labels)
    seconds = time.perf_counter() - started
    path = out or default_path(size)
    report: dict[str, Any] = {
        "judge": "digits",
        "size": size,
        "channels": CHANNELS,
        "train_data": DATA,
        "n_train": len(train),
        "test_data": TEST,
        "n_test": len(test),
        "test_accuracy": test_acc,
        "test_errors": round((1.0 - test_acc) * len(test)),
        "train_accuracy": train_acc,
        "budget": asdict(budget),
        "seed": seed,
        "train_seconds": round(seconds, 2),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "pixelforge_version": __version__,
        "weights": str(path),
    }
    if path.parent == CACHE or CACHE in path.parents:
        CACHE.mkdir(parents=True, exist_ok=True)
        ignore = CACHE / ".gitignore"
        if not ignore.exists():
            ignore.write_text("*\n", encoding="utf-8")
    meta = {k: json.dumps(v) for k, v in report.items() if k != "weights"}
    report["sha256"] = write_safetensors(path, model.state_dict(), metadata=meta)
    return model, report


def read_report(path: Path) -> dict[str, Any]:
    """The recipe and test accuracy saved in a judge's safetensors metadata."""
    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata() or {}
    return {k: json.loads(v) for k, v in meta.items()}


@functools.lru_cache(maxsize=len(SIZES))
def load_judge(size: int, path: str | None = None) -> SmallCNN:
    """The judge of input ``size``: from ``path`` (default the cache), trained first if missing."""
    _check_size(size)
    p = Path(path) if path else default_path(size)
    if not p.is_file():
        print(f"digits_judge: no judge at {p}; training one (a few minutes)", file=sys.stderr)
        model, _ = train_judge(size, out=p)
        return model
    report = read_report(p)
    if report.get("size") != size:
        raise ValueError(f"{p} holds a judge for size {report.get('size')}, not {size}.")
    model = SmallCNN(CHANNELS, NUM_CLASSES, int(report["budget"]["width"]))
    model.load_state_dict(read_safetensors(p))
    model.eval()
    return model


def _inputs(images: torch.Tensor, size: int) -> torch.Tensor:
    return prepare_images(images, image_size=size, channels=CHANNELS)


def classify(images: torch.Tensor, size: int | None = None) -> torch.Tensor:
    """The judge's digit (``int64 N``) for each image (float ``[0, 1]`` or ``uint8``, NCHW).

    ``size`` picks the judge (16 or 32); by default the images' own side when it is one of those.
    """
    side = int(images.shape[-1])
    if size is None:
        if side not in SIZES:
            raise ValueError(f"images are {side}x{side}: pass size= (one of {SIZES}).")
        size = side
    return predict(load_judge(size), _inputs(images, size))


def judge_accuracy(images: torch.Tensor, labels: torch.Tensor, size: int | None = None) -> float:
    """Fraction of ``images`` the judge reads as their ``labels`` (the asked-for class)."""
    labels = torch.as_tensor(labels).long().reshape(-1)
    if labels.shape[0] != images.shape[0]:
        raise ValueError(f"{images.shape[0]} images but {labels.shape[0]} labels.")
    return float((classify(images, size) == labels).float().mean())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, required=True, help="judge input side: 16 or 32")
    parser.add_argument("--steps", type=int, default=BUDGET.steps)
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--out", type=Path, default=None, help="weights (.safetensors)")
    parser.add_argument(
        "--retrain", action="store_true", help="train even when --out already holds a judge"
    )
    args = parser.parse_args(argv)
    size = _check_size(args.size)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    out = args.out or default_path(size)
    if out.is_file() and not args.retrain:
        report = read_report(out) | {"weights": str(out), "cached": True}
    else:
        budget = ClassifierBudget(**(asdict(BUDGET) | {"steps": args.steps}))
        _, report = train_judge(size, budget=budget, seed=args.seed, out=out)
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
