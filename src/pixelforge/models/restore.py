"""Restoration networks: super-resolution, denoising, JPEG repair, colorization, inpainting,
uncropping. One family, ``restore``; the ``task`` field says what the model does.

Two fully convolutional architectures:

- ``resnet`` (super-resolution by default): EDSR-style residual blocks without normalisation
  (Lim et al. 2017) at the input resolution, one pixel-shuffle layer to the output resolution
  (Shi et al. 2016), added to a bicubic enlargement of the input, so the network learns only the
  missing detail. Cheap per output pixel: the body runs on the small input.
- ``unet`` (every other task by default): a U-Net of residual blocks with ``depth`` halvings and
  dilated blocks at the bottom, for a receptive field that covers JPEG blocks, noise and holes.
  Its output is added to the input (denoise, JPEG, inpainting, uncropping) or is the a/b colour of
  the L input (colorization). Inpainting and uncropping networks see the image with its hole
  filled from the known pixels around it (``fill``: the harmonic interpolation or a push-pull
  pyramid) and the mask, and correct that fill.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from pixelforge.config import check_range
from pixelforge.errors import ConfigError
from pixelforge.models.image2image import ImageToImage
from pixelforge.restoration.masks import adaptive_fill, harmonic_fill, smooth_fill

Task = Literal["sr", "denoise", "jpeg", "colorize", "inpaint", "uncrop"]
TASKS: tuple[str, ...] = ("sr", "denoise", "jpeg", "colorize", "inpaint", "uncrop")


@dataclass(frozen=True)
class RestoreConfig:
    task: Task = "sr"  # sr, denoise, jpeg, colorize, inpaint or uncrop
    scale: int | None = None  # sr: 2, 3 or 4 (null: 4); every other task: 1
    image_size: int = 96  # side of the clean training patches (the model's output side)
    channels: int | None = 3  # image channels, 1 or 3 (colorize: 3); null: from the dataset
    arch: Literal["auto", "resnet", "unet"] = "auto"  # auto: resnet for sr, unet otherwise
    width: int = 48  # feature maps at full resolution
    blocks: int = 6  # residual blocks (resnet: in the body; unet: at the bottom level)
    depth: int = 3  # unet: number of halvings (input sides are padded to 2**depth)
    # inpaint/uncrop: the hole's starting guess, which the network corrects: "adaptive"
    # (diffusion fills combined to fit a band around the hole, masks.adaptive_fill), "harmonic"
    # (Laplace interpolation of the hole's border), "smooth" (push-pull pyramid) or "zero" (grey)
    fill: Literal["adaptive", "harmonic", "smooth", "zero"] = "harmonic"

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise ConfigError(f"model.task must be one of {', '.join(TASKS)}, got '{self.task}'.")
        if self.task == "sr" and self.scale not in (None, 2, 3, 4):
            raise ConfigError(f"model.scale must be 2, 3 or 4 for sr, got {self.scale}.")
        if self.task != "sr" and self.scale not in (None, 1):
            raise ConfigError(f"model.scale is for sr only; task {self.task} works at scale 1.")
        if self.arch not in ("auto", "resnet", "unet"):
            raise ConfigError(f"model.arch must be auto, resnet or unet, got '{self.arch}'.")
        if self.network == "unet" and self.task == "sr":
            raise ConfigError("model.arch=unet does not upscale; use arch=resnet for sr.")
        if self.network == "resnet" and self.task in ("inpaint", "uncrop"):
            raise ConfigError("inpaint and uncrop models need arch=unet (a large receptive field).")
        if self.fill not in ("adaptive", "harmonic", "smooth", "zero"):
            raise ConfigError(
                f"model.fill must be adaptive, harmonic, smooth or zero, got '{self.fill}'."
            )
        if self.channels is not None and self.channels not in (1, 3):
            raise ConfigError(f"model.channels must be 1 or 3, got {self.channels}.")
        if self.task == "colorize" and self.channels == 1:
            raise ConfigError("a colorize model makes colour images: model.channels must be 3.")
        check_range("model.width", self.width, low=1)
        check_range("model.blocks", self.blocks, low=0)
        check_range("model.depth", self.depth, low=0, high=6)
        multiple = self.factor * (2**self.depth if self.network == "unet" else 1)
        if self.image_size < 8 or self.image_size % multiple:
            raise ConfigError(
                f"model.image_size={self.image_size} must be at least 8 and a multiple of "
                f"{multiple} (scale x 2**depth)."
            )

    @property
    def factor(self) -> int:
        """The output/input size ratio: ``scale`` for sr (4 when null), else 1."""
        return int(self.scale or 4) if self.task == "sr" else 1

    @property
    def network(self) -> str:
        """The architecture: ``arch``, with auto resolved (resnet for sr, unet otherwise)."""
        if self.arch != "auto":
            return self.arch
        return "resnet" if self.task == "sr" else "unet"


class ResBlock(nn.Module):
    """conv-ReLU-conv with an identity skip (no normalisation), optionally dilated."""

    def __init__(self, width: int, dilation: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(width, width, 3, padding=dilation, dilation=dilation)
        self.conv2 = nn.Conv2d(width, width, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(F.relu(self.conv1(x)))


class ResNetSR(nn.Module):
    """EDSR-style body at the input resolution, pixel-shuffle tail, bicubic global skip."""

    def __init__(self, cin: int, cout: int, width: int, blocks: int, scale: int) -> None:
        super().__init__()
        self.scale = scale
        self.head = nn.Conv2d(cin, width, 3, padding=1)
        self.body = nn.Sequential(*[ResBlock(width) for _ in range(blocks)])
        self.body_end = nn.Conv2d(width, width, 3, padding=1)
        self.tail = nn.Conv2d(width, cout * scale * scale, 3, padding=1)
        for p in self.tail.parameters():  # start as the identity (plus bicubic for sr)
            nn.init.zeros_(p)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = self.head(x)
        f = f + self.body_end(self.body(f))
        detail = self.tail(f)
        if self.scale == 1:
            return x + detail
        h, w = x.shape[-2:]
        base = F.interpolate(
            x, size=(h * self.scale, w * self.scale), mode="bicubic", antialias=True
        )
        return base + F.pixel_shuffle(detail, self.scale)


class UNet(nn.Module):
    """Residual U-Net: one block per level on the way down and up, ``blocks`` dilated blocks at
    the bottom; widths double per level up to 4x."""

    def __init__(self, cin: int, cout: int, width: int, blocks: int, depth: int) -> None:
        super().__init__()
        widths = [width * min(2**i, 4) for i in range(depth + 1)]
        self.head = nn.Conv2d(cin, width, 3, padding=1)
        self.down_blocks = nn.ModuleList([ResBlock(w) for w in widths[:-1]])
        self.downs = nn.ModuleList(
            [nn.Conv2d(a, b, 4, stride=2, padding=1) for a, b in itertools.pairwise(widths)]
        )
        self.bottom = nn.Sequential(
            *[ResBlock(widths[-1], (1, 2, 4)[i % 3]) for i in range(blocks)]
        )
        self.ups = nn.ModuleList(
            [
                nn.ConvTranspose2d(b, a, 4, stride=2, padding=1)
                for a, b in itertools.pairwise(widths)
            ]
        )
        self.up_blocks = nn.ModuleList([ResBlock(w) for w in widths[:-1]])
        self.tail = nn.Conv2d(width, cout, 3, padding=1)
        for p in self.tail.parameters():  # start as the identity (plus bicubic for sr)
            nn.init.zeros_(p)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = self.head(x)
        skips = []
        for block, down in zip(self.down_blocks, self.downs, strict=True):
            f = block(f)
            skips.append(f)
            f = F.relu(down(f))
        f = self.bottom(f)
        for i in reversed(range(len(self.ups))):
            f = F.relu(self.ups[i](f)) + skips[i]
            f = self.up_blocks[i](f)
        return self.tail(f)


class RestoreModel(ImageToImage):
    """A restoration network (see the module docstring); ``translate`` maps [-1, 1] to [-1, 1]."""

    family = "restore"
    config: RestoreConfig

    def __init__(self, config: RestoreConfig) -> None:
        super().__init__()
        if config.channels is None:
            raise ConfigError("model.channels must be set before building a model.")
        self.config = config
        c = config.channels
        self.scale = config.factor
        self.takes_mask = config.task in ("inpaint", "uncrop")
        if config.task == "colorize":
            self.color_space = "lab"
            self.in_channels, self.out_channels = 1, 2
        else:
            self.in_channels = self.out_channels = c
        if config.task == "jpeg":
            self.input_grid = 16  # 8x8 blocks, 16x16 with the 4:2:0 colour blocks
        cin = self.in_channels + (1 if self.takes_mask else 0)
        if config.network == "resnet":
            self.size_multiple = 1
            self.net: nn.Module = ResNetSR(
                cin, self.out_channels, config.width, config.blocks, self.scale
            )
            self._residual = False  # ResNetSR adds its own skip
        else:
            self.size_multiple = 2**config.depth
            self.tile_overlap = max(32, 8 * 2**config.depth)
            self.net = UNet(cin, self.out_channels, config.width, config.blocks, config.depth)
            self._residual = config.task != "colorize"

    def _need_mask(self, mask: torch.Tensor | None) -> torch.Tensor:
        if mask is None:
            raise ConfigError("this model fills a masked area: it needs a mask.")
        return mask

    def prepare(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """Inpainting and uncropping: what the network corrects, the known pixels with the hole
        filled per ``config.fill``; other tasks: ``x`` itself."""
        if not self.takes_mask:
            return x
        mask = self._need_mask(mask)
        if self.config.fill == "adaptive":
            return adaptive_fill(x, mask)
        if self.config.fill == "harmonic":
            return harmonic_fill(x, mask)
        if self.config.fill == "smooth":
            return smooth_fill(x, mask)
        return x * (1 - mask)

    def translate_prepared(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        if self.takes_mask:
            return x + self.net(torch.cat([x, self._need_mask(mask) * 2 - 1], dim=1))
        y = self.net(x)
        return x + y if self._residual else y

    def translate(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        return self.translate_prepared(self.prepare(x, mask), mask)
