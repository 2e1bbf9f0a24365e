"""Memorisation check: are generated samples nearer to the training set than new real images are?

A generator that copies its training images puts samples (almost) on top of training images. Real
images it never saw (a held-out split of the same data) show how near an honest sample from the
data distribution falls to its nearest training image. So, in one feature space (an extractor's
features or raw pixels), for every generated sample and every held-out image, the Euclidean
distance to the nearest training image is compared:

* ``median_ratio`` = median(generated) / median(held-out). About 1 when samples are as far from
  the training set as new real data; well below 1 when samples sit on training images. (A blurry
  or poor generator gives a ratio above 1: that is a quality problem, not copying.)
* ``copies_fraction``: the share of samples nearer to a training image than the 1st percentile
  of the held-out distances (``copy_threshold``). Held-out data has 1% below that by
  construction, so about 1% is expected; a copying generator has far more.
* ``exact_copies_fraction``: the share of samples at distance ~0 (below 1e-6 of the held-out
  median): pixel-for-pixel (or feature-for-feature) copies.

Verdict (thresholds, chosen so that 10x the expected share of near copies, or samples twice as
near as real data, is a clear signal):

* ``likely copying``: copies_fraction >= 10% or median_ratio <= 0.5;
* ``possible copying``: copies_fraction >= 3% or median_ratio <= 0.8 (inspect the pairs);
* ``no sign of copying`` otherwise.

The distances are computed block by block in float64 (``|a|^2 + |b|^2 - 2 a.b``, clamped at 0),
so no N x M matrix is held at once. Features in, numbers out: no file I/O here.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from pixelforge.metrics._checks import ArrayLike, as_features
from pixelforge.metrics.errors import MetricError
from pixelforge.metrics.precision_recall import DEFAULT_BLOCK_ELEMENTS, _blocks, _sq_dist
from pixelforge.metrics.result import MetricResult, _plain

EXPECTED_COPIES = 0.01  # held-out images below their own 1st percentile, by construction
COPY_PERCENTILE = 1.0  # the copy threshold: this percentile of the held-out distances
LIKELY_COPIES, LIKELY_RATIO = 0.10, 0.5
POSSIBLE_COPIES, POSSIBLE_RATIO = 0.03, 0.8
EXACT_RELATIVE = 1e-6  # "exact copy": distance below this fraction of the held-out median
MIN_HELDOUT = 100  # fewer held-out images make the 1st percentile their minimum (or less)

LIKELY = "likely copying"
POSSIBLE = "possible copying"
NONE = "no sign of copying"


def nearest_neighbours(
    queries: ArrayLike,
    reference: ArrayLike,
    *,
    max_block_elements: int = DEFAULT_BLOCK_ELEMENTS,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(distance, index) of the nearest row of ``reference`` for each row of ``queries``.

    Euclidean distances in float64, shape (N,) each.
    """
    r = as_features(reference, "training features", dtype=torch.float64)
    q = as_features(queries, "query features", dtype=torch.float64, dim=r.shape[1])
    sq_q, sq_r = q.square().sum(dim=1), r.square().sum(dim=1)
    dist = torch.empty(q.shape[0], dtype=torch.float64)
    idx = torch.empty(q.shape[0], dtype=torch.long)
    for start, stop in _blocks(q.shape[0], r.shape[0], max_block_elements):
        d2 = _sq_dist(q[start:stop], sq_q[start:stop], r, sq_r)
        best = d2.min(dim=1)
        dist[start:stop] = best.values.sqrt()
        idx[start:stop] = best.indices
    return dist, idx


def _summary(d: np.ndarray) -> dict[str, float]:
    return {
        "median": float(np.median(d)),
        "p05": float(np.percentile(d, 5)),
        "p01": float(np.percentile(d, COPY_PERCENTILE)),
        "mean": float(d.mean()),
        "min": float(d.min()),
    }


def verdict_of(copies_fraction: float, median_ratio: float) -> str:
    """The verdict for these two numbers (thresholds in the module docstring)."""
    if copies_fraction >= LIKELY_COPIES or median_ratio <= LIKELY_RATIO:
        return LIKELY
    if copies_fraction >= POSSIBLE_COPIES or median_ratio <= POSSIBLE_RATIO:
        return POSSIBLE
    return NONE


@dataclass(frozen=True)
class MemorizationResult:
    """Nearest-training-image distances of generated samples against held-out real images."""

    verdict: str
    median_ratio: float  # median(generated) / median(held-out)
    copies_fraction: float  # share of samples nearer than the held-out 1st percentile
    exact_copies_fraction: float  # share of samples at distance ~0
    copy_threshold: float  # the held-out 1st percentile
    generated: Mapping[str, float]  # median, p05, p01, mean, min of the distances
    heldout: Mapping[str, float]
    n_train: int
    n_generated: int
    n_heldout: int
    pairs: tuple[
        tuple[int, int, float], ...
    ]  # (sample index, train index, distance), nearest first
    protocol: Mapping[str, Any] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()

    @property
    def copying(self) -> bool:
        return self.verdict == LIKELY

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "metric": "memorization",
            "verdict": self.verdict,
            "median_ratio": self.median_ratio,
            "copies_fraction": self.copies_fraction,
            "expected_copies_fraction": EXPECTED_COPIES,
            "exact_copies_fraction": self.exact_copies_fraction,
            "copy_threshold": self.copy_threshold,
            "generated": dict(self.generated),
            "heldout": dict(self.heldout),
            "n_train": self.n_train,
            "n_generated": self.n_generated,
            "n_heldout": self.n_heldout,
            "pairs": [{"sample": s, "train": t, "distance": d} for s, t, d in self.pairs],
            "thresholds": {
                "likely": {"copies_fraction": LIKELY_COPIES, "median_ratio": LIKELY_RATIO},
                "possible": {"copies_fraction": POSSIBLE_COPIES, "median_ratio": POSSIBLE_RATIO},
                "copy_percentile_of_heldout": COPY_PERCENTILE,
            },
            "protocol": {str(k): _plain(v) for k, v in self.protocol.items()},
            "warnings": list(self.warnings),
        }

    def metrics(self) -> list[MetricResult]:
        """The two headline numbers as :class:`MetricResult` values."""
        proto = dict(self.protocol)
        return [
            MetricResult(name, value, None, self.n_train, self.n_generated, proto, self.warnings)
            for name, value in (
                ("memorization_median_ratio", self.median_ratio),
                ("memorization_copies_fraction", self.copies_fraction),
            )
        ]


def memorization(
    train: ArrayLike,
    generated: ArrayLike,
    heldout: ArrayLike,
    *,
    k_pairs: int = 8,
    protocol: Mapping[str, Any] | None = None,
    max_block_elements: int = DEFAULT_BLOCK_ELEMENTS,
) -> MemorizationResult:
    """Compare ``generated`` and ``heldout`` features by their distance to ``train`` features.

    All three are N x D arrays from the same feature space. ``k_pairs`` of the samples nearest to
    a training image are returned as (sample index, train index, distance).
    """
    if k_pairs < 0:
        raise MetricError(f"k_pairs must be >= 0, got {k_pairs}")
    tr = as_features(train, "training features", dtype=torch.float64)
    gen = as_features(generated, "generated features", dtype=torch.float64, dim=tr.shape[1])
    held = as_features(heldout, "held-out features", dtype=torch.float64, dim=tr.shape[1])
    d_gen, i_gen = nearest_neighbours(gen, tr, max_block_elements=max_block_elements)
    d_held, _ = nearest_neighbours(held, tr, max_block_elements=max_block_elements)
    g, h = d_gen.numpy(), d_held.numpy()
    gs, hs = _summary(g), _summary(h)
    threshold = hs["p01"]
    copies = float((g < threshold).mean())
    exact = float((g <= EXACT_RELATIVE * hs["median"]).mean())
    if hs["median"] > 0:
        ratio = gs["median"] / hs["median"]
    else:
        ratio = math.inf if gs["median"] > 0 else 1.0
    order = np.argsort(g, kind="stable")[:k_pairs]
    pairs = tuple((int(i), int(i_gen[i]), float(g[i])) for i in order)
    warnings: list[str] = []
    if held.shape[0] < MIN_HELDOUT:
        warnings.append(
            f"only {held.shape[0]} held-out images: the copy threshold (their 1st percentile) is "
            f"about their minimum; use {MIN_HELDOUT} or more"
        )
    if threshold == 0:
        warnings.append(
            "at least 1% of the held-out images are exact duplicates of training images, so the "
            "copy threshold is 0; rely on median_ratio and exact_copies_fraction"
        )
    if gen.shape[0] < 100:
        warnings.append(f"only {gen.shape[0]} generated samples: the fractions are coarse")
    proto = {"distance": "euclidean, nearest training image", **(protocol or {})}
    verdict = (
        LIKELY
        if exact >= LIKELY_COPIES  # a copy is a copy even when the held-out threshold is 0
        else verdict_of(copies, ratio)
    )
    return MemorizationResult(
        verdict=verdict,
        median_ratio=float(ratio),
        copies_fraction=copies,
        exact_copies_fraction=exact,
        copy_threshold=threshold,
        generated=gs,
        heldout=hs,
        n_train=tr.shape[0],
        n_generated=gen.shape[0],
        n_heldout=held.shape[0],
        pairs=pairs,
        protocol=proto,
        warnings=tuple(warnings),
    )
