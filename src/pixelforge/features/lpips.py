"""LPIPS, the learned perceptual image distance of Zhang et al. (CVPR 2018), VGG variant v0.1.

It computes what the ``lpips`` package's ``LPIPS(net="vgg", version="0.1")`` computes, without
torchvision:

1. inputs in [-1, 1] go through lpips' scaling layer, ``(x - shift) / scale`` with
   shift = (-0.030, -0.088, -0.188) and scale = (0.458, 0.448, 0.450);
2. VGG16 (torchvision's ImageNet weights) gives relu1_2, relu2_2, relu3_3, relu4_3, relu5_3;
3. each activation is unit-normalised over channels, ``f / (||f||_2 + 1e-10)``;
4. the squared difference of the two images' normalised activations goes through a 1x1
   convolution to one channel (the learned, non-negative "linear layers" ``lin0..lin4``, used as
   stored) and is averaged over space;
5. the five layer values are summed.

Both weight sets must be the real ones: VGG16 (``vgg16-397923af.pth``) and the linear layers
(``lpips/weights/v0.1/vgg.pth`` from the ``lpips`` package, a pickle read only after its pinned
SHA-256 has been checked). With either missing, :class:`LPIPSWeightsMissing` says which and how
to get it; there is no random fallback, since a random LPIPS measures nothing published.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import torch
from torch import nn

from pixelforge.features.vgg import VGG
from pixelforge.features.weights import (
    WeightsNotFoundError,
    load_exact,
    load_weights,
)

LAYERS = ("relu1_2", "relu2_2", "relu3_3", "relu4_3", "relu5_3")
CHANNELS = (64, 128, 256, 512, 512)
SHIFT = (-0.030, -0.088, -0.188)
SCALE = (0.458, 0.448, 0.450)


class LPIPSWeightsMissing(WeightsNotFoundError):
    """The VGG16 weights or the LPIPS linear layers (or both) were not found."""


class LPIPS(nn.Module):
    """LPIPS distance (VGG, v0.1): ``lpips(x, y)`` -> N distances; 0 for identical images.

    ``value_range`` is the range of the images passed in: (0, 1) (pixelforge's convention, the
    default) or (-1, 1) (what ``lpips`` itself expects).
    """

    shift: torch.Tensor
    scale: torch.Tensor

    def __init__(self, value_range: tuple[float, float] = (0.0, 1.0)):
        super().__init__()
        self.value_range = (float(value_range[0]), float(value_range[1]))
        self.net = VGG("vgg16")
        self.lins = nn.ModuleList(nn.Conv2d(c, 1, 1, bias=False) for c in CHANNELS)
        self.register_buffer("shift", torch.tensor(SHIFT).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("scale", torch.tensor(SCALE).view(1, 3, 1, 1), persistent=False)
        self.weights_sha256: dict[str, str] = {}
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> LPIPS:
        """Always in eval mode (lpips' dropout before the linear layers is for training only)."""
        return super().train(False)

    @classmethod
    def from_tensors(
        cls,
        vgg_tensors: Mapping[str, torch.Tensor],
        lin_tensors: Mapping[str, torch.Tensor],
        *,
        value_range: tuple[float, float] = (0.0, 1.0),
    ) -> LPIPS:
        """LPIPS from state dicts: torchvision VGG16 keys (``features.N.*``) and lpips' linear
        layer keys (``lin0.model.1.weight`` ... ``lin4.model.1.weight``)."""
        model = cls(value_range)
        vgg = {k: v for k, v in vgg_tensors.items() if k.startswith("features.")}
        load_exact(model.net, vgg, "VGG16 weights")
        lins: dict[str, torch.Tensor] = {}
        for i in range(len(CHANNELS)):
            key = f"lin{i}.model.1.weight"
            if key not in lin_tensors:
                raise LPIPSWeightsMissing(f"the LPIPS linear-layer weights lack {key}.")
            lins[f"{i}.weight"] = lin_tensors[key]
        load_exact(model.lins, lins, "LPIPS linear-layer weights")
        return model

    def _to_unit(self, images: torch.Tensor) -> torch.Tensor:
        lo, hi = self.value_range
        if (lo, hi) == (-1.0, 1.0):
            return images
        return (images - lo) / (hi - lo) * 2 - 1

    def layer_distances(self, x: torch.Tensor, y: torch.Tensor) -> list[torch.Tensor]:
        """The five per-layer terms, each N x 1 x 1 x 1 (their sum is the distance)."""
        fx = self.net.run((self._to_unit(x) - self.shift) / self.scale, LAYERS)
        fy = self.net.run((self._to_unit(y) - self.shift) / self.scale, LAYERS)
        terms = []
        for lin, name in zip(self.lins, LAYERS, strict=True):
            a, b = fx[name], fy[name]
            a = a / (torch.sqrt(torch.sum(a**2, dim=1, keepdim=True)) + 1e-10)
            b = b / (torch.sqrt(torch.sum(b**2, dim=1, keepdim=True)) + 1e-10)
            terms.append(lin((a - b) ** 2).mean(dim=(2, 3), keepdim=True))
        return terms

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """LPIPS distance per image pair: N (float32)."""
        terms = self.layer_distances(x, y)
        total = terms[0]
        for t in terms[1:]:
            total = total + t
        return total.flatten().float()


def lpips_vgg(
    vgg_weights: str | Path | None = None,
    lin_weights: str | Path | None = None,
    *,
    value_range: tuple[float, float] = (0.0, 1.0),
) -> LPIPS:
    """LPIPS (VGG, v0.1) with the published weights, each found as
    :func:`pixelforge.features.weights.load_weights` describes (``vgg16`` and ``lpips-vgg``).

    Raises :class:`LPIPSWeightsMissing` naming every missing part and how to get it.
    """
    missing: list[str] = []
    found = {}
    for name, path in (("vgg16", vgg_weights), ("lpips-vgg", lin_weights)):
        try:
            found[name] = load_weights(name, path)
        except WeightsNotFoundError as exc:
            missing.append(str(exc))
    if missing:
        raise LPIPSWeightsMissing(
            "LPIPS needs the VGG16 ImageNet weights and the LPIPS v0.1 linear layers. "
            + " ".join(missing)
            + " (The linear layers also come with `pip install lpips`, which pixelforge finds.)"
        )
    model = LPIPS.from_tensors(
        found["vgg16"].tensors, found["lpips-vgg"].tensors, value_range=value_range
    )
    model.weights_sha256 = {k: v.sha256 for k, v in found.items()}
    return model
