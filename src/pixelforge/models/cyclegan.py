"""CycleGAN (Zhu et al. 2017): two ResNet generators between unpaired domains A and B.

Each generator (Johnson et al. 2016) is c7s1-ngf, two 3x3 stride-2 convolutions, ``n_blocks``
residual blocks with reflection padding at 1/4 resolution, two 3x3 stride-2 transposed
convolutions, and c7s1-C with tanh; every hidden convolution is followed by normalisation
(instance norm by default) and ReLU. Input sides must be multiples of 4 (``size_multiple``).

A saved model holds both generators; :meth:`CycleGAN.translate` runs the one named by
``direction`` (``"AtoB"`` by default; set ``model.direction = "BtoA"`` for the other). A model
imported from a single generator file holds only that direction (``generators``).

The layout computes the same function as the ``resnet_6blocks``/``resnet_9blocks`` generators of
junyanz/pytorch-CycleGAN-and-pix2pix, so their checkpoints import by renaming keys.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from pixelforge.config import check_range
from pixelforge.errors import ConfigError, PixelforgeError
from pixelforge.models.image2image import ImageToImage
from pixelforge.models.pix2pix import (
    Norm,
    PatchDiscriminator,
    check_channels,
    check_patch_size,
    norm_layer,
    resolved_channels,
)
from pixelforge.nn.layers import dcgan_init

DIRECTIONS = ("AtoB", "BtoA")


@dataclass(frozen=True)
class CycleGANConfig:
    image_size: int = 256  # side of the square training crops; translation takes any size
    channels: int | None = None  # channels the data is loaded with (1 or 3); null: from the dataset
    channels_a: int | None = None  # channels of domain A (1 or 3); null: = channels
    channels_b: int | None = None  # channels of domain B (1 or 3); null: = channels
    ngf: int = 64  # generator feature maps at full resolution
    ndf: int = 64  # discriminator feature maps at its first layer
    n_blocks: int = 9  # residual blocks at 1/4 resolution (9: resnet_9blocks, 6: resnet_6blocks)
    norm: Norm = "instance"  # normalisation in the generators and discriminators
    dropout: bool = False  # dropout 0.5 inside each residual block (off in CycleGAN)
    d_layers: int = 3  # stride-2 layers of the PatchGAN discriminators (3: 70x70 patches)
    generators: Literal["both", "AtoB", "BtoA"] = (
        "both"  # which generators the model holds (one only for imported single files)
    )

    def __post_init__(self) -> None:
        for name in ("channels", "channels_a", "channels_b"):
            check_channels(name, getattr(self, name))
        check_range("model.ngf", self.ngf, low=1)
        check_range("model.ndf", self.ndf, low=1)
        check_range("model.n_blocks", self.n_blocks, low=0, high=64)
        if self.image_size < 8 or self.image_size % 4:
            raise ConfigError(
                f"model.image_size must be a multiple of 4 and at least 8, got {self.image_size}."
            )
        check_patch_size(self.image_size, self.d_layers)


class ResidualBlock(nn.Module):
    """x + IN(conv(pad(ReLU(IN(conv(pad(x))))))), 3x3 convolutions with reflection padding."""

    def __init__(self, width: int, norm: str, dropout: bool, bias: bool) -> None:
        super().__init__()
        self.pad1 = nn.ReflectionPad2d(1)
        self.conv1 = nn.Conv2d(width, width, 3, bias=bias)
        self.norm1 = norm_layer(norm, width)
        self.drop = nn.Dropout(0.5) if dropout else nn.Identity()
        self.pad2 = nn.ReflectionPad2d(1)
        self.conv2 = nn.Conv2d(width, width, 3, bias=bias)
        self.norm2 = norm_layer(norm, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.drop(torch.relu(self.norm1(self.conv1(self.pad1(x)))))
        out: torch.Tensor = x + self.norm2(self.conv2(self.pad2(h)))
        return out


class ResnetGenerator(nn.Module):
    """c7s1-ngf, d2ngf, d4ngf, n_blocks x R4ngf, u2ngf, ungf, c7s1-cout + tanh."""

    def __init__(
        self, cin: int, cout: int, ngf: int, n_blocks: int, norm: str, dropout: bool
    ) -> None:
        super().__init__()
        bias = norm == "instance"  # batch norm has its own shift
        self.head = nn.Sequential(
            nn.ReflectionPad2d(3), nn.Conv2d(cin, ngf, 7, bias=bias), norm_layer(norm, ngf),
            nn.ReLU(),
        )  # fmt: skip
        self.down = nn.Sequential(
            nn.Conv2d(ngf, 2 * ngf, 3, 2, 1, bias=bias), norm_layer(norm, 2 * ngf), nn.ReLU(),
            nn.Conv2d(2 * ngf, 4 * ngf, 3, 2, 1, bias=bias), norm_layer(norm, 4 * ngf), nn.ReLU(),
        )  # fmt: skip
        self.blocks = nn.Sequential(
            *[ResidualBlock(4 * ngf, norm, dropout, bias) for _ in range(n_blocks)]
        )
        self.up = nn.Sequential(
            nn.ConvTranspose2d(4 * ngf, 2 * ngf, 3, 2, 1, output_padding=1, bias=bias),
            norm_layer(norm, 2 * ngf), nn.ReLU(),
            nn.ConvTranspose2d(2 * ngf, ngf, 3, 2, 1, output_padding=1, bias=bias),
            norm_layer(norm, ngf), nn.ReLU(),
        )  # fmt: skip
        self.tail = nn.Sequential(nn.ReflectionPad2d(3), nn.Conv2d(ngf, cout, 7), nn.Tanh())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.tail(self.up(self.blocks(self.down(self.head(x)))))
        return out


class CycleGAN(ImageToImage):
    """Generators A -> B (``g_ab``) and B -> A (``g_ba``); discriminators live in the task."""

    family = "cyclegan"

    def __init__(self, config: CycleGANConfig) -> None:
        super().__init__()
        self.config: CycleGANConfig = config
        self.channels_a, self.channels_b = resolved_channels(config)
        self.size_multiple = 4
        # padded to 8, a 5-pixel side is 2 at 1/4 resolution, where the blocks reflect 1 pixel
        self.min_side = 5
        c = config

        def make(cin: int, cout: int) -> ResnetGenerator:
            return ResnetGenerator(cin, cout, c.ngf, c.n_blocks, c.norm, c.dropout)

        self.g_ab: ResnetGenerator | None = (
            make(self.channels_a, self.channels_b) if c.generators in ("both", "AtoB") else None
        )
        self.g_ba: ResnetGenerator | None = (
            make(self.channels_b, self.channels_a) if c.generators in ("both", "BtoA") else None
        )
        dcgan_init(self)
        self._direction = "AtoB"
        self.direction = "AtoB" if self.g_ab is not None else "BtoA"

    @property
    def direction(self) -> str:
        """``"AtoB"`` or ``"BtoA"``: the generator :meth:`translate` runs."""
        return self._direction

    @direction.setter
    def direction(self, value: str) -> None:
        if value not in DIRECTIONS:
            raise PixelforgeError(f"direction must be AtoB or BtoA, got '{value}'.")
        if self.generator_for(value) is None:
            raise PixelforgeError(
                f"this cyclegan model holds only the {self.config.generators} generator (it was "
                f"imported from one file), so it cannot translate {value}; use --direction "
                f"{self.config.generators} or import both generator files."
            )
        self._direction = value
        ab = value == "AtoB"
        self.in_channels = self.channels_a if ab else self.channels_b
        self.out_channels = self.channels_b if ab else self.channels_a

    def generator_for(self, direction: str) -> ResnetGenerator | None:
        """The generator of ``direction`` (None when the model does not hold it)."""
        return self.g_ab if direction == "AtoB" else self.g_ba

    def translate(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        g = self.generator_for(self._direction)
        assert g is not None
        return g(x)

    def make_discriminator(self, domain: str) -> PatchDiscriminator:
        """A fresh PatchGAN judging real vs generated images of ``domain`` ("A" or "B")."""
        c = self.config
        channels = self.channels_a if domain == "A" else self.channels_b
        d = PatchDiscriminator(channels, c.ndf, c.d_layers, c.norm)
        dcgan_init(d)
        return d
