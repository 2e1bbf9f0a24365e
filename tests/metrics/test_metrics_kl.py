"""KL divergences: equal to torch.distributions and scipy, with documented zero handling."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.stats
import torch
from torch.distributions import Independent, Normal, kl_divergence

from pixelforge.metrics import (
    MetricError,
    kl_categorical,
    kl_diag_gaussian_standard,
    kl_diag_gaussians,
)


def _normal(mu: torch.Tensor, logvar: torch.Tensor) -> Independent:
    return Independent(Normal(mu, (0.5 * logvar).exp()), mu.ndim - 1)


def test_diagonal_gaussians_match_torch_distributions() -> None:
    g = torch.Generator().manual_seed(0)
    mu_p, mu_q = (
        torch.randn(5, 4, 3, generator=g, dtype=torch.float64),
        torch.randn(5, 4, 3, generator=g, dtype=torch.float64),
    )
    lv_p, lv_q = (
        torch.randn(5, 4, 3, generator=g, dtype=torch.float64),
        torch.randn(5, 4, 3, generator=g, dtype=torch.float64),
    )
    expected = kl_divergence(_normal(mu_p, lv_p), _normal(mu_q, lv_q))
    got = kl_diag_gaussians(mu_p, lv_p, mu_q, lv_q)
    assert got.shape == (5,)  # one value per sample, summed over the other dims
    assert torch.allclose(got, expected, rtol=1e-12)
    zeros = torch.zeros_like(mu_p)
    standard = kl_diag_gaussian_standard(mu_p, lv_p)
    assert torch.allclose(standard, kl_diag_gaussians(mu_p, lv_p, zeros, zeros), rtol=1e-12)
    assert torch.allclose(
        standard, kl_divergence(_normal(mu_p, lv_p), _normal(zeros, zeros)), rtol=1e-12
    )
    assert torch.equal(kl_diag_gaussian_standard(zeros, zeros), torch.zeros(5, dtype=torch.float64))


def test_gaussian_kl_is_differentiable() -> None:
    mu = torch.zeros(2, 3, requires_grad=True)
    logvar = torch.full((2, 3), 0.5, requires_grad=True)
    kl_diag_gaussian_standard(mu, logvar).sum().backward()
    assert logvar.grad is not None
    assert torch.allclose(logvar.grad, 0.5 * (torch.full((2, 3), 0.5).exp() - 1))


def test_categorical_matches_scipy_and_handles_zeros() -> None:
    rng = np.random.default_rng(0)
    p, q = rng.dirichlet(np.ones(6), size=4), rng.dirichlet(np.ones(6), size=4)
    got = kl_categorical(torch.from_numpy(p), torch.from_numpy(q))
    expected = [scipy.stats.entropy(p[i], q[i]) for i in range(4)]
    assert np.allclose(got.numpy(), expected, rtol=1e-12)
    # 0 log 0 = 0: zeros in p contribute nothing (no NaN).
    p0 = torch.tensor([0.5, 0.5, 0.0], dtype=torch.float64)
    q0 = torch.tensor([0.25, 0.25, 0.5], dtype=torch.float64)
    assert kl_categorical(p0, q0).item() == pytest.approx(math.log(2))
    # p > 0 where q = 0: the exact KL is infinite; eps makes a finite, smoothed value.
    assert math.isinf(kl_categorical(q0, p0).item())
    smoothed = kl_categorical(q0, p0, eps=1e-6).item()
    assert math.isfinite(smoothed) and smoothed > 1.0
    with pytest.raises(MetricError, match="same shape"):
        kl_categorical(p0, q0[:2])
