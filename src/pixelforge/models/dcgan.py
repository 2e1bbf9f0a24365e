"""DCGAN (Radford et al. 2016), unconditional or class-conditional.

The generator maps z (with a one-hot label appended when conditional) through transposed
convolutions that double the resolution from 4x4 to ``image_size``. The discriminator mirrors it.
A conditional discriminator either sees the label as extra input channels (``concat``) or through
the projection of Miyato and Koyama (2018) (``projection``): logit = w.h + <embed(y), h>.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from pixelforge.config import check_range
from pixelforge.errors import ConfigError
from pixelforge.models.base import ImageGenerator, check_image_fields
from pixelforge.nn.layers import dcgan_init, maybe_spectral, norm2d


@dataclass(frozen=True)
class DCGANConfig:
    image_size: int = 32  # output side in pixels: a power of two from 8 to 256
    channels: int | None = None  # image channels (1 gray, 3 RGB); null: taken from the dataset
    num_classes: int | None = (
        0  # 0: unconditional; K: conditional on K classes; null: from the dataset
    )
    z_dim: int = 100  # size of the latent vector z
    g_width: int = 64  # generator feature maps at the last hidden layer (ngf)
    d_width: int = 64  # discriminator feature maps at the first layer (ndf)
    g_norm: Literal["batch", "none"] = "batch"  # normalisation in the generator
    d_norm: Literal["batch", "none"] = "batch"  # normalisation in the discriminator
    spectral_norm: bool = False  # spectral normalisation of the discriminator's weights
    conditioning: Literal["projection", "concat"] = (
        "projection"  # how a conditional D sees the label
    )

    def __post_init__(self) -> None:
        check_image_fields(self.image_size, self.channels, self.num_classes)
        check_range("model.z_dim", self.z_dim, low=1)
        check_range("model.g_width", self.g_width, low=1)
        check_range("model.d_width", self.d_width, low=1)

    @property
    def levels(self) -> int:
        """Number of resolution doublings from 4x4 to image_size."""
        return int(math.log2(self.image_size)) - 2


def _resolved(config: DCGANConfig) -> tuple[int, int]:
    if config.channels is None or config.num_classes is None:
        raise ConfigError(
            "model.channels and model.num_classes must be set before building a model."
        )
    return config.channels, config.num_classes


class Generator(nn.Module):
    def __init__(self, config: DCGANConfig) -> None:
        super().__init__()
        channels, self.num_classes = _resolved(config)
        n = config.levels
        width = [config.g_width * 2 ** (n - 1 - i) for i in range(n)]  # 4x4 ... image_size/2
        layers: list[nn.Module] = [
            nn.ConvTranspose2d(config.z_dim + self.num_classes, width[0], 4, 1, 0, bias=False),
            norm2d(config.g_norm, width[0]),
            nn.ReLU(True),
        ]
        for c_in, c_out in itertools.pairwise(width):
            layers += [
                nn.ConvTranspose2d(c_in, c_out, 4, 2, 1, bias=False),
                norm2d(config.g_norm, c_out),
                nn.ReLU(True),
            ]
        layers += [nn.ConvTranspose2d(width[-1], channels, 4, 2, 1), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        if self.num_classes:
            if labels is None:
                raise ValueError("a conditional generator needs labels")
            z = torch.cat([z, F.one_hot(labels, self.num_classes).to(z.dtype)], dim=1)
        return self.net(z[:, :, None, None])


class Discriminator(nn.Module):
    def __init__(self, config: DCGANConfig) -> None:
        super().__init__()
        channels, self.num_classes = _resolved(config)
        self.concat = bool(self.num_classes) and config.conditioning == "concat"
        sn = config.spectral_norm
        n = config.levels
        width = [config.d_width * 2**i for i in range(n)]  # image_size/2 ... 4x4
        c0 = channels + (self.num_classes if self.concat else 0)
        layers: list[nn.Module] = [
            maybe_spectral(nn.Conv2d(c0, width[0], 4, 2, 1), sn),
            nn.LeakyReLU(0.2, True),
        ]
        for c_in, c_out in itertools.pairwise(width):
            layers += [
                maybe_spectral(nn.Conv2d(c_in, c_out, 4, 2, 1, bias=config.d_norm == "none"), sn),
                norm2d(config.d_norm, c_out),
                nn.LeakyReLU(0.2, True),
            ]
        self.features = nn.Sequential(*layers)
        self.head = maybe_spectral(nn.Linear(width[-1] * 16, 1), sn)
        self.embed = (
            maybe_spectral(nn.Embedding(self.num_classes, width[-1]), sn)
            if self.num_classes and not self.concat
            else None
        )

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """One logit per image."""
        if self.num_classes and labels is None:
            raise ValueError("a conditional discriminator needs labels")
        if self.concat:
            onehot = F.one_hot(labels, self.num_classes).to(x.dtype)  # type: ignore[arg-type]
            x = torch.cat([x, onehot[:, :, None, None].expand(-1, -1, *x.shape[2:])], dim=1)
        h = self.features(x)
        out = self.head(h.flatten(1)).squeeze(1)
        if self.embed is not None:
            out = out + (self.embed(labels) * h.sum(dim=(2, 3))).sum(dim=1)
        return out


class DCGAN(ImageGenerator):
    """A DCGAN: ``generator`` (EMA weights in a saved model) and ``discriminator``."""

    family = "dcgan"

    def __init__(self, config: DCGANConfig) -> None:
        super().__init__()
        self.config: DCGANConfig = config
        self.generator = Generator(config)
        self.discriminator = Discriminator(config)
        dcgan_init(self)

    def latent_shape(self) -> tuple[int, ...]:
        return (self.config.z_dim,)

    def generate(self, z: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        return self.generator(z, labels)
