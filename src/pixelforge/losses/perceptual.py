"""Perceptual (feature) loss and Gram-matrix style loss on a frozen VGG.

:class:`PerceptualLoss` compares VGG activations of two images with L1 or L2 (Johnson, Alahi and
Fei-Fei 2016, "Perceptual Losses for Real-Time Style Transfer and Super-Resolution"), a weighted
sum over layers of the mean absolute / squared difference.

:class:`StyleLoss` compares Gram matrices of VGG activations (Gatys, Ecker and Bethge 2016,
"Image Style Transfer Using Convolutional Neural Networks"). The Gram matrix of an activation
``F`` (C x HW) is ``G = F F^T / (C H W)`` (normalised as Johnson et al. do, so layers of
different sizes weigh alike); the loss is the weighted sum over layers of the mean squared
difference of the Gram entries. A style target with batch 1 is compared with every image.

Both take images in ``value_range`` ((0, 1) by default, or (-1, 1)), convert them to [0, 1] and
apply the ImageNet normalisation inside the VGG. The VGG is frozen (no gradients into its
weights, always in eval mode); gradients flow to the images. It is built by
:func:`pixelforge.features.vgg.vgg`, which falls back to a seeded random VGG with a warning when
torchvision's weights are not found.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Literal

import torch
from torch import nn

from pixelforge.features.vgg import DEFAULT_LAYERS, VGG, Arch, vgg

Criterion = Literal["l1", "l2"]


def gram_matrix(features: torch.Tensor) -> torch.Tensor:
    """N x C x H x W activations -> N x C x C Gram matrices ``F F^T / (C H W)``."""
    n, c, h, w = features.shape
    f = features.reshape(n, c, h * w)
    return f @ f.transpose(1, 2) / (c * h * w)


def _layer_weights(
    layers: Sequence[str] | Mapping[str, float] | None, arch: Arch
) -> dict[str, float]:
    if layers is None:
        return dict.fromkeys(DEFAULT_LAYERS[arch], 1.0)
    if isinstance(layers, Mapping):
        return {str(k): float(v) for k, v in layers.items()}
    return dict.fromkeys(layers, 1.0)


class _VGGLoss(nn.Module):
    def __init__(
        self,
        layers: Sequence[str] | Mapping[str, float] | None,
        *,
        arch: Arch,
        value_range: tuple[float, float],
        weights: str | Path | None,
        network: VGG | None,
    ):
        super().__init__()
        lo, hi = float(value_range[0]), float(value_range[1])
        if hi <= lo:
            raise ValueError(f"value_range must be (low, high) with low < high, got {value_range}")
        self.value_range = (lo, hi)
        self.vgg = network if network is not None else vgg(arch, weights)
        self.vgg.requires_grad_(False).eval()
        self.layer_weights = _layer_weights(layers, self.vgg.arch)
        # Fail now on a misspelt layer name rather than at the first step.
        unknown = [n for n in self.layer_weights if n not in self.vgg.layer_names]
        if unknown:
            raise ValueError(
                f"unknown {self.vgg.arch} layer(s) {', '.join(unknown)}; known: "
                f"{', '.join(self.vgg.layer_names)}"
            )

    def train(self, mode: bool = True) -> _VGGLoss:
        super().train(mode)
        self.vgg.eval()
        return self

    def _features(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        lo, hi = self.value_range
        x01 = images if (lo, hi) == (0.0, 1.0) else (images - lo) / (hi - lo)
        return self.vgg.activations(x01, list(self.layer_weights))

    def _target_features(self, target: torch.Tensor) -> dict[str, torch.Tensor]:
        if target.requires_grad:
            return self._features(target)
        with torch.no_grad():
            return self._features(target)


class PerceptualLoss(_VGGLoss):
    """Weighted L1/L2 distance of VGG activations: ``loss(pred, target)`` -> scalar.

    ``layers``: layer names (weight 1 each) or a ``{name: weight}`` mapping; default
    :data:`pixelforge.features.vgg.DEFAULT_LAYERS` of ``arch``. ``criterion``: "l1" (mean
    absolute difference) or "l2" (mean squared difference), per layer. ``network``: an existing
    :class:`~pixelforge.features.vgg.VGG` to share (then ``arch`` and ``weights`` are unused).
    """

    def __init__(
        self,
        layers: Sequence[str] | Mapping[str, float] | None = None,
        *,
        criterion: Criterion = "l1",
        arch: Arch = "vgg16",
        value_range: tuple[float, float] = (0.0, 1.0),
        weights: str | Path | None = None,
        network: VGG | None = None,
    ):
        if criterion not in ("l1", "l2"):
            raise ValueError(f"criterion must be 'l1' or 'l2', not {criterion!r}")
        super().__init__(
            layers, arch=arch, value_range=value_range, weights=weights, network=network
        )
        self.criterion = criterion

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        fp = self._features(pred)
        ft = self._target_features(target)
        total = pred.new_zeros(())
        for name, weight in self.layer_weights.items():
            diff = fp[name] - ft[name]
            term = diff.abs().mean() if self.criterion == "l1" else diff.pow(2).mean()
            total = total + weight * term
        return total


class StyleLoss(_VGGLoss):
    """Weighted mean squared difference of Gram matrices: ``loss(pred, style)`` -> scalar.

    ``layers`` as in :class:`PerceptualLoss`; the default for VGG19 is Gatys et al.'s relu1_1
    ... relu5_1. ``style`` may have batch 1 (one style for all images) and any size.
    """

    def __init__(
        self,
        layers: Sequence[str] | Mapping[str, float] | None = None,
        *,
        arch: Arch = "vgg19",
        value_range: tuple[float, float] = (0.0, 1.0),
        weights: str | Path | None = None,
        network: VGG | None = None,
    ):
        super().__init__(
            layers, arch=arch, value_range=value_range, weights=weights, network=network
        )

    def forward(self, pred: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        fp = self._features(pred)
        fs = self._target_features(style)
        total = pred.new_zeros(())
        for name, weight in self.layer_weights.items():
            gp, gs = gram_matrix(fp[name]), gram_matrix(fs[name])
            total = total + weight * (gp - gs.expand_as(gp)).pow(2).mean()
        return total
