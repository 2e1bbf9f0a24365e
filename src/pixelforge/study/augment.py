"""Does a class-conditional generator help a classifier? Real, real + generated, generated only.

The study (``pixelforge study augment``) trains the same small CNN
(:mod:`pixelforge.study.classifier`) three ways, on the same budget, and tests each on the
held-out real split:

``real``            (a) the real training images only;
``real+generated``  (b) every batch half real, half generated (32 + 32 at batch 64);
``generated``       (c) generated images only.

For each real-data fraction (default 10% and 100%) and seed (default 0..4):

- the real pool is a stratified subset of the training split: ``round(fraction * n_class)``
  images of each class (at least one), chosen by ``numpy.random.default_rng([seed, 0])``;
- the generated pool is as large as that real pool, with balanced labels (``i mod K``), sampled
  fresh for each seed (sampling seed ``GENERATOR_SEED_OFFSET + seed``; the smaller fraction
  takes the first images of the seed's pool). Generated images are quantised to ``uint8`` and
  brought to the classifier's input size and channels by the data transforms
  (:func:`pixelforge.data.transforms.prepare_image`), exactly like the real images;
- every arm runs ``steps`` optimisation steps of ``batch_size`` images, so every arm sees
  ``steps * batch_size`` images, drawn from pools of the same size, and every arm of a seed
  starts from the same initial weights (seeded by ``seed``).

Reported per arm and fraction: mean and sample standard deviation (``ddof=1``) of the test
accuracy over seeds, and the accuracy of every seed.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict
from typing import Any

import numpy as np
import torch

from pixelforge.data import DataConfig, inspect_dataset, open_dataset, parse_spec
from pixelforge.errors import ConfigError, DataError
from pixelforge.models.base import ImageGenerator
from pixelforge.study.classifier import (
    ClassifierBudget,
    accuracy,
    batch_shares,
    prepare_images,
    train_classifier,
)
from pixelforge.version import __version__

ARMS: dict[str, str] = {
    "real": "(a) real training images only",
    "real+generated": "(b) each batch half real, half generated",
    "generated": "(c) generated images only",
}
DEFAULT_FRACTIONS: tuple[float, ...] = (0.1, 1.0)
DEFAULT_IMAGE_SIZE = 16
GENERATOR_SEED_OFFSET = 1_000_000


def parse_fractions(text: str) -> tuple[float, ...]:
    """``"0.1,1.0"`` -> ``(0.1, 1.0)``; each in ``(0, 1]``, no repeats."""
    out: list[float] = []
    for part in text.split(","):
        part = part.strip()
        try:
            value = float(part)
        except ValueError:
            raise ConfigError(
                f"--fractions: '{part}' is not a number; write fractions of the training "
                "split, e.g. --fractions 0.1,1.0."
            ) from None
        if not (0.0 < value <= 1.0) or not math.isfinite(value):
            raise ConfigError(f"--fractions: each must be in (0, 1], got {part}.")
        if value in out:
            raise ConfigError(f"--fractions: {part} is given twice.")
        out.append(value)
    return tuple(out)


def held_out_spec(data: str) -> str:
    """The held-out split of a built-in dataset: ``digits`` -> ``digits:test``."""
    name, arg = parse_spec(data)
    if arg is None:
        try:
            parse_spec(f"{name}:test")
        except DataError:
            pass
        else:
            return f"{name}:test"
    raise ConfigError(
        f"'{data}' has no held-out test split to measure on; give one with --test-data "
        "(e.g. --data digits, which is tested on digits:test)."
    )


def stratified_subset(labels: torch.Tensor, fraction: float, seed: int) -> torch.Tensor:
    """Indices of ``round(fraction * n_c)`` (at least 1) images of each class ``c``, by seed."""
    rng = np.random.default_rng([seed, 0])
    y = labels.numpy()
    picked = []
    for c in np.unique(y):
        idx = np.flatnonzero(y == c)
        k = min(len(idx), max(1, round(fraction * len(idx))))
        picked.append(rng.permutation(idx)[:k])
    return torch.from_numpy(np.sort(np.concatenate(picked)))


def check_generator(model: Any, num_classes: int, where: str) -> ImageGenerator:
    """``model`` if it is an image generator conditioned on ``num_classes`` classes, else an error."""
    if not isinstance(model, ImageGenerator):
        raise ConfigError(f"{where} is not an image generator (a {type(model).__name__}).")
    k = model.num_classes
    if k == 0:
        raise ConfigError(
            f"{where} is an unconditional generator: the study needs a class-conditional one "
            f"with the data's {num_classes} classes, to draw labelled images (train one with "
            "--set model.num_classes=null)."
        )
    if k != num_classes:
        raise ConfigError(
            f"{where} is conditioned on {k} classes, but the data has {num_classes}: the "
            "generator must be trained on the same classes."
        )
    return model


def generate_pool(
    model: ImageGenerator,
    n: int,
    *,
    seed: int,
    image_size: int,
    channels: int,
    num_classes: int,
    config: DataConfig | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` generated images with balanced labels (``i mod K``), as ``uint8`` at the given size.

    The images go through the data transforms (channel conversion, then resize with
    ``config.resize_mode`` and ``config.resize_filter``), as real images do.
    """
    labels = torch.arange(n, dtype=torch.int64) % num_classes
    images = model.sample(n, seed=seed, labels=labels)
    return prepare_images(images, image_size=image_size, channels=channels, config=config), labels


def _summary(runs: list[dict[str, Any]], arm: str, fraction: float) -> dict[str, Any]:
    rows = [r for r in runs if r["arm"] == arm and r["fraction"] == fraction]
    acc = [r["accuracy"] for r in rows]
    first = rows[0]
    return {
        "arm": arm,
        "description": ARMS[arm],
        "fraction": fraction,
        "mean": statistics.fmean(acc),
        "std": statistics.stdev(acc) if len(acc) > 1 else 0.0,
        "accuracies": acc,
        "seeds": [r["seed"] for r in rows],
        "images_seen": first["images_seen"],
        "images_seen_real": first["images_seen_real"],
        "images_seen_generated": first["images_seen_generated"],
        "pool_real": first["pool_real"],
        "pool_generated": first["pool_generated"],
    }


def run_augment_study(
    data: str,
    generator: str | ImageGenerator,
    *,
    seeds: int | Sequence[int] = 5,
    fractions: Sequence[float] = DEFAULT_FRACTIONS,
    budget: ClassifierBudget | None = None,
    image_size: int = DEFAULT_IMAGE_SIZE,
    test_data: str | None = None,
    data_config: DataConfig | None = None,
    on_run: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Run the study; returns a JSON-ready dict (see the module docstring for the protocol).

    ``generator`` is a MODEL argument (model dir, run dir or shipped name) or a loaded model.
    ``seeds`` is a count (seeds ``0..n-1``) or the seeds themselves. ``on_run`` is called with
    each finished run's record (for progress display).
    """
    from pixelforge import hub

    started = time.perf_counter()
    budget = budget or ClassifierBudget()
    budget.validate()
    seed_list = list(range(seeds)) if isinstance(seeds, int) else [int(s) for s in seeds]
    if not seed_list:
        raise ConfigError("--seeds must be at least 1.")
    if len(set(seed_list)) != len(seed_list):
        raise ConfigError("the seeds must differ from one another.")
    fracs = tuple(float(f) for f in fractions)
    if not fracs or any(not 0.0 < f <= 1.0 for f in fracs):
        raise ConfigError(f"fractions must be in (0, 1], got {list(fracs)}.")
    if min(batch_shares(budget.batch_size, 2)) < 1:
        raise ConfigError("--batch-size must be at least 2 (arm b splits each batch in two).")
    cfg = data_config or DataConfig()

    info = inspect_dataset(data, cfg)
    if info.num_classes < 2:
        raise ConfigError(f"'{data}' is not labelled with classes: the study needs labels.")
    test = test_data or held_out_spec(data)
    if isinstance(generator, ImageGenerator):
        loaded: torch.nn.Module = generator
        gen_name = type(generator).__name__
    else:
        loaded, gen_name = hub.load(generator), str(generator)
    model = check_generator(loaded, info.num_classes, f"--generator {gen_name}")

    channels = info.channels
    train_ds = open_dataset(data, image_size=image_size, channels=channels, config=cfg)
    test_ds = open_dataset(test, image_size=image_size, channels=channels, config=cfg)
    if train_ds.labels is None or test_ds.labels is None:
        raise ConfigError(f"'{data}' or '{test}' has no labels.")
    if test_ds.info.num_classes != info.num_classes:
        raise ConfigError(f"'{test}' does not have the same classes as '{data}'.")
    k = info.num_classes

    shares = batch_shares(budget.batch_size, 2)
    seen = budget.steps * budget.batch_size
    runs: list[dict[str, Any]] = []
    gen_seconds = 0.0
    for seed in seed_list:
        subsets = {f: stratified_subset(train_ds.labels, f, seed) for f in fracs}
        t0 = time.perf_counter()
        pool_x, pool_y = generate_pool(
            model,
            max(len(s) for s in subsets.values()),
            seed=GENERATOR_SEED_OFFSET + seed,
            image_size=image_size,
            channels=channels,
            num_classes=k,
            config=cfg,
        )
        gen_seconds += time.perf_counter() - t0
        for fraction in fracs:
            idx = subsets[fraction]
            real = (train_ds.images[idx], train_ds.labels[idx])
            n = len(idx)
            fake = (pool_x[:n], pool_y[:n])
            arms = {
                "real": ([real], seen, 0),
                "real+generated": (
                    [real, fake],
                    budget.steps * shares[0],
                    budget.steps * shares[1],
                ),
                "generated": ([fake], 0, seen),
            }
            for arm, (sources, seen_real, seen_gen) in arms.items():
                t0 = time.perf_counter()
                clf = train_classifier(sources, num_classes=k, budget=budget, seed=seed)
                acc = accuracy(clf, test_ds.images, test_ds.labels)
                record = {
                    "arm": arm,
                    "fraction": fraction,
                    "seed": seed,
                    "accuracy": acc,
                    "images_seen": seen,
                    "images_seen_real": seen_real,
                    "images_seen_generated": seen_gen,
                    "pool_real": n if seen_real else 0,
                    "pool_generated": n if seen_gen else 0,
                    "seconds": round(time.perf_counter() - t0, 3),
                }
                runs.append(record)
                if on_run is not None:
                    on_run(record)

    summary = [_summary(runs, arm, f) for f in fracs for arm in ARMS]
    return {
        "study": "augment",
        "data": data,
        "test_data": test,
        "n_train": len(train_ds),
        "n_test": len(test_ds),
        "num_classes": k,
        "generator": gen_name,
        "generator_family": getattr(model, "family", ""),
        "generator_sha256": getattr(model, "model_sha256", None),
        "generator_image_size": int(getattr(model.config, "image_size", 0) or 0),
        "classifier": {
            "image_size": image_size,
            "channels": channels,
            "resize_filter": cfg.resize_filter,
            "resize_mode": cfg.resize_mode,
            **asdict(budget),
        },
        "seeds": seed_list,
        "fractions": list(fracs),
        "arms": dict(ARMS),
        "protocol": (
            "same CNN, steps and batch size in every arm; arm b batches are "
            f"{shares[0]} real + {shares[1]} generated; the generated pool is as large as the "
            "real pool (balanced labels, fresh per seed); test on the held-out real split"
        ),
        "summary": summary,
        "runs": runs,
        "seconds_generating": round(gen_seconds, 3),
        "wall_seconds": round(time.perf_counter() - started, 3),
        "pixelforge_version": __version__,
    }
