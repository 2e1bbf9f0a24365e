"""Images -> what a feature extractor takes: its size, its channels, floats in [0, 1].

Resizing changes FID more than many model improvements do (Parmar, Zhang and Zhu, CVPR 2022,
"On Aliased Resizing and Surprising Subtleties in GAN Evaluation"), so it is explicit here and
recorded by the caller:

``resize="clean"`` (the default) is clean-fid's ``make_resizer("PIL", False, "bicubic", size)``:
each channel of each image, as float32 in [0, 255], becomes a PIL ``F`` (32-bit float) image,
is resized with PIL's bicubic filter (which widens its kernel when downsampling, so it
antialiases), clipped to [0, 255]; pixelforge then divides by 255. clean-fid reads uint8 images
and converts them with ``astype(float32)``; uint8 input here takes the same path, so the values
match clean-fid's bit for bit before the division. Float input in [0, 1] is multiplied by 255
in float32 first, which can differ from clean-fid's integers by float rounding (below 1e-4 of
255). clean-fid then feeds [0, 255] to the TF graph's own input scaling; pixelforge's Inception
takes [0, 1] and scales with ``2 x - 1`` (pytorch-fid), see :mod:`pixelforge.features.inception`.

``resize="legacy"`` is ``torch.nn.functional.interpolate(mode="bilinear", align_corners=False)``
without antialiasing, what pytorch-fid does inside its ``InceptionV3`` (``resize_input=True``).
torch-fidelity's legacy resize is close but not the same: it reimplements TensorFlow 1.x's
bilinear resize (``interpolate_bilinear_2d_like_tensorflow1x``), whose sampling grid has no
half-pixel offset; its results differ from this one when the size changes.

Images already at the extractor's size are not resampled in either mode (PIL and
``interpolate`` both return them unchanged). Channels: gray -> RGB by replicating the channel;
RGB -> gray (for one-channel extractors) by ITU-R 601 luma, ``0.299 R + 0.587 G + 0.114 B``, the
weights of PIL's ``L`` conversion. Alpha is not accepted: composite it first (the image reader
does).
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from pixelforge.features.base import FeatureExtractor

Resize = Literal["clean", "legacy"]
_LUMA = (0.299, 0.587, 0.114)


def to_float01(images: torch.Tensor) -> torch.Tensor:
    """uint8 [0, 255] -> float32 [0, 1] (``u / 255``, as torchvision's ToTensor); floats as given."""
    if images.dtype == torch.uint8:
        return images.float() / 255
    if not images.is_floating_point():
        raise TypeError(f"images must be uint8 or float, not {images.dtype}")
    return images.float()


def match_channels(images: torch.Tensor, channels: int) -> torch.Tensor:
    """N x C x H x W with C in {1, 3} -> ``channels`` (1 or 3) channels."""
    c = images.shape[1]
    if c == channels:
        return images
    if c == 1 and channels == 3:
        return images.expand(-1, 3, -1, -1)
    if c == 3 and channels == 1:
        w = torch.tensor(_LUMA, dtype=images.dtype, device=images.device).view(1, 3, 1, 1)
        return (images * w).sum(dim=1, keepdim=True)
    raise ValueError(f"cannot convert {c}-channel images to {channels} channels (1 or 3 only)")


def resize_clean(images: torch.Tensor, size: int) -> torch.Tensor:
    """clean-fid's resize: per channel, PIL bicubic on float32 ``F`` images in [0, 255].

    ``images``: uint8 [0, 255] or float [0, 1], N x C x H x W. Returns float32 [0, 1] on the
    device of ``images``.
    """
    if images.dtype == torch.uint8:
        arr = images.cpu().numpy().astype(np.float32)  # what clean-fid does with uint8
    else:
        arr = (images.detach().float().cpu() * 255).numpy()
    n, c, h, w = arr.shape
    if (h, w) == (size, size):
        out = arr.clip(0, 255)
    else:
        out = np.empty((n, c, size, size), dtype=np.float32)
        for i in range(n):
            for j in range(c):
                img = Image.fromarray(np.ascontiguousarray(arr[i, j]))  # float32 -> mode "F"
                img = img.resize((size, size), resample=Image.Resampling.BICUBIC)
                out[i, j] = np.asarray(img).clip(0, 255)
    return torch.from_numpy(out / np.float32(255)).to(images.device)


def resize_legacy(images: torch.Tensor, size: int) -> torch.Tensor:
    """pytorch-fid's resize: bilinear ``interpolate``, ``align_corners=False``, no antialias."""
    x = to_float01(images)
    if x.shape[-2:] == (size, size):
        return x
    return F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)


def prepare(
    images: torch.Tensor, extractor: FeatureExtractor, resize: Resize = "clean"
) -> torch.Tensor:
    """N x C x H x W uint8 or float [0, 1] images -> ``extractor``'s input (float32 [0, 1]).

    Channels are matched first (gray <-> RGB, see the module docstring), then the images are
    resized to ``extractor.input_size`` square by ``resize`` ("clean" or "legacy").
    """
    if images.ndim != 4:
        raise ValueError(f"images must be N x C x H x W, got shape {tuple(images.shape)}")
    if resize not in ("clean", "legacy"):
        raise ValueError(f"resize must be 'clean' or 'legacy', not {resize!r}")
    if images.dtype == torch.uint8 and images.shape[1] in (1, extractor.input_channels):
        # keep uint8 (replication is exact) so the clean path converts exactly as clean-fid
        x: torch.Tensor = images.expand(-1, extractor.input_channels, -1, -1)
    else:
        x = match_channels(to_float01(images), extractor.input_channels)
    size = extractor.input_size
    if resize == "clean":
        return resize_clean(x, size)
    return resize_legacy(x, size)
