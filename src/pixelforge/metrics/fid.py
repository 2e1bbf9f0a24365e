"""Fréchet distance between Gaussians fitted to features (FID when the features are Inception's).

Heusel et al., "GANs Trained by a Two Time-Scale Update Rule Converge to a Local Nash
Equilibrium" (NeurIPS 2017); the distance is from Dowson & Landau (1982):

    d^2 = ||mu1 - mu2||^2 + tr(S1) + tr(S2) - 2 tr( (S1^1/2 S2 S1^1/2)^1/2 ).

The trace term is computed from two symmetric eigendecompositions in float64, never from a
general matrix square root (``scipy.linalg.sqrtm`` of the non-symmetric S1 S2, as pytorch-fid and
clean-fid do) nor from Newton-Schulz iterations:

1. S1 = V diag(l) V^T (``eigh``); eigenvalues below the rank cut-off are dropped, so S1 may be
   rank-deficient (N < D);
2. B = diag(sqrt l) (V^T S2 V) diag(sqrt l) is symmetric PSD with the eigenvalues of
   S1^1/2 S2 S1^1/2 (it equals W^T S2 W with W = V diag(sqrt l), and W W^T = S1);
3. tr sqrt(...) = sum of the square roots of B's eigenvalues (``eigvalsh``), with eigenvalues
   below the rank cut-off (rounding noise around zero) set to zero.

The default backend is numpy (OpenBLAS ``syevd``): on the 2-core CPU of
``docs/benchmarks.md`` it was several times faster than ``torch.linalg.eigh`` (MKL) for
2048 x 2048; the ``"torch"`` backend keeps tensors on their device (use it on a GPU).
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch

from pixelforge.metrics._checks import ArrayLike, as_features, check_finite
from pixelforge.metrics.errors import MetricError
from pixelforge.metrics.result import MetricResult, protocol_warnings, small_n_warnings
from pixelforge.metrics.stats import StreamingStats

Backend = Literal["numpy", "torch"]


def frechet_distance(
    mu1: ArrayLike,
    sigma1: ArrayLike,
    mu2: ArrayLike,
    sigma2: ArrayLike,
    *,
    backend: Backend = "numpy",
) -> float:
    """Fréchet distance between N(mu1, sigma1) and N(mu2, sigma2), in float64.

    Covariances must be symmetric positive semi-definite (as sample covariances are); they may
    be singular. Tiny negative eigenvalues from rounding are treated as zero.
    """
    m1, s1 = _as_gaussian(mu1, sigma1, "1")
    m2, s2 = _as_gaussian(mu2, sigma2, "2")
    if m1.shape != m2.shape:
        raise MetricError(
            f"the two Gaussians have different dimensions ({m1.shape[0]} and {m2.shape[0]}): "
            "both feature sets must come from the same extractor"
        )
    if backend == "numpy":
        a, b, c = _as_numpy(m1), _as_numpy(s1), _as_numpy(m2)
        d = _as_numpy(s2)
        diff = a - c
        tr_covmean = trace_sqrt_product(b, d)
        return float(diff @ diff + np.trace(b) + np.trace(d) - 2.0 * tr_covmean)
    if backend == "torch":
        diff_t = m1 - m2.to(m1.device)
        s2 = s2.to(m1.device)
        tr_t = _trace_sqrt_product_torch(s1, s2)
        return float(diff_t @ diff_t + torch.trace(s1) + torch.trace(s2) - 2.0 * tr_t)
    raise MetricError(f"unknown backend {backend!r}; use 'numpy' or 'torch'")


def trace_sqrt_product(sigma1: np.ndarray, sigma2: np.ndarray) -> float:
    """tr sqrt(S1^1/2 S2 S1^1/2) (= the sum of square roots of the eigenvalues of S1 S2), numpy."""
    lam, vec = np.linalg.eigh(sigma1)
    keep = lam > _rank_cutoff(lam)
    if not keep.any():
        return 0.0
    w = vec[:, keep] * np.sqrt(lam[keep])  # W = V diag(sqrt l): W W^T = S1 on its range
    b = w.T @ (sigma2 @ w)  # B = W^T S2 W, same non-zero eigenvalues as S1^1/2 S2 S1^1/2
    mu = np.linalg.eigvalsh(b)  # eigvalsh reads one triangle, so B's rounding asymmetry is moot
    mu = mu[mu > _rank_cutoff(mu)]
    return float(np.sqrt(mu).sum())


def _trace_sqrt_product_torch(sigma1: torch.Tensor, sigma2: torch.Tensor) -> torch.Tensor:
    lam, vec = torch.linalg.eigh(sigma1)
    keep = lam > _rank_cutoff(lam)
    if not bool(keep.any()):
        return lam.new_zeros(())
    w = vec[:, keep] * lam[keep].sqrt()
    mu = torch.linalg.eigvalsh(w.T @ (sigma2 @ w))
    return mu[mu > _rank_cutoff(mu)].sqrt().sum()


def _rank_cutoff(eigenvalues: np.ndarray | torch.Tensor) -> float:
    # numpy.linalg.matrix_rank's tolerance: below D * eps * max|eigenvalue| is rounding noise.
    n = eigenvalues.shape[0]
    if n == 0:
        return 0.0
    top = float(
        np.abs(eigenvalues).max()
        if isinstance(eigenvalues, np.ndarray)
        else eigenvalues.abs().max()
    )
    return n * float(np.finfo(np.float64).eps) * top


def fid_from_stats(
    real: StreamingStats,
    fake: StreamingStats,
    *,
    protocol: dict[str, object] | None = None,
    backend: Backend = "numpy",
) -> MetricResult:
    """FID between two feature accumulators, as a self-describing :class:`MetricResult`.

    ``protocol`` describes how the features were made (``FeatureExtractor.describe()`` plus the
    resize mode); its ``comparable_to_published`` flag and the sample counts add warnings.
    """
    if real.dim != fake.dim:
        raise MetricError(
            f"real features are {real.dim}-d but fake features are {fake.dim}-d: both sets "
            "must come from the same extractor and layer"
        )
    for name, s in (("real", real), ("fake", fake)):
        if s.n < 2:
            raise MetricError(f"FID needs at least 2 {name} samples, got {s.n}")
    value = frechet_distance(real.mean, real.cov, fake.mean, fake.cov, backend=backend)
    proto: dict[str, object] = {"feature_dim": real.dim, **(protocol or {})}
    return MetricResult(
        name="fid",
        value=value,
        n_real=real.n,
        n_fake=fake.n,
        protocol=proto,
        warnings=(*small_n_warnings("fid", real.n, fake.n), *protocol_warnings(proto)),
    )


def fid_from_features(
    real: ArrayLike,
    fake: ArrayLike,
    *,
    protocol: dict[str, object] | None = None,
    backend: Backend = "numpy",
) -> MetricResult:
    """FID between two in-memory feature arrays N x D (a shortcut over :class:`StreamingStats`)."""
    r = as_features(real, "real features", min_rows=2)
    f = as_features(fake, "fake features", dim=r.shape[1], min_rows=2)
    stats_real = StreamingStats(r.shape[1], device=r.device).update(r)
    stats_fake = StreamingStats(f.shape[1], device=r.device).update(f)
    return fid_from_stats(stats_real, stats_fake, protocol=protocol, backend=backend)


def _as_gaussian(mu: ArrayLike, sigma: ArrayLike, which: str) -> tuple[torch.Tensor, torch.Tensor]:
    m = torch.as_tensor(mu).detach().to(torch.float64)
    s = torch.as_tensor(sigma).detach().to(torch.float64)
    if m.ndim != 1 or s.shape != (m.shape[0], m.shape[0]):
        raise MetricError(
            f"mu{which} must be a vector (D,) and sigma{which} a D x D matrix, got "
            f"{tuple(m.shape)} and {tuple(s.shape)}"
        )
    if m.shape[0] == 0:
        raise MetricError(f"mu{which} is empty: features need at least one dimension")
    check_finite(m, f"mu{which}")
    check_finite(s, f"sigma{which}")
    asym = float((s - s.T).abs().max())
    if asym > 1e-6 * max(float(s.abs().max()), 1e-300):
        raise MetricError(
            f"sigma{which} is not symmetric (max |S - S^T| = {asym:.3g}): pass a covariance matrix"
        )
    return m, (s + s.T) / 2


def _as_numpy(t: torch.Tensor) -> np.ndarray:
    return t.cpu().numpy()
