"""Quality of class-conditional digit generators: judged class accuracy and domain FID/KID.

For each MODEL (a model dir, run dir or shipped name; any class-conditional pixelforge
generator trained on ``digits``), draw ``--n`` samples with balanced labels (cycling 0..9), then:

- class accuracy: the share of samples that the judge (``digits_judge.py``: a classifier trained
  on the digits train split and used for nothing else) reads as the requested class; the judge's
  own accuracy on ``digits:test`` is printed beside it;
- domain FID and KID (``digits-cnn`` features) of the samples against ``digits:test``, next to
  the same numbers for the train split against the test split, both at the model's resolution,
  so "at most 2x the train/test figures" can be read off;
- sampling wall time (one process, the threads given).

``--samplers`` compares diffusion samplers on one model, side by side in one run: each entry is
``NAME:STEPS:N`` (e.g. ``ddpm:1000:500 ddim:50:500 ddim:50:2000 dpm-solver++:20:2000``).
``--speed ROUNDS`` times the samplers' entries on the same 16 samples instead, alternating them
for ROUNDS rounds in one process, so load changes hit every sampler alike (median per sampler and
the ratios to the first entry).

    python benchmarks/generative_quality.py --model runs/diff-digits16 --n 2000
    python benchmarks/generative_quality.py --model runs/diff-digits16 \\
        --samplers ddpm:1000:500 ddim:50:500 ddim:50:2000 dpm-solver++:20:2000

A long run can be split over processes: draw shards with other ``--seed`` values and
``--save-samples``, then score their union with ``--from-samples``:

    python benchmarks/generative_quality.py --model M --samplers ddpm:1000:1000 --seed 0 \\
        --save-samples s0.safetensors   # and --seed 1 --save-samples s1.safetensors, at once
    python benchmarks/generative_quality.py --model M --from-samples s0.safetensors s1.safetensors

Prints JSON (and writes it with ``--out``).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open

sys.path.insert(0, str(Path(__file__).resolve().parent))

from digits_judge import classify, default_path, load_judge, read_report
from machine import cpu_model
from pixelforge.data import DataConfig, open_dataset
from pixelforge.features.registry import get_extractor
from pixelforge.hub import load, write_safetensors
from pixelforge.io.atomic import atomic_write_text
from pixelforge.metrics.fid import frechet_distance
from pixelforge.metrics.kid import kid
from pixelforge.tasks.evaluate import extract_images

EXTRACTOR = "digits-cnn"


def _batches(images: torch.Tensor, size: int = 250) -> Any:
    for i in range(0, images.shape[0], size):
        yield images[i : i + size]


def _features(images: torch.Tensor) -> Any:
    """digits-cnn features of images in [0, 1] (resized to 32x32 with the clean resize)."""
    return extract_images(
        _batches(images), get_extractor(EXTRACTOR), keep_features=True, gather=False
    )


def real_digits(split: str, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The digits split at the model's resolution, in [0, 1], with labels."""
    spec = "digits" if split == "train" else "digits:test"
    ds = open_dataset(spec, image_size=size, channels=1, config=DataConfig())
    batch = ds.get_batch(torch.arange(len(ds)))
    return (batch["image"] + 1) / 2, batch["label"]


def distances(a: Any, b: Any) -> dict[str, float]:
    fid = frechet_distance(a.stats.mean, a.stats.cov, b.stats.mean, b.stats.cov)
    k = kid(a.features, b.features)
    return {"fid": float(fid), "kid": float(k.value), "kid_std": float(k.std or 0.0)}


def baseline(size: int) -> dict[str, Any]:
    train, _ = real_digits("train", size)
    test, test_labels = real_digits("test", size)
    return {
        "image_size": size,
        "train_vs_test": distances(_features(test), _features(train)),
        "judge": {
            "weights": str(default_path(size)),
            "test_accuracy_card": read_report(default_path(size))["test_accuracy"],
            "test_accuracy_now": float((classify(test, size) == test_labels).float().mean()),
        },
    }


def score(images: torch.Tensor, labels: torch.Tensor, size: int, test_feats: Any) -> dict[str, Any]:
    """Judged class accuracy (overall and worst class) and domain FID/KID of labelled samples."""
    predicted = classify(images, size)
    per_class = [float((predicted[labels == k] == k).float().mean()) for k in labels.unique()]
    return {
        "n": int(images.shape[0]),
        "class_accuracy": float((predicted == labels).float().mean()),
        "class_accuracy_min_class": min(per_class),
        **distances(test_feats, _features(images)),
    }


def evaluate_samples(
    model: Any,
    n: int,
    seed: int,
    size: int,
    test_feats: Any,
    save: Path | None = None,
    **options: Any,
) -> dict[str, Any]:
    labels = torch.arange(n) % model.num_classes
    t0 = time.perf_counter()
    images = model.sample(n, seed=seed, labels=labels, **options)
    seconds = time.perf_counter() - t0
    if save is not None:
        meta = {"options": options, "seed": seed, "sample_seconds": seconds}
        save.parent.mkdir(parents=True, exist_ok=True)
        write_safetensors(save, {"images": images, "labels": labels}, {"meta": json.dumps(meta)})
    return {
        "options": options,
        "sample_seconds": round(seconds, 2),
        **score(images, labels, size, test_feats),
    }


def merged_samples(paths: list[Path], size: int, test_feats: Any) -> dict[str, Any]:
    """Score the union of sample shards saved by ``--save-samples`` (same options, other seeds)."""
    images, labels, metas = [], [], []
    for path in paths:
        with safe_open(str(path), framework="pt") as f:
            images.append(f.get_tensor("images"))
            labels.append(f.get_tensor("labels"))
            metas.append(json.loads((f.metadata() or {})["meta"]))
    if len({json.dumps(m["options"], sort_keys=True) for m in metas}) != 1:
        raise SystemExit("--from-samples: the shards were drawn with different options")
    if len({m["seed"] for m in metas}) != len(metas):
        raise SystemExit("--from-samples: two shards share a seed, so they repeat samples")
    return {
        "options": metas[0]["options"],
        "shards": [
            {
                "file": p.name,
                "seed": m["seed"],
                "n": int(x.shape[0]),
                "sample_seconds": round(m["sample_seconds"], 2),
            }
            for p, m, x in zip(paths, metas, images, strict=True)
        ],
        "sample_seconds": round(sum(m["sample_seconds"] for m in metas), 2),
        **score(torch.cat(images), torch.cat(labels), size, test_feats),
    }


def speed(
    model: Any, entries: list[str], rounds: int, common: dict[str, Any]
) -> list[dict[str, Any]]:
    """Median seconds to draw the same 16 samples with each sampler entry, alternating."""
    labels = torch.arange(16) % model.num_classes
    times: dict[str, list[float]] = {e: [] for e in entries}
    for _ in range(rounds):
        for entry in entries:
            name, steps = entry.split(":")[:2]
            t0 = time.perf_counter()
            model.sample(16, seed=0, labels=labels, sampler=name, steps=int(steps), **common)
            times[entry].append(time.perf_counter() - t0)
    medians = {e: statistics.median(v) for e, v in times.items()}
    first = medians[entries[0]]
    return [
        {"sampler": e, "seconds_16": v, "median_seconds_16": medians[e],
         "speed_vs_first": first / medians[e]}
        for e, v in times.items()
    ]  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", required=True, help="model dir, run dir or shipped name")
    ap.add_argument("--n", type=int, default=2000, help="samples to draw")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--guidance", type=float, default=None, help="diffusion: CFG scale")
    ap.add_argument("--truncation", type=float, default=None, help="stylegan: psi")
    ap.add_argument(
        "--samplers", nargs="*", default=None, help="diffusion: NAME:STEPS:N entries to compare"
    )
    ap.add_argument(
        "--speed", type=int, default=0, help="time --samplers over N alternating rounds"
    )
    ap.add_argument("--out", type=Path, default=None, help="also write the JSON here")
    ap.add_argument(
        "--save-samples", type=Path, default=None, help="write the drawn samples (one run)"
    )
    ap.add_argument(
        "--from-samples", nargs="+", type=Path, default=None,
        help="score the union of saved sample shards instead of sampling",
    )  # fmt: skip
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    model = load(args.model)
    load_judge(16)
    load_judge(32)
    if model.num_classes != 10:
        raise SystemExit(f"{args.model} is not a 10-class conditional digits model")
    size = model.config.image_size
    test, _ = real_digits("test", size)
    test_feats = _features(test)
    common: dict[str, Any] = {}
    if args.guidance is not None:
        common["guidance"] = args.guidance
    if args.truncation is not None:
        common["truncation"] = args.truncation
    runs: list[dict[str, Any]] = []
    if args.save_samples is not None and (args.speed or len(args.samplers or [None]) != 1):
        raise SystemExit("--save-samples takes one run: at most one --samplers entry")
    if args.from_samples:
        runs.append(merged_samples(args.from_samples, size, test_feats))
    elif args.speed:
        runs = speed(model, args.samplers or [], args.speed, common)
    elif args.samplers:
        for entry in args.samplers:
            name, steps, n = entry.split(":")
            opts = {**common, "sampler": name, "steps": int(steps)}
            runs.append(
                evaluate_samples(
                    model, int(n), args.seed, size, test_feats, args.save_samples, **opts
                )
            )
    else:
        runs.append(
            evaluate_samples(
                model, args.n, args.seed, size, test_feats, args.save_samples, **common
            )
        )
    result = {
        "benchmark": "generative_quality",
        "model": str(args.model),
        "family": model.family,
        "extractor": f"{EXTRACTOR} (domain FID/KID: not comparable with published FIDs)",
        "real": "digits:test (360 images)",
        "baseline": baseline(size),
        "runs": runs,
        "machine": {"cpu": cpu_model(), "threads": args.threads},
    }
    text = json.dumps(result, indent=2)
    print(text)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(args.out, text + "\n")


if __name__ == "__main__":
    main()
