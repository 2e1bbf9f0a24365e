"""Degradations that turn clean photos into training inputs, drawn from a seeded generator.

Every function takes clean images ``N x C x H x W`` in [0, 1] and a ``torch.Generator`` (the
train step's, so a resumed run draws the same degradations) and returns the degraded images in
[0, 1], quantised to 8-bit levels as a saved file would be.

- :func:`downscale`: bicubic with antialiasing (torch's antialiased bicubic is within 2 grey levels
  of PIL's ``Image.resize(..., BICUBIC)``, the benchmark protocol).
- :func:`add_noise`: additive Gaussian noise, ``sigma`` in 8-bit units, one sigma per image drawn
  from a range (a blind denoiser sees 0-55), clipped and rounded.
- :func:`jpeg`: a PIL JPEG round trip (4:2:0 chroma subsampling) at a quality per image.
- :func:`blur`: isotropic Gaussian blur with a sigma per image.
- :func:`real_world`: blur, then a random resize filter, then noise, then JPEG: the "photos from
  the wild" pipeline of the real-world super-resolution model (after Wang et al. 2021,
  Real-ESRGAN, first-order degradation).
- :func:`masks`: box or free-form holes (inpainting) or border crops (uncropping).
"""

from __future__ import annotations

import io

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from pixelforge.restoration.masks import border_mask, box_mask, free_form_mask


def quantize(x: torch.Tensor) -> torch.Tensor:
    """Round to 8-bit levels and clip to [0, 1], as saving to a PNG would."""
    return (x.clamp(0, 1) * 255).round() / 255


def _uniform(n: int, low: float, high: float, g: torch.Generator) -> torch.Tensor:
    return low + (high - low) * torch.rand(n, generator=g)


def downscale(x: torch.Tensor, scale: int, *, quantized: bool = True) -> torch.Tensor:
    """Bicubic (antialiased) reduction by ``scale``; sides must be multiples of ``scale``."""
    h, w = x.shape[-2:]
    if h % scale or w % scale:
        raise ValueError(f"sides {h}x{w} are not multiples of the scale {scale}")
    y = F.interpolate(x, size=(h // scale, w // scale), mode="bicubic", antialias=True)
    return quantize(y) if quantized else y


def upscale_bicubic(x: torch.Tensor, scale: int) -> torch.Tensor:
    """Bicubic (antialiased kernel, as PIL) enlargement by ``scale``; not clipped."""
    h, w = x.shape[-2:]
    return F.interpolate(x, size=(h * scale, w * scale), mode="bicubic", antialias=True)


def add_noise(
    x: torch.Tensor, sigma: tuple[float, float], g: torch.Generator, *, power: float = 1.0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Gaussian noise with a per-image sigma (8-bit units) in ``sigma``; returns ``(noisy,
    sigmas)``. Each sigma is ``low + (high - low) * u ** power`` with ``u`` uniform: ``power`` 1
    draws sigma uniformly, above 1 draws low sigmas more often."""
    s = sigma[0] + (sigma[1] - sigma[0]) * torch.rand(x.shape[0], generator=g) ** power
    noise = torch.randn(x.shape, generator=g) * (s / 255.0).view(-1, 1, 1, 1)
    return quantize(x + noise.to(x)), s


def jpeg(x: torch.Tensor, quality: tuple[int, int], g: torch.Generator) -> torch.Tensor:
    """A JPEG round trip per image, at a quality drawn uniformly from ``quality`` (inclusive)."""
    q = torch.randint(quality[0], quality[1] + 1, (x.shape[0],), generator=g)
    out = []
    for img, qi in zip(x, q.tolist(), strict=True):
        arr = (img.clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).cpu().numpy()
        pil = Image.fromarray(arr[..., 0] if arr.shape[2] == 1 else arr)
        buf = io.BytesIO()
        pil.save(buf, format="JPEG", quality=int(qi), subsampling=2)
        with Image.open(buf) as back:
            dec = np.asarray(back.convert(pil.mode), dtype=np.uint8)
        t = torch.from_numpy(dec.copy()).float() / 255
        out.append(t[None] if t.ndim == 2 else t.permute(2, 0, 1))
    return torch.stack(out).to(x)


def _gaussian_kernels(sigmas: torch.Tensor, radius: int) -> torch.Tensor:
    t = torch.arange(-radius, radius + 1, dtype=torch.float32)
    k = torch.exp(-(t[None] ** 2) / (2 * sigmas[:, None].clamp(min=1e-3) ** 2))
    return k / k.sum(dim=1, keepdim=True)


def blur(x: torch.Tensor, sigma: tuple[float, float], g: torch.Generator) -> torch.Tensor:
    """Separable Gaussian blur, sigma per image uniform in ``sigma`` (pixels); reflect borders."""
    n, c, h, w = x.shape
    s = _uniform(n, sigma[0], sigma[1], g)
    radius = max(1, int(np.ceil(3 * sigma[1])))
    radius = min(radius, min(h, w) - 1)
    k = _gaussian_kernels(s, radius).to(x)  # n x (2r+1)
    y = F.pad(x, (radius, radius, radius, radius), mode="reflect")
    y = y.reshape(1, n * c, h + 2 * radius, w + 2 * radius)
    kc = k.repeat_interleave(c, dim=0)
    y = F.conv2d(y, kc[:, None, None, :], groups=n * c)
    y = F.conv2d(y, kc[:, None, :, None], groups=n * c)
    return y.reshape(n, c, h, w)


#: real_world's defaults: blur sigma (pixels), the noise sigma's highest (8-bit), JPEG qualities
REAL_BLUR_SIGMA: tuple[float, float] = (0.2, 2.0)
REAL_NOISE_MAX: float = 15.0
REAL_JPEG_QUALITY: tuple[int, int] = (40, 95)


def real_world(
    x: torch.Tensor,
    scale: int,
    g: torch.Generator,
    *,
    blur_sigma: tuple[float, float] = REAL_BLUR_SIGMA,
    noise_sigma: tuple[float, float] = (0.0, REAL_NOISE_MAX),
    jpeg_quality: tuple[int, int] = REAL_JPEG_QUALITY,
) -> torch.Tensor:
    """Blur, downscale by ``scale`` with a random filter (bicubic, bilinear or area), add noise,
    JPEG-compress: low-resolution inputs like users' photos."""
    y = blur(x, blur_sigma, g)
    h, w = x.shape[-2:]
    size = (h // scale, w // scale)
    mode = ("bicubic", "bilinear", "area")[int(torch.randint(3, (1,), generator=g))]
    if mode == "area":
        y = F.interpolate(y, size=size, mode="area")
    else:
        y = F.interpolate(y, size=size, mode=mode, antialias=True)
    y, _ = add_noise(quantize(y), noise_sigma, g)
    return jpeg(y, jpeg_quality, g)


def masks(kind: str, n: int, height: int, width: int, g: torch.Generator) -> torch.Tensor:
    """``n`` masks (N x 1 x H x W of 0/1, 1 = fill) of ``kind``: "box" (a random box of 10-40%
    of the area), "free" (strokes covering 10-40%), "border" (uncropping: a kept window of
    40-80% of the side, centred or at one edge) or "mixed" (each of the three a third of the
    time: one model both inpaints and uncrops)."""
    seeds = torch.randint(2**31 - 1, (n,), generator=g).tolist()
    out = []
    for s in seeds:
        rng = np.random.default_rng(s)
        k = kind if kind != "mixed" else ("box", "free", "border")[int(rng.integers(3))]
        if k == "box":
            m = box_mask(height, width, area=float(rng.uniform(0.1, 0.4)), rng=rng)
        elif k == "free":
            m = free_form_mask(height, width, rng, coverage=(0.1, 0.4))
        elif k == "border":
            side = ("all", "left", "right", "top", "bottom")[int(rng.integers(5))]
            m = border_mask(height, width, keep=float(rng.uniform(0.4, 0.8)), side=side)
        else:
            raise ValueError(f"unknown mask kind {kind!r}")
        out.append(torch.from_numpy(m.astype(np.float32)))
    return torch.stack(out)[:, None]
