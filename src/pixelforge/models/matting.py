"""A small U-Net that predicts an alpha matte from an RGB image (background removal).

Encoder: per level two 3x3 conv + batch norm + ReLU, then 2x2 max-pooling; decoder: bilinear
upsampling, concatenation with the encoder's features of that level (Ronneberger et al. 2015,
"U-Net"), two conv blocks; a 1x1 head gives one logit per pixel and alpha = sigmoid(logit).
``translate`` returns ``2 * alpha - 1`` (= tanh(logit / 2)), in [-1, 1] like every
image-to-image model. With the default widths (16, 32, 48, 64, 96) it has about 0.5 M parameters
(2 MB as float32) and a receptive field of roughly 200 pixels.

Inference (:meth:`MattingNet.predict_alpha`) brings the image's longer side down to
``infer_size`` (the scale of the objects seen in training), runs the net, and upsamples the alpha
back to the image's size (bilinear): edges are as sharp as ``infer_size`` allows, not sharper.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from pixelforge.config import check_range
from pixelforge.errors import ConfigError
from pixelforge.models.image2image import ImageToImage


@dataclass(frozen=True)
class MattingConfig:
    image_size: int = 96  # side of the square training images (composites or pairs)
    channels: int = 3  # input channels: RGB (the output is one alpha channel)
    widths: tuple[int, ...] = (16, 32, 48, 64, 96)  # feature maps per level; len-1 halvings
    infer_size: int = 128  # inference: longer side the image is brought down to (0: full size)

    def __post_init__(self) -> None:
        if self.channels != 3:
            raise ConfigError(f"model.channels must be 3 (RGB) for matting, got {self.channels}.")
        if not 2 <= len(self.widths) <= 6:
            raise ConfigError(
                f"model.widths must list 2 to 6 widths (one per level), got {list(self.widths)}."
            )
        for i, w in enumerate(self.widths):
            check_range(f"model.widths[{i}]", w, low=1, high=1024)
        check_range("model.infer_size", self.infer_size, low=0)
        m = self.size_multiple
        if self.image_size < m or self.image_size % m:
            raise ConfigError(
                f"model.image_size must be a multiple of {m} (2 ** (levels - 1) for "
                f"{len(self.widths)} widths), got {self.image_size}."
            )

    @property
    def size_multiple(self) -> int:
        """Input sides must be multiples of this: one halving per level below the first."""
        return int(2 ** (len(self.widths) - 1))


def _block(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, padding=1, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
        nn.Conv2d(c_out, c_out, 3, padding=1, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
    )


class MattingNet(ImageToImage):
    """RGB in [-1, 1] -> alpha in [-1, 1] (``out_channels`` 1)."""

    family = "matting"
    in_channels = 3
    out_channels = 1
    scale = 1

    def __init__(self, config: MattingConfig) -> None:
        super().__init__()
        self.config: MattingConfig = config
        self.size_multiple = config.size_multiple
        w = config.widths
        self.down = nn.ModuleList(
            [_block(config.channels if i == 0 else w[i - 1], w[i]) for i in range(len(w))]
        )
        self.up = nn.ModuleList([_block(w[i + 1] + w[i], w[i]) for i in range(len(w) - 1)])
        self.head = nn.Conv2d(w[0], 1, 1)

    @property
    def image_size(self) -> int:
        return self.config.image_size

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """``N x 3 x H x W`` in [-1, 1] (sides multiples of ``size_multiple``) -> alpha logits
        ``N x 1 x H x W``."""
        skips = []
        h = x
        for i, block in enumerate(self.down):
            if i > 0:
                h = F.max_pool2d(h, 2)
            h = block(h)
            skips.append(h)
        for i in reversed(range(len(self.up))):
            h = F.interpolate(h, size=skips[i].shape[-2:], mode="bilinear", align_corners=False)
            h = self.up[i](torch.cat([h, skips[i]], dim=1))
        out: torch.Tensor = self.head(h)
        return out

    def translate(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        return torch.tanh(0.5 * self.logits(x))  # = 2 * sigmoid(logit) - 1

    @torch.no_grad()
    def predict_alpha(
        self, image: torch.Tensor, *, device: torch.device | str | None = None
    ) -> torch.Tensor:
        """Alpha ``H x W`` in [0, 1] for an image ``3 x H x W`` in [0, 1] of any size."""
        if image.ndim != 3 or image.shape[0] != 3:
            raise ValueError("image must be a 3 x H x W tensor in [0, 1]")
        was_training = self.training
        self.eval()
        h, w = image.shape[-2:]
        x = image.float()
        side = self.config.infer_size
        if side and max(h, w) > side:
            s = side / max(h, w)
            size = (max(1, round(h * s)), max(1, round(w * s)))
            x = F.interpolate(x[None], size=size, mode="bilinear", antialias=True)[0]
        alpha = _apply(self, x.clamp(0, 1), device)
        if alpha.shape[-2:] != (h, w):
            alpha = F.interpolate(alpha[None], size=(h, w), mode="bilinear", align_corners=False)[0]
        self.train(was_training)
        return alpha[0].clamp(0, 1)


def _apply(
    model: MattingNet, image: torch.Tensor, device: torch.device | str | None
) -> torch.Tensor:
    """The shared image-to-image runner when it exists (pixelforge.tasks.image2image), else
    :func:`pixelforge.tasks.tiling.run_tiled` directly. ``1 x H x W`` in [0, 1]."""
    try:
        runner = importlib.import_module("pixelforge.tasks.image2image").apply_model
    except (ImportError, AttributeError):
        runner = None
    if runner is not None:
        out: torch.Tensor = runner(model, image, device=device)
        return out.float().cpu()
    from pixelforge.tasks.tiling import run_tiled

    dev = torch.device(device) if device is not None else next(model.parameters()).device
    model.to(dev)

    def fn(tile: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        return model.translate(tile.to(dev))

    y = run_tiled(fn, image[None] * 2 - 1, multiple=model.size_multiple)
    return ((y[0] + 1) / 2).clamp(0, 1)
