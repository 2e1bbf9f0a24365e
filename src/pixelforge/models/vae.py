"""Autoencoder and variational autoencoder (Kingma and Welling 2014) with a vector latent.

The convolutional encoder halves the resolution from ``image_size`` down to 4x4 and maps the
features to the mean ``mu`` (and, when variational, the log-variance ``logvar``) of the latent.
The decoder mirrors it: a linear layer to 4x4 features, then transposed convolutions that double
the resolution up to ``image_size``, ending in tanh (images in [-1, 1]).

Sampling (:meth:`ImageGenerator.sample`) decodes latents drawn from N(0, I). That is what a VAE is
trained for; a plain autoencoder (``variational=False``) puts no prior on its codes, so its
samples show what decoding prior noise gives without one.

For VAE-GAN (Larsen et al. 2016) the model also holds a DCGAN discriminator of ``d_width`` feature
maps; it is saved with the model but not used to generate.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import torch
from torch import nn

from pixelforge.config import check_range
from pixelforge.errors import ConfigError
from pixelforge.models.base import ImageGenerator, check_image_fields
from pixelforge.models.dcgan import DCGANConfig
from pixelforge.models.dcgan import Discriminator as DCGANDiscriminator


@dataclass(frozen=True)
class VAEConfig:
    image_size: int = 32  # output side in pixels: a power of two from 8 to 256
    channels: int | None = None  # image channels (1 gray, 3 RGB); null: taken from the dataset
    num_classes: int | None = 0  # must be 0: the VAE is unconditional (kept for the data checks)
    latent_dim: int = 32  # size of the latent vector
    width: int = 32  # encoder feature maps at the first layer (decoder mirrors it at the last)
    variational: bool = True  # true: VAE (Gaussian posterior, KL term); false: plain autoencoder
    d_width: int = 32  # VAE-GAN discriminator feature maps at the first layer (0: none)

    def __post_init__(self) -> None:
        check_image_fields(self.image_size, self.channels, None)
        if self.num_classes not in (0, None):
            raise ConfigError(
                f"model.num_classes must be 0: the vae family is unconditional, got "
                f"{self.num_classes}."
            )
        check_range("model.latent_dim", self.latent_dim, low=1)
        check_range("model.width", self.width, low=1)
        check_range("model.d_width", self.d_width, low=0)

    @property
    def levels(self) -> int:
        """Number of resolution halvings from image_size to 4x4."""
        return int(math.log2(self.image_size)) - 2


def _channels(config: VAEConfig) -> int:
    if config.channels is None:
        raise ConfigError("model.channels must be set before building a model.")
    return config.channels


def _widths(config: VAEConfig) -> list[int]:
    """Feature maps per level, from image_size/2 down to 4x4."""
    return [config.width * 2**i for i in range(config.levels)]


class Encoder(nn.Module):
    """Images in [-1, 1] -> ``mu`` (N x latent_dim) and, when variational, ``logvar``."""

    def __init__(self, config: VAEConfig) -> None:
        super().__init__()
        self.variational = config.variational
        width = _widths(config)
        layers: list[nn.Module] = [
            nn.Conv2d(_channels(config), width[0], 4, 2, 1),
            nn.LeakyReLU(0.2, True),
        ]
        for c_in, c_out in itertools.pairwise(width):
            layers += [nn.Conv2d(c_in, c_out, 4, 2, 1), nn.LeakyReLU(0.2, True)]
        self.features = nn.Sequential(*layers)
        outputs = 2 * config.latent_dim if config.variational else config.latent_dim
        self.head = nn.Linear(width[-1] * 16, outputs)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        out = self.head(self.features(x).flatten(1))
        if not self.variational:
            return out, None
        mu, logvar = out.chunk(2, dim=1)
        return mu, logvar


class Decoder(nn.Module):
    """Latents (N x latent_dim) -> images in [-1, 1]."""

    def __init__(self, config: VAEConfig) -> None:
        super().__init__()
        width = _widths(config)[::-1]  # 4x4 ... image_size/2
        self.top = width[0]
        self.fc = nn.Linear(config.latent_dim, width[0] * 16)
        layers: list[nn.Module] = [nn.ReLU(True)]
        for c_in, c_out in itertools.pairwise(width):
            layers += [nn.ConvTranspose2d(c_in, c_out, 4, 2, 1), nn.ReLU(True)]
        layers += [nn.ConvTranspose2d(width[-1], _channels(config), 4, 2, 1), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(self.fc(z).view(-1, self.top, 4, 4))


def make_discriminator(config: VAEConfig) -> nn.Module | None:
    """The VAE-GAN discriminator: an unconditional DCGAN one (batch norm), or None if d_width=0."""
    if config.d_width == 0:
        return None
    dc = DCGANConfig(
        image_size=config.image_size,
        channels=_channels(config),
        num_classes=0,
        d_width=config.d_width,
        d_norm="batch",
    )
    return DCGANDiscriminator(dc)


class VAE(ImageGenerator):
    """An autoencoder or VAE: ``encoder``, ``decoder`` (EMA weights in a saved model) and
    ``discriminator`` (None when ``d_width`` is 0)."""

    family = "vae"

    def __init__(self, config: VAEConfig) -> None:
        super().__init__()
        self.config: VAEConfig = config
        self.encoder = Encoder(config)
        self.decoder = Decoder(config)
        self.discriminator = make_discriminator(config)

    def latent_shape(self) -> tuple[int, ...]:
        return (self.config.latent_dim,)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Images in [-1, 1] -> (mu, logvar); logvar is None for a plain autoencoder."""
        return self.encoder(x)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Latents -> images in [-1, 1]."""
        return self.decoder(z)

    def generate(self, z: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        return self.decode(z)

    @torch.no_grad()
    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        """Deterministic reconstructions (the decoded posterior mean) of images in [-1, 1]."""
        was_training = self.training
        self.eval()
        mu, _ = self.encode(x)
        out = self.decode(mu)
        self.train(was_training)
        return out
