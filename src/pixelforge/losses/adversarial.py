"""Adversarial losses and discriminator regularisers shared by every GAN family.

Kinds: ``non-saturating`` (Goodfellow et al. 2014), ``hinge`` (Lim and Ye 2017; Miyato et al.
2018), ``lsgan`` (Mao et al. 2017, targets 1/0) and ``wgan-gp`` (Gulrajani et al. 2017, with
:func:`gradient_penalty`). :func:`r1_penalty` is the R1 regulariser of Mescheder et al. (2018).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import torch
import torch.nn.functional as F

GANLoss = Literal["non-saturating", "hinge", "lsgan", "wgan-gp"]


def d_loss(kind: GANLoss, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """Discriminator loss from logits on real and generated images."""
    if kind == "non-saturating":
        return F.softplus(-real).mean() + F.softplus(fake).mean()
    if kind == "hinge":
        return F.relu(1 - real).mean() + F.relu(1 + fake).mean()
    if kind == "lsgan":
        return 0.5 * ((real - 1) ** 2).mean() + 0.5 * (fake**2).mean()
    if kind == "wgan-gp":
        return fake.mean() - real.mean()
    raise ValueError(f"unknown GAN loss '{kind}'")


def g_loss(kind: GANLoss, fake: torch.Tensor) -> torch.Tensor:
    """Generator loss from the discriminator's logits on generated images."""
    if kind == "non-saturating":
        return F.softplus(-fake).mean()
    if kind in ("hinge", "wgan-gp"):
        return -fake.mean()
    if kind == "lsgan":
        return 0.5 * ((fake - 1) ** 2).mean()
    raise ValueError(f"unknown GAN loss '{kind}'")


def r1_penalty(real_logits: torch.Tensor, real_images: torch.Tensor) -> torch.Tensor:
    """Mean over the batch of ||d D(x) / d x||^2 at real images (``real_images`` needs grad)."""
    (grad,) = torch.autograd.grad(real_logits.sum(), real_images, create_graph=True)
    return grad.pow(2).flatten(1).sum(1).mean()


def gradient_penalty(
    critic: Callable[[torch.Tensor], torch.Tensor],
    real: torch.Tensor,
    fake: torch.Tensor,
    eps: torch.Tensor,
) -> torch.Tensor:
    """WGAN-GP: mean of (||grad critic(x_hat)|| - 1)^2 at x_hat = eps*real + (1-eps)*fake.

    ``eps`` (N x 1 x 1 x 1 in [0, 1]) comes from the caller so that it is seeded like every other
    draw of the train step.
    """
    x_hat = (eps * real + (1 - eps) * fake).requires_grad_(True)
    (grad,) = torch.autograd.grad(critic(x_hat).sum(), x_hat, create_graph=True)
    return (grad.flatten(1).norm(dim=1) - 1).pow(2).mean()
