"""Resizing, channel conversion, value range and augmentation: the only place they live.

Images are stored as ``uint8`` (``H x W x C`` arrays while loading, ``N x C x H x W`` tensors once
loaded). Models see ``float32`` in ``[-1, 1]`` (:func:`to_model_range`).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from pixelforge.data.config import RESIZE_FILTERS, DataConfig
from pixelforge.errors import DataError

# ITU-R BT.601 luma weights, the ones PIL uses for "RGB" -> "L".
_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)
#: Mean spread between a pixel's largest and smallest channel (0-255) above which a matte file
#: is a colour image; a grey matte saved as a colour JPEG stays far below it (chroma rounding).
COLOUR_SPREAD = 4.0


def resize_image(image: np.ndarray, size: int, *, mode: str, filter: str) -> np.ndarray:
    """Bring ``image`` (``H x W`` or ``H x W x C``) to ``size x size``.

    ``mode`` is ``"center-crop"`` (the centred square of side ``min(H, W)`` is resized),
    ``"stretch"`` (the whole image is resized, aspect ratio ignored) or ``"pad"`` (the longer
    side is scaled to ``size`` and the rest filled with black). ``uint8`` input is resized by PIL
    in ``L`` or ``RGB`` mode; float input channel by channel in PIL mode ``F`` (no rounding, no
    clipping).
    """
    if image.ndim == 2:
        return _resize_plane_or_rgb(image, size, mode, filter)
    if image.dtype == np.uint8 and image.shape[2] in (1, 3):
        if image.shape[2] == 1:
            return _resize_plane_or_rgb(image[:, :, 0], size, mode, filter)[:, :, None]
        return _resize_plane_or_rgb(image, size, mode, filter)
    planes = [
        _resize_plane_or_rgb(image[:, :, c], size, mode, filter) for c in range(image.shape[2])
    ]
    return np.stack(planes, axis=2)


def _resize_plane_or_rgb(image: np.ndarray, size: int, mode: str, filter: str) -> np.ndarray:
    if image.dtype == np.uint8:
        pil = Image.fromarray(image)
    else:
        pil = Image.fromarray(np.ascontiguousarray(image, dtype=np.float32), mode="F")
    resample = RESIZE_FILTERS[filter]
    w, h = pil.size
    if (w, h) == (size, size):
        return np.asarray(pil).copy()
    if mode == "center-crop":
        side = min(w, h)
        left, top = (w - side) / 2, (h - side) / 2
        box = (left, top, left + side, top + side)
        out = pil.resize((size, size), resample, box=box)
    elif mode == "stretch":
        out = pil.resize((size, size), resample)
    elif mode == "pad":
        scale = size / max(w, h)
        nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
        inner = pil.resize((nw, nh), resample)
        out = Image.new(pil.mode, (size, size), 0)
        out.paste(inner, ((size - nw) // 2, (size - nh) // 2))
    else:  # pragma: no cover - DataConfig.validate refuses other modes
        raise ValueError(f"unknown resize mode {mode!r}")
    return np.asarray(out).copy()


def float_to_uint8(image: np.ndarray) -> np.ndarray:
    """Round and clip a float image in ``[0, 255]`` to ``uint8``."""
    return np.clip(np.rint(image), 0, 255).astype(np.uint8)


def convert_channels(image: np.ndarray, channels: int) -> np.ndarray:
    """``H x W x C`` (or ``H x W``) ``uint8`` -> ``H x W x channels``.

    Grey images asked for 3 channels are replicated; RGB asked for 1 channel becomes BT.601 luma;
    RGBA/LA are composited over white first.
    """
    if image.ndim == 2:
        image = image[:, :, None]
    if image.shape[2] in (2, 4):  # grey+alpha or RGBA: composite over white
        alpha = image[:, :, -1:].astype(np.float32) / 255.0
        colour = image[:, :, :-1].astype(np.float32)
        image = float_to_uint8(colour * alpha + 255.0 * (1.0 - alpha))
    have = image.shape[2]
    if have == channels:
        return image
    if have == 1 and channels == 3:
        return np.repeat(image, 3, axis=2)
    if have == 3 and channels == 1:
        return float_to_uint8(image.astype(np.float32) @ _LUMA)[:, :, None]
    raise ValueError(f"cannot convert {have} channels to {channels}")


def matte_of(rgba: np.ndarray, name: str) -> np.ndarray:
    """An alpha matte read as H x W x 4 uint8 -> H x W float in [0, 1], by the one matte rule:
    an image whose alpha channel is in use gives that channel (a cutout, or a mask painted on a
    transparent layer); otherwise the image must be grey, white = object. Colour images and
    0/1 masks saved in 8 bits raise :class:`DataError` naming ``name``."""
    if rgba[:, :, 3].min() < 255:
        matte = rgba[:, :, 3]
    else:
        rgb = rgba[:, :, :3].astype(np.int16)
        if float((rgb.max(axis=2) - rgb.min(axis=2)).mean()) > COLOUR_SPREAD:
            raise DataError(
                f"{name} is a colour image; an alpha matte is a grey image (white = object, "
                "black = background) or an image whose alpha channel is the matte."
            )
        matte = rgb.mean(axis=2)
    if matte.max() == 1:
        raise DataError(
            f"{name} holds only the values 0 and 1 of 0-255: a 0/1 mask saved in 8 bits reads "
            "as (almost) all background. Save it times 255 (white = object)."
        )
    return matte / 255.0


def prepare_image(
    image: np.ndarray, *, image_size: int, channels: int, config: DataConfig
) -> np.ndarray:
    """Channel conversion then resize per ``config``: a ``uint8`` ``H x W x channels`` array."""
    image = convert_channels(image, channels)
    return resize_image(image, image_size, mode=config.resize_mode, filter=config.resize_filter)


def random_crops(
    image: np.ndarray,
    *,
    size: int,
    count: int,
    rng: np.random.Generator,
    filter: str,
    scale: tuple[float, float] = (1.0, 1.0),
) -> list[np.ndarray]:
    """``count`` crops of ``size x size`` at the image's own resolution (restoration training:
    no resampling blurs the detail to be learned). An image smaller than ``size`` is first
    enlarged with ``filter`` so its shorter side is ``size``. With ``scale`` = (low, high) below
    1, each crop is cut from the image shrunk by its own factor drawn uniformly from that range:
    a square of ``size / factor`` pixels, shrunk to ``size`` with ``filter`` (Pillow's filters
    average over the pixels they shrink, so the crop is not aliased). The default draws nothing
    more from ``rng``: the same crops as without it."""
    h, w = image.shape[:2]
    if min(h, w) < size:
        r = size / min(h, w)
        nw, nh = max(size, round(w * r)), max(size, round(h * r))
        pil = Image.fromarray(image[:, :, 0] if image.shape[2] == 1 else image)
        image = np.asarray(pil.resize((nw, nh), RESIZE_FILTERS[filter])).reshape(nh, nw, -1)
        h, w = nh, nw
    if scale == (1.0, 1.0):
        sides = np.full(count, size)
    else:
        factors = rng.uniform(scale[0], scale[1], count)
        sides = np.minimum(np.round(size / factors).astype(int), min(h, w))
    tops = rng.integers(0, h - sides + 1, count)
    lefts = rng.integers(0, w - sides + 1, count)
    crops = []
    for t, x, side in zip(tops, lefts, sides, strict=True):
        crop = image[t : t + side, x : x + side]
        if side != size:
            pil = Image.fromarray(crop[:, :, 0] if crop.shape[2] == 1 else crop)
            crop = np.asarray(pil.resize((size, size), RESIZE_FILTERS[filter])).reshape(
                size, size, -1
            )
        crops.append(crop.copy())
    return crops


def stack_images(images: list[np.ndarray]) -> torch.Tensor:
    """``H x W x C`` ``uint8`` arrays -> one ``N x C x H x W`` ``uint8`` tensor."""
    if not images:
        raise ValueError("no images to stack")
    return torch.from_numpy(np.stack(images, axis=0)).permute(0, 3, 1, 2).contiguous()


def to_model_range(images: torch.Tensor) -> torch.Tensor:
    """``uint8`` images -> ``float32`` in ``[-1, 1]`` (``x / 127.5 - 1``)."""
    return images.to(torch.float32) / 127.5 - 1.0


def from_model_range(images: torch.Tensor) -> torch.Tensor:
    """``float`` images in ``[-1, 1]`` -> ``uint8`` (rounded, clipped)."""
    return ((images.detach().to(torch.float32) + 1.0) * 127.5).round().clamp(0, 255).to(torch.uint8)


def augment_batch(
    x: torch.Tensor,
    generator: torch.Generator,
    config: DataConfig,
    *,
    global_batch: int,
    offset: int,
) -> torch.Tensor:
    """Randomly flip and shift ``x`` (``N x C x H x W``), reproducibly across processes.

    The random parameters are drawn for all ``global_batch`` samples of the global batch, always
    the same number of draws whatever the options (3 per sample: flip, shift x, shift y), and the
    slice ``[offset : offset + len(x)]`` is applied to ``x``. Two processes holding halves of a
    batch with identically seeded generators thus get exactly what one process holding the whole
    batch gets, and the generator's stream does not depend on the data or the options.

    Flips have probability 0.5 when ``config.hflip``; shifts are whole pixels in
    ``[-m, m]`` with ``m = round(config.translate * size)`` per axis, the exposed border filled by
    reflection. With no augmentation on, ``x`` itself is returned (the draws are still consumed).
    For paired data, concatenate A and B along channels and augment once so both move together.
    """
    n = x.shape[0]
    if offset < 0 or offset + n > global_batch:
        raise ValueError(
            f"augment_batch: slice [{offset}:{offset + n}] is outside the global batch of "
            f"{global_batch} samples."
        )
    draws = torch.rand(global_batch, 3, generator=generator, device=generator.device)
    draws = draws[offset : offset + n].to("cpu")
    flip_on = config.hflip
    h, w = x.shape[-2], x.shape[-1]
    mh, mw = round(config.translate * h), round(config.translate * w)
    if not flip_on and mh == 0 and mw == 0:
        return x
    out = x
    if flip_on:
        flip = (draws[:, 0] < 0.5).to(x.device)
        out = torch.where(flip.view(-1, *([1] * (x.ndim - 1))), out.flip(-1), out)
    if mh or mw:
        dy = (draws[:, 1] * (2 * mh + 1)).floor().long().clamp(max=2 * mh) - mh
        dx = (draws[:, 2] * (2 * mw + 1)).floor().long().clamp(max=2 * mw) - mw
        out = _shift(out, dy.to(x.device), dx.to(x.device), mh, mw)
    return out


def _shift(x: torch.Tensor, dy: torch.Tensor, dx: torch.Tensor, mh: int, mw: int) -> torch.Tensor:
    """Shift each image by (``dy``, ``dx``) pixels, filling the border by reflection."""
    n, _, h, w = x.shape
    dtype = x.dtype
    work = x if dtype.is_floating_point else x.to(torch.float32)
    padded = F.pad(work, (mw, mw, mh, mh), mode="reflect")
    rows = torch.arange(h, device=x.device).view(1, h) + (mh - dy).view(n, 1)  # n x h
    cols = torch.arange(w, device=x.device).view(1, w) + (mw - dx).view(n, 1)  # n x w
    batch = torch.arange(n, device=x.device).view(n, 1, 1)
    out = padded[batch, :, rows[:, :, None], cols[:, None, :]]  # n x h x w x c
    out = out.permute(0, 3, 1, 2).contiguous()
    return out if dtype.is_floating_point else out.round().to(dtype)
