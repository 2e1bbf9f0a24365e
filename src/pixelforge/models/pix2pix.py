"""pix2pix (Isola et al. 2017): a U-Net generator translating paired images A -> B.

The generator halves the resolution ``depth`` times with 4x4 stride-2 convolutions (LeakyReLU
0.2 before every one but the first; normalisation after every one but the first and the last)
and comes back up with 4x4 transposed convolutions (ReLU before, normalisation after, tanh at
the end), concatenating the encoder's output of the same level before each one. Inputs must
have sides that are multiples of ``2**depth`` (``size_multiple``); the translation task pads.
Dropout 0.5 in the decoder's widest inner levels is pix2pix's only noise.

Normalisation defaults to ``batch-image``: the paper trains at batch size 1 with batch norm and
tests with the test image's own statistics, so each image is normalised by its own statistics in
training and translation alike (batch norm's running averages, ``norm=batch``, would translate
with statistics the network never trained on).

The 70x70 PatchGAN discriminator (``d_layers=3``) classifies overlapping patches; it is shared
with CycleGAN and lives in the training task, not in the saved model.

The layer layout computes the same function as the ``unet_128``/``unet_256`` generators of
junyanz/pytorch-CycleGAN-and-pix2pix (same widths, biases and skip order), so their
checkpoints import by renaming keys (:mod:`pixelforge.tasks.junyanz`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from pixelforge.config import check_range
from pixelforge.errors import ConfigError
from pixelforge.models.image2image import ImageToImage
from pixelforge.nn.layers import dcgan_init

#: ``batch-image`` is batch norm's learnt scale and shift applied with each image's own
#: statistics: batch norm at batch size 1 in training mode, which is how pix2pix runs at test time
#: (Isola et al. 2017, section 3.3) and what junyanz's test.py does without ``--eval``.
Norm = Literal["batch", "instance", "batch-image"]


def check_channels(name: str, value: int | None) -> None:
    """1 or 3 channels, or null (from the dataset / from ``model.channels``)."""
    if value is not None and value not in (1, 3):
        raise ConfigError(f"model.{name} must be 1 or 3 (or null), got {value}.")


def check_patch_size(image_size: int, d_layers: int) -> None:
    """The PatchGAN needs at least one output patch on a training crop."""
    check_range("model.d_layers", d_layers, low=1, high=6)
    if image_size // 2**d_layers - 2 < 1:
        raise ConfigError(
            f"model.image_size={image_size} is too small for a discriminator with "
            f"d_layers={d_layers} (it needs at least {3 * 2**d_layers} pixels); raise "
            "model.image_size or lower model.d_layers."
        )


def resolved_channels(config: object) -> tuple[int, int]:
    """(channels of A, channels of B) of a translation config; null sides take ``channels``."""
    channels = getattr(config, "channels", None)
    a = getattr(config, "channels_a", None) or channels
    b = getattr(config, "channels_b", None) or channels
    if a is None or b is None:
        raise ConfigError(
            "model.channels (or both model.channels_a and model.channels_b) must be set before "
            "building a model; leave them null only when training, where the data sets them."
        )
    return int(a), int(b)


def norm_layer(kind: str, channels: int) -> nn.Module:
    """Batch norm (affine, running statistics), instance norm (no affine, no running stats) or
    batch-image (affine, each image's own statistics: instance norm with batch norm's weights)."""
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "instance":
        return nn.InstanceNorm2d(channels)
    if kind == "batch-image":
        return nn.InstanceNorm2d(channels, affine=True)
    raise ValueError(f"unknown normalisation '{kind}'")


def to_channels(x: torch.Tensor, channels: int) -> torch.Tensor:
    """``x`` (N x C x H x W, C in {1, 3}) with ``channels`` channels: BT.601 luma for 3 -> 1,
    repetition for 1 -> 3."""
    if x.shape[1] == channels:
        return x
    if channels == 1:
        w = torch.tensor([0.299, 0.587, 0.114], dtype=x.dtype, device=x.device)
        return (x * w[None, :, None, None]).sum(dim=1, keepdim=True)
    return x.expand(-1, channels, -1, -1)


@dataclass(frozen=True)
class Pix2PixConfig:
    image_size: int = 256  # side of the square training crops; translation takes any size
    channels: int | None = None  # channels the data is loaded with (1 or 3); null: from the dataset
    channels_a: int | None = None  # channels of the input side A (1 or 3); null: = channels
    channels_b: int | None = None  # channels of the output side B (1 or 3); null: = channels
    ngf: int = 64  # generator feature maps at full resolution
    ndf: int = 64  # discriminator feature maps at its first layer
    depth: int = 8  # U-Net halvings (8: unet_256, 7: unet_128); sides are padded to 2**depth
    norm: Norm = "batch-image"  # G and D: batch-image (the paper at batch 1), batch, instance
    dropout: bool = True  # dropout 0.5 in the decoder's widest inner levels (levels 4..depth-2)
    d_layers: int = 3  # stride-2 layers of the PatchGAN (3: 70x70 patches)

    def __post_init__(self) -> None:
        for name in ("channels", "channels_a", "channels_b"):
            check_channels(name, getattr(self, name))
        check_range("model.ngf", self.ngf, low=1)
        check_range("model.ndf", self.ndf, low=1)
        check_range("model.depth", self.depth, low=2, high=9)
        m = 2**self.depth
        if self.image_size < m or self.image_size % m:
            raise ConfigError(
                f"model.image_size={self.image_size} must be a multiple of 2**depth={m} "
                f"(model.depth={self.depth}); use e.g. image_size={max(m, self.image_size // m * m)} "
                "or a smaller depth."
            )
        check_patch_size(self.image_size, self.d_layers)


class UNetGenerator(nn.Module):
    """The pix2pix U-Net; ``down[i]``/``up[i]`` are the two halves of level ``i`` (0 = outermost)."""

    def __init__(self, cin: int, cout: int, ngf: int, depth: int, norm: str, dropout: bool) -> None:
        super().__init__()
        widths = [ngf * min(2**i, 8) for i in range(depth)]
        bias = norm == "instance"  # batch norm has its own shift
        self.down = nn.ModuleList()
        self.up = nn.ModuleList()
        for i in range(depth):
            layers: list[nn.Module] = [] if i == 0 else [nn.LeakyReLU(0.2)]
            layers.append(
                nn.Conv2d(cin if i == 0 else widths[i - 1], widths[i], 4, 2, 1, bias=bias)
            )
            if 0 < i < depth - 1:
                layers.append(norm_layer(norm, widths[i]))
            self.down.append(nn.Sequential(*layers))
        for i in range(depth):
            c_in = widths[i] if i == depth - 1 else 2 * widths[i]
            c_out = cout if i == 0 else widths[i - 1]
            up: list[nn.Module] = [
                nn.ReLU(),
                nn.ConvTranspose2d(c_in, c_out, 4, 2, 1, bias=bias or i == 0),
            ]
            if i == 0:
                up.append(nn.Tanh())
            else:
                up.append(norm_layer(norm, c_out))
                if dropout and 4 <= i < depth - 1:
                    up.append(nn.Dropout(0.5))
            self.up.append(nn.Sequential(*up))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        h = x
        for down in self.down:
            h = down(h)
            skips.append(h)
        for i in reversed(range(len(self.up))):
            if i < len(self.up) - 1:
                h = torch.cat([skips[i], h], dim=1)  # encoder first, as in the reference
            h = self.up[i](h)
        return h


class PatchDiscriminator(nn.Module):
    """PatchGAN: one logit per overlapping patch (70x70 pixels with ``layers=3``)."""

    def __init__(self, cin: int, ndf: int, layers: int, norm: str) -> None:
        super().__init__()
        bias = norm == "instance"
        seq: list[nn.Module] = [nn.Conv2d(cin, ndf, 4, 2, 1), nn.LeakyReLU(0.2)]
        width = ndf
        for n in range(1, layers + 1):
            new = ndf * min(2**n, 8)
            stride = 2 if n < layers else 1
            seq += [
                nn.Conv2d(width, new, 4, stride, 1, bias=bias),
                norm_layer(norm, new),
                nn.LeakyReLU(0.2),
            ]
            width = new
        seq.append(nn.Conv2d(width, 1, 4, 1, 1))
        self.net = nn.Sequential(*seq)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class Pix2Pix(ImageToImage):
    """The pix2pix generator (A -> B); the discriminator belongs to the training task."""

    family = "pix2pix"

    def __init__(self, config: Pix2PixConfig) -> None:
        super().__init__()
        self.config: Pix2PixConfig = config
        self.in_channels, self.out_channels = resolved_channels(config)
        self.size_multiple = 2**config.depth
        self.generator = UNetGenerator(
            self.in_channels, self.out_channels, config.ngf, config.depth, config.norm,
            config.dropout,
        )  # fmt: skip
        dcgan_init(self)

    def translate(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        out: torch.Tensor = self.generator(x)
        return out

    def make_discriminator(self) -> PatchDiscriminator:
        """A fresh conditional PatchGAN for this generator: it sees concat(A, B)."""
        c = self.config
        d = PatchDiscriminator(self.in_channels + self.out_channels, c.ndf, c.d_layers, c.norm)
        dcgan_init(d)
        return d
