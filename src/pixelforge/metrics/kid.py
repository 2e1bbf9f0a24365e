"""Kernel Inception Distance: unbiased MMD^2 with a cubic polynomial kernel, over random subsets.

Bińkowski et al., "Demystifying MMD GANs" (ICLR 2018). Defaults and formula follow
torch-fidelity (``metric_kid.py``) and torchmetrics (``KernelInceptionDistance``):
k(x, y) = (x.y / D + 1)^3, 100 subsets of 1000 samples drawn without replacement, and per
subset of size m

    MMD^2 = (sum_{i!=j} k(x_i, x_j) + sum_{i!=j} k(y_i, y_j)) / (m (m - 1)) - 2 sum_{i,j} k(x_i, y_j) / m^2

(the within-set sums drop the diagonal; the cross term keeps it, exactly as both libraries do).
The result is the mean over subsets and their population standard deviation (``np.std``,
``torch.std(unbiased=False)``).

Subsets come from ``numpy.random.RandomState(seed)``: for each subset, ``choice(n_real, m,
replace=False)`` then ``choice(n_fake, m, replace=False)``, the same draws as torch-fidelity
with ``rng_seed=seed`` (its default seed is 2020, also ours). Pass ``indices`` to reuse exactly
the same subsets in another comparison.
"""

from __future__ import annotations

import numpy as np
import torch

from pixelforge.metrics._checks import ArrayLike, as_features
from pixelforge.metrics.errors import MetricError
from pixelforge.metrics.result import MetricResult, protocol_warnings, small_n_warnings

DEFAULT_SUBSETS = 100
DEFAULT_SUBSET_SIZE = 1000
DEFAULT_SEED = 2020  # torch-fidelity's rng_seed


def kid_subset_indices(
    n_real: int,
    n_fake: int,
    *,
    subsets: int = DEFAULT_SUBSETS,
    subset_size: int = DEFAULT_SUBSET_SIZE,
    seed: int = DEFAULT_SEED,
) -> tuple[np.ndarray, np.ndarray]:
    """Row indices of each subset: two int64 arrays ``subsets x subset_size`` (real, fake)."""
    if subsets < 1:
        raise MetricError(f"KID needs at least 1 subset, got subsets={subsets}")
    if subset_size < 2:
        raise MetricError(f"KID needs subsets of at least 2 samples, got subset_size={subset_size}")
    if subset_size > min(n_real, n_fake):
        raise MetricError(
            f"KID subset_size={subset_size} exceeds the sample count (n_real={n_real}, "
            f"n_fake={n_fake}); lower subset_size or add samples"
        )
    rng = np.random.RandomState(seed)
    real_idx = np.empty((subsets, subset_size), dtype=np.int64)
    fake_idx = np.empty((subsets, subset_size), dtype=np.int64)
    for i in range(subsets):  # interleaved draws, as torch-fidelity makes them
        real_idx[i] = rng.choice(n_real, subset_size, replace=False)
        fake_idx[i] = rng.choice(n_fake, subset_size, replace=False)
    return real_idx, fake_idx


def polynomial_mmd2(
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    degree: int = 3,
    gamma: float | None = None,
    coef: float = 1.0,
) -> float:
    """Unbiased MMD^2 between equal-size samples x, y (m x D) with (gamma x.y + coef)^degree.

    ``gamma`` defaults to 1 / D. Computed in the dtype of ``x`` (float64 from :func:`kid`).
    """
    m = x.shape[0]
    if y.shape[0] != m or m < 2:
        raise MetricError(f"MMD^2 needs two samples of equal size >= 2, got {m} and {y.shape[0]}")
    g = 1.0 / x.shape[1] if gamma is None else gamma
    k_xx = (x @ x.T * g + coef) ** degree
    k_yy = (y @ y.T * g + coef) ** degree
    k_xy = (x @ y.T * g + coef) ** degree
    within = (k_xx.sum() - k_xx.diagonal().sum()) + (k_yy.sum() - k_yy.diagonal().sum())
    return float(within / (m * (m - 1)) - 2.0 * k_xy.sum() / (m * m))


def kid(
    real: ArrayLike,
    fake: ArrayLike,
    *,
    subsets: int = DEFAULT_SUBSETS,
    subset_size: int | None = None,
    seed: int = DEFAULT_SEED,
    indices: tuple[np.ndarray, np.ndarray] | None = None,
    degree: int = 3,
    gamma: float | None = None,
    coef: float = 1.0,
    protocol: dict[str, object] | None = None,
) -> MetricResult:
    """KID between real and fake features (N x D each): mean and std of MMD^2 over subsets.

    ``subset_size`` defaults to min(1000, n_real, n_fake) (a warning says when it is below 1000).
    ``indices`` (from :func:`kid_subset_indices`) overrides ``subsets``, ``subset_size`` and
    ``seed``. Kernels are computed in float64: about 12 GFLOP per subset for 2048-d features.

    The estimator is unbiased for independent samples, so two samples of one distribution give
    ~0. The same array on both sides does not give exactly 0: overlapping subsets pair samples
    with themselves in the cross term, a negative term of order 1/m.
    """
    r = as_features(real, "real features", min_rows=2)
    f = as_features(fake, "fake features", dim=r.shape[1], min_rows=2, device=r.device)
    n_real, n_fake = r.shape[0], f.shape[0]
    notes: list[str] = []
    if indices is None:
        if subset_size is None:
            subset_size = min(DEFAULT_SUBSET_SIZE, n_real, n_fake)
            if subset_size < DEFAULT_SUBSET_SIZE:
                notes.append(
                    f"KID subset size lowered to {subset_size} (fewer than "
                    f"{DEFAULT_SUBSET_SIZE} samples in a set): not comparable to the standard "
                    "protocol's 1000"
                )
        real_idx, fake_idx = kid_subset_indices(
            n_real, n_fake, subsets=subsets, subset_size=subset_size, seed=seed
        )
    else:
        real_idx, fake_idx = (np.asarray(a, dtype=np.int64) for a in indices)
        if real_idx.ndim != 2 or real_idx.shape != fake_idx.shape or real_idx.shape[1] < 2:
            raise MetricError(
                "KID indices must be two integer arrays of the same shape subsets x subset_size "
                f"(subset_size >= 2), got {real_idx.shape} and {fake_idx.shape}"
            )
        for name, idx, n in (("real", real_idx, n_real), ("fake", fake_idx, n_fake)):
            if idx.min() < 0 or idx.max() >= n:
                raise MetricError(f"KID {name} indices out of range for {n} {name} samples")
        subsets, subset_size = real_idx.shape
    scores = np.array(
        [
            polynomial_mmd2(
                r[torch.from_numpy(ri).to(r.device)],
                f[torch.from_numpy(fi).to(r.device)],
                degree=degree,
                gamma=gamma,
                coef=coef,
            )
            for ri, fi in zip(real_idx, fake_idx, strict=True)
        ]
    )
    proto: dict[str, object] = {
        "feature_dim": r.shape[1],
        **(protocol or {}),
        "kid_subsets": subsets,
        "kid_subset_size": subset_size,
        "kid_degree": degree,
        "kid_gamma": gamma if gamma is not None else 1.0 / r.shape[1],
        "kid_coef": coef,
        "kid_seed": seed if indices is None else "indices given",
    }
    return MetricResult(
        name="kid",
        value=float(scores.mean()),
        std=float(scores.std()),  # population std (ddof=0), like torch-fidelity and torchmetrics
        n_real=n_real,
        n_fake=n_fake,
        protocol=proto,
        warnings=(*small_n_warnings("kid", n_real, n_fake), *notes, *protocol_warnings(proto)),
    )
