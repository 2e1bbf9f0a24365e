"""What every image-to-image model offers: one fully convolutional pass over a padded image.

Translation (pix2pix, CycleGAN), restoration (super-resolution, denoising, JPEG, colorization,
inpainting, uncropping) and matting models all subclass :class:`ImageToImage`. The model says
what it needs (input and output channels, the output/input ``scale``, the ``size_multiple`` its
input sides must have, whether it takes a mask); :mod:`pixelforge.tasks.image2image` does the
rest for any image size: padding, tiling with overlap blending and whole-image statistics for
instance normalisation.
"""

from __future__ import annotations

import torch
from torch import nn


class ImageToImage(nn.Module):
    """Base of models that map an image (and an optional mask) to an image.

    Subclasses set ``family`` and ``config`` and implement :meth:`translate`. Values are in
    [-1, 1] on both sides, except masks (1 = pixel to fill, 0 = known) and mattes (alpha in
    [-1, 1] like any other channel).
    """

    family: str = ""
    config: object
    in_channels: int = 3  # image channels the model reads (a mask, if any, is not counted)
    out_channels: int = 3  # channels it writes
    scale: int = 1  # output side / input side (super-resolution: 2 or 4)
    size_multiple: int = 1  # input sides are padded to a multiple of this
    # the shortest image side it takes: reflection padding needs more pixels than it adds, also
    # at the coarsest resolution (the image-to-image task refuses smaller images by name)
    min_side: int = 1
    tile_overlap: int = 32  # input pixels shared by neighbouring tiles (about the receptive radius)
    # the input's own block grid, from the image's origin (JPEG repair: 16, the 4:2:0 colour
    # blocks). Tiles start on it, and flipped copies (``ensemble``) are padded to it first, so
    # every pass sees the blocks where training put them.
    input_grid: int = 1
    takes_mask: bool = False  # True: translate() needs a mask (inpainting, uncropping)
    # "rgb": images in and out; "lab": the input is the L of Lab (1 channel) and the output its
    # a/b (2 channels), put back together with L by the task (colorization).
    color_space: str = "rgb"

    def translate(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """``N x in_channels x H x W`` in [-1, 1] (H, W multiples of ``size_multiple``) ->
        ``N x out_channels x (H*scale) x (W*scale)`` in [-1, 1]."""
        raise NotImplementedError

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        return self.translate(x, mask)

    def prepare(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """Work on the whole image that :meth:`translate` would otherwise do on each tile
        (inpainting: the hole's starting fill). Tiled inference calls it once, then
        :meth:`translate_prepared` per tile; ``translate == translate_prepared(prepare(x))``."""
        return x

    def translate_prepared(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """:meth:`translate` of an input already passed through :meth:`prepare`."""
        return self.translate(x, mask)

    @property
    def uses_instance_norm(self) -> bool:
        """True when the output depends on statistics over the whole input (instance norm)."""
        return any(isinstance(m, nn.InstanceNorm2d) for m in self.modules())
