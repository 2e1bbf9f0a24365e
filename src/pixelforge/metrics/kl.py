"""Kullback-Leibler divergences: diagonal Gaussians (VAE latents) and discrete distributions.

All functions are differentiable torch code and reduce to one value per sample (summed over
every dimension but the first for Gaussians, over ``dim`` for discrete distributions).
"""

from __future__ import annotations

import torch

from pixelforge.metrics.errors import MetricError


def kl_diag_gaussian_standard(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL( N(mu, diag(exp(logvar))) || N(0, I) ) per sample, shape (N,).

    Kingma & Welling, "Auto-Encoding Variational Bayes" (2014), appendix B:
    KL = 1/2 sum( exp(logvar) + mu^2 - 1 - logvar ).
    """
    _same_shape(mu, logvar, "mu", "logvar")
    terms = logvar.exp() + mu.square() - 1.0 - logvar
    return 0.5 * terms.reshape(terms.shape[0], -1).sum(dim=1)


def kl_diag_gaussians(
    mu_p: torch.Tensor, logvar_p: torch.Tensor, mu_q: torch.Tensor, logvar_q: torch.Tensor
) -> torch.Tensor:
    """KL( N(mu_p, diag(exp(logvar_p))) || N(mu_q, diag(exp(logvar_q))) ) per sample, shape (N,).

    KL = 1/2 sum( logvar_q - logvar_p + (exp(logvar_p) + (mu_p - mu_q)^2) / exp(logvar_q) - 1 ).
    Equals :func:`kl_diag_gaussian_standard` when mu_q = 0 and logvar_q = 0.
    """
    _same_shape(mu_p, logvar_p, "mu_p", "logvar_p")
    _same_shape(mu_p, mu_q, "mu_p", "mu_q")
    _same_shape(mu_q, logvar_q, "mu_q", "logvar_q")
    # (var_p + diff^2) / var_q written with exp(-logvar_q) to avoid dividing by an underflowed var
    terms = (
        logvar_q - logvar_p + (logvar_p.exp() + (mu_p - mu_q).square()) * torch.exp(-logvar_q) - 1.0
    )
    return 0.5 * terms.reshape(terms.shape[0], -1).sum(dim=1)


def kl_categorical(
    p: torch.Tensor, q: torch.Tensor, *, dim: int = -1, eps: float = 0.0
) -> torch.Tensor:
    """KL(p || q) = sum p log(p / q) between probability vectors (histograms) along ``dim``.

    Zeros follow the mathematical conventions: a term with p = 0 is 0 (0 log 0 = 0, computed with
    ``xlogy`` so no NaN appears), and p > 0 where q = 0 gives +inf. ``eps > 0`` instead clamps q
    to at least ``eps`` (a smoothed, always finite estimate; it is no longer the exact KL).
    Inputs are not renormalised: pass distributions that sum to 1 along ``dim``
    (unnormalised histograms: divide by their sum first).
    """
    if p.shape != q.shape:
        raise MetricError(
            f"p and q must have the same shape, got {tuple(p.shape)} and {tuple(q.shape)}"
        )
    if eps > 0:
        q = q.clamp_min(eps)
    # xlogy(p, p) - xlogy(p, q): 0 where p == 0, +inf where p > 0 and q == 0.
    return (torch.special.xlogy(p, p) - torch.special.xlogy(p, q)).sum(dim=dim)


def _same_shape(a: torch.Tensor, b: torch.Tensor, na: str, nb: str) -> None:
    if a.shape != b.shape:
        raise MetricError(
            f"{na} and {nb} must have the same shape, got {tuple(a.shape)} and {tuple(b.shape)}"
        )
    if a.ndim < 1:
        raise MetricError(f"{na} must have a batch dimension first, got a scalar")
