"""Small layers and initialisers shared by several families."""

from __future__ import annotations

import torch
from torch import nn


def norm2d(kind: str, channels: int) -> nn.Module:
    """A 2-D normalisation layer by name: ``batch`` or ``none``."""
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "none":
        return nn.Identity()
    raise ValueError(f"unknown normalisation '{kind}'")


def maybe_spectral(module: nn.Module, enabled: bool) -> nn.Module:
    """Wrap ``module`` in spectral normalisation (Miyato et al. 2018) when ``enabled``."""
    return nn.utils.parametrizations.spectral_norm(module) if enabled else module


def _raw_weight(m: nn.Module) -> torch.Tensor:
    """The trainable weight, under a spectral-norm parametrisation if there is one."""
    if hasattr(m, "parametrizations"):
        return m.parametrizations.weight.original  # type: ignore[union-attr,return-value]
    return m.weight  # type: ignore[return-value]


@torch.no_grad()
def dcgan_init(module: nn.Module) -> None:
    """DCGAN initialisation (Radford et al. 2016): weights N(0, 0.02), norm scales N(1, 0.02)."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d | nn.ConvTranspose2d | nn.Linear):
            nn.init.normal_(_raw_weight(m), 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Embedding):
            nn.init.normal_(_raw_weight(m), 0.0, 0.02)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)
