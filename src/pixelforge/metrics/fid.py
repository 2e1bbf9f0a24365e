"""Fréchet distance between Gaussians fitted to features (FID when the features are Inception's).

Heusel et al., "GANs Trained by a Two Time-Scale Update Rule Converge to a Local Nash
Equilibrium" (NeurIPS 2017); the distance is from Dowson & Landau (1982):

    d^2 = ||mu1 - mu2||^2 + tr(S1) + tr(S2) - 2 tr( (S1^1/2 S2 S1^1/2)^1/2 ).

The trace term comes from symmetric factorisations in float64, never from a general matrix
square root (``scipy.linalg.sqrtm`` of the non-symmetric S1 S2, as pytorch-fid and clean-fid do)
nor from Newton-Schulz iterations. For any factor F with F F^T = S1, B = F^T S2 F is symmetric
positive semi-definite with the non-zero eigenvalues of S1^1/2 S2 S1^1/2 (both are similar to
S1 S2 on its range), so tr sqrt(S1^1/2 S2 S1^1/2) = sum of sqrt(eigenvalues of B).

``method="eigh"``: S1 = V diag(l) V^T (``eigh``), eigenvalues below ``D * eps * max l``
dropped (so S1 may be rank-deficient, N < D), F = V diag(sqrt l); B = diag(sqrt l) V^T S2 V
diag(sqrt l) then ``eigvalsh``.

``method="cholesky"`` (default with numpy): F is the pivoted Cholesky factor of S1 (LAPACK ``dpstrf``, which stops at
S1's numerical rank, so singular S1 works too). It is cheaper than ``eigh`` and, because
Cholesky's error is relative to each variance rather than to the largest eigenvalue, more
accurate when feature variances span many decades (see ``docs/benchmarks.md``). numpy only.

In both, B's negative eigenvalues (rounding) are clipped to zero. There is deliberately no rank
cut-off on B: with badly scaled features B's small eigenvalues are real signal (a
``D * eps * max`` cut-off cost 6e-6 relative at 2048-d in the benchmark's features).

The default backend is numpy (OpenBLAS) with ``method="cholesky"``: in the benchmark it was both
the fastest route and exact to the last digit against a QR reference. ``backend="torch"`` runs
``method="eigh"`` with ``torch.linalg`` on the tensors' device (use it on a GPU).
"""

from __future__ import annotations

from typing import Literal, TypeVar

import numpy as np
import scipy.linalg
import torch

from pixelforge.metrics._checks import ArrayLike, as_features, check_finite
from pixelforge.metrics.errors import MetricError
from pixelforge.metrics.result import MetricResult, protocol_warnings, small_n_warnings
from pixelforge.metrics.stats import StreamingStats

Backend = Literal["numpy", "torch"]
_T = TypeVar("_T", np.ndarray, torch.Tensor)
Method = Literal["eigh", "cholesky"]


def frechet_distance(
    mu1: ArrayLike,
    sigma1: ArrayLike,
    mu2: ArrayLike,
    sigma2: ArrayLike,
    *,
    method: Method | None = None,
    backend: Backend = "numpy",
) -> float:
    """Fréchet distance between N(mu1, sigma1) and N(mu2, sigma2), in float64.

    Covariances must be symmetric positive semi-definite (as sample covariances are); they may
    be singular. Tiny negative eigenvalues from rounding are treated as zero. ``method`` defaults
    to ``cholesky`` with numpy and ``eigh`` with torch.
    """
    if method is None:
        method = "cholesky" if backend == "numpy" else "eigh"
    if method not in ("eigh", "cholesky"):
        raise MetricError(f"unknown method {method!r}; use 'eigh' or 'cholesky'")
    if backend == "numpy":
        m1, s1 = _as_gaussian(_to_numpy(mu1), _to_numpy(sigma1), "1")
        m2, s2 = _as_gaussian(_to_numpy(mu2), _to_numpy(sigma2), "2")
        _same_dim(m1, m2)
        diff = m1 - m2
        trace_sqrt = trace_sqrt_product(s1, s2, method=method)
        return float(diff @ diff + np.trace(s1) + np.trace(s2) - 2.0 * trace_sqrt)
    if backend == "torch":
        if method != "eigh":
            raise MetricError(
                "method='cholesky' needs backend='numpy' (torch has no pivoted Cholesky)"
            )
        t1, c1 = _as_gaussian(_to_torch(mu1), _to_torch(sigma1), "1")
        t2, c2 = _as_gaussian(_to_torch(mu2), _to_torch(sigma2), "2")
        _same_dim(t1, t2)
        t2, c2 = t2.to(t1.device), c2.to(t1.device)
        diff_t = t1 - t2
        tr_t = _trace_sqrt_product_torch(c1, c2)
        return float(diff_t @ diff_t + torch.trace(c1) + torch.trace(c2) - 2.0 * tr_t)
    raise MetricError(f"unknown backend {backend!r}; use 'numpy' or 'torch'")


def trace_sqrt_product(
    sigma1: np.ndarray, sigma2: np.ndarray, *, method: Method = "cholesky"
) -> float:
    """tr sqrt(S1^1/2 S2 S1^1/2) (= the sum of square roots of the eigenvalues of S1 S2), numpy.

    Both matrices must be symmetric PSD float64 (only their lower triangles are read).
    """
    if method == "cholesky":
        chol, piv, rank, info = scipy.linalg.lapack.dpstrf(sigma1, lower=1)
        if info < 0:  # pragma: no cover - only for invalid arguments
            raise MetricError(f"LAPACK dpstrf failed (info={info})")
        order = piv - 1  # S1[order][:, order] = L L^T, L = first `rank` columns
        factor = np.tril(chol)[:, :rank]
        s2 = sigma2[np.ix_(order, order)]
    else:
        lam, vec = np.linalg.eigh(sigma1)
        keep = lam > _rank_cutoff(lam)
        factor = vec if keep.all() else vec[:, keep]  # (no copy in the common full-rank case)
        factor *= np.sqrt(lam[keep])  # F = V diag(sqrt l): F F^T = S1 on its range
        s2 = sigma2
    if factor.shape[1] == 0:  # S1 == 0
        return 0.0
    b = factor.T @ (s2 @ factor)  # B = F^T S2 F, same non-zero eigenvalues as S1^1/2 S2 S1^1/2
    mu = np.linalg.eigvalsh(b)  # reads one triangle, so B's rounding asymmetry is moot
    return float(np.sqrt(np.clip(mu, 0.0, None)).sum())


def _trace_sqrt_product_torch(sigma1: torch.Tensor, sigma2: torch.Tensor) -> torch.Tensor:
    lam, vec = torch.linalg.eigh(sigma1)
    keep = lam > _rank_cutoff(lam)
    if not bool(keep.any()):
        return lam.new_zeros(())
    w = vec[:, keep] * lam[keep].sqrt()
    mu = torch.linalg.eigvalsh(w.T @ (sigma2 @ w))
    return mu.clamp_min(0.0).sqrt().sum()


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
    method: Method | None = None,
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
    # The distance is symmetric; factorising the covariance of the smaller set first keeps B
    # (rank <= that set's N - 1) free of noise eigenvalues when N < D.
    first, second = (real, fake) if real.n <= fake.n else (fake, real)
    value = frechet_distance(
        first.mean, first.cov, second.mean, second.cov, method=method, backend=backend
    )
    proto: dict[str, object] = {"feature_dim": real.dim, **(protocol or {}), "fid_method": method}
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
    method: Method | None = None,
    backend: Backend = "numpy",
) -> MetricResult:
    """FID between two in-memory feature arrays N x D (a shortcut over :class:`StreamingStats`)."""
    r = as_features(real, "real features", min_rows=2)
    f = as_features(fake, "fake features", dim=r.shape[1], min_rows=2)
    stats_real = StreamingStats(r.shape[1], device=r.device).update(r)
    stats_fake = StreamingStats(f.shape[1], device=r.device).update(f)
    return fid_from_stats(stats_real, stats_fake, protocol=protocol, method=method, backend=backend)


def _to_numpy(x: ArrayLike) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().to(torch.float64).numpy()
    return np.asarray(x, dtype=np.float64)


def _to_torch(x: ArrayLike) -> torch.Tensor:
    return torch.as_tensor(x).detach().to(torch.float64)


def _as_gaussian(mu: _T, sigma: _T, which: str) -> tuple[_T, _T]:
    """Checked mean (D,) and covariance (D, D): finite, and symmetric on a spot check."""
    if mu.ndim != 1 or tuple(sigma.shape) != (mu.shape[0], mu.shape[0]):
        raise MetricError(
            f"mu{which} must be a vector (D,) and sigma{which} a D x D matrix, got "
            f"{tuple(mu.shape)} and {tuple(sigma.shape)}"
        )
    if mu.shape[0] == 0:
        raise MetricError(f"mu{which} is empty: features need at least one dimension")
    check_finite(mu, f"mu{which}")
    check_finite(sigma, f"sigma{which}")
    # Up to 64 whole rows against the matching columns: catches a non-covariance (a factor, a
    # feature matrix) for the cost of O(64 D) instead of a full D x D transpose. The solvers
    # read one triangle, so rounding-level asymmetry is harmless.
    idx = np.unique(np.linspace(0, mu.shape[0] - 1, 64).astype(np.int64))
    rows, cols = sigma[idx, :], sigma[:, idx].T
    asym = float(abs(rows - cols).max())
    scale = float(abs(rows).max())
    if asym > 1e-6 * scale:
        raise MetricError(
            f"sigma{which} is not symmetric (|S - S^T| up to {asym:.3g}): pass a covariance matrix"
        )
    return mu, sigma


def _same_dim(a: np.ndarray | torch.Tensor, b: np.ndarray | torch.Tensor) -> None:
    if a.shape != b.shape:
        raise MetricError(
            f"the two Gaussians have different dimensions ({a.shape[0]} and {b.shape[0]}): "
            "both feature sets must come from the same extractor"
        )
