"""Noise-robust sharpness of images and a sharpness distance between two image sets.

Sharpness is measured as band-pass (high-frequency) energy with the noise's share taken out:

1. Images (N x C x H x W, values in [0, ``data_range``]) are scaled to [0, 1] and reduced to
   luma (ITU-R 601, ``0.299 R + 0.587 G + 0.114 B``; one-channel images are used as they are).
2. A light denoise then a Laplacian: the luma is filtered with ``k``, a Gaussian of sigma
   0.7 px (radius 3, normalised) convolved with the 3x3 Laplacian ``[[0, 1, 0], [1, -4, 1],
   [0, 1, 0]]`` (a 9x9 Laplacian of Gaussian), over the interior pixels only (no padding).
   High-frequency energy ``E`` is the mean square of the response. Edges and fine detail give
   large responses; flat regions and smooth gradients give none. The Gaussian keeps the
   measure sensitive to blur (a Gaussian blur of sigma 1 px lowers the mean ``S`` of the
   ``shapes`` test images 3.6-fold) while cutting the noise gain ``||k||^2`` to 0.77, against
   20 for the bare Laplacian.
3. The noise level ``sigma`` is estimated per image from the residual ``r = y - median3x3(y)``
   of a 3x3 median filter (interior pixels): ``sigma = median(|r|) / 0.5822``, where 0.5822 is
   ``median(|r|)`` of unit white Gaussian noise (measured once by simulation on 16 x 254 x 254
   residuals, seed 0). A median filter keeps straight edges, flat regions and one-pixel
   checkerboards, so ``r`` is small there, and the median over pixels ignores the few pixels
   at corners: the estimate follows the noise, not the content.
4. White noise of variance ``sigma^2`` adds ``sigma^2 ||k||^2`` to the expected energy, so the
   image's sharpness is ``S = E - ||k||^2 sigma^2``: the band energy that noise does not explain.

Without step 4, noise alone makes an image "sharp". With it, white noise of standard deviation
0.02 or 0.05 (of the range) changes the mean ``S`` of the shapes test images by a few percent,
while blurring lowers it several-fold (the tests check both). What is not white noise is judged
by step 3: irregular pixel-level artefacts (as an unstable GAN makes) leave a median-filter
residual, so they are treated as noise and do not count; structure that a 3x3 median keeps
(edges, lines) counts as sharpness. A one-pixel checkerboard is kept by the median but mostly
removed by the Gaussian of step 2.

:func:`sharpness_distance` compares two sets by ``|log(mean S_a / mean S_b)|`` (natural log): 0
for the same sharpness, ``log 2 = 0.69`` when one set has half (or twice) the other's band
energy. Means are floored at ``1e-6`` (an RMS band response of a quarter grey level), so a set with
no detail left above its noise gives a finite, saturated distance (``log(S_real / 1e-6)``, about
5.96 for the built-in ``shapes`` test images). :func:`sharpness_log_ratio` keeps the sign
(negative: ``a`` is blurrier than ``b``). :func:`sharpness_wasserstein` is the 1-Wasserstein
distance between the per-image ``log(max(S, 1e-6))`` distributions, for when the shapes of the
distributions matter, not just their means.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from pixelforge.metrics.errors import MetricError

LAPLACIAN = ((0.0, 1.0, 0.0), (1.0, -4.0, 1.0), (0.0, 1.0, 0.0))
DENOISE_SIGMA = 0.7  # px: the light Gaussian denoise before the Laplacian
DENOISE_RADIUS = 3  # px: the Gaussian's taps span -3 ... 3
MEDIAN_RESIDUAL_TO_SIGMA = 0.5822  # median(|n - median3x3(n)|) for unit white Gaussian noise
# Floor for means and values in ratios and logs. S is an energy in [0, 1]^2 units; 1e-6 is an
# RMS band response of 0.001, a quarter of one 8-bit grey level: no visible detail. A set whose
# mean S is at or below it is "as blurry as it gets" and its log ratio saturates there.
EPS = 1e-6
_LUMA = (0.299, 0.587, 0.114)


def _luma(images: torch.Tensor, data_range: float) -> torch.Tensor:
    """N x C x H x W (or C x H x W) in [0, data_range] -> N x 1 x H x W float64 luma in [0, 1]."""
    if images.ndim == 3:
        images = images.unsqueeze(0)
    if images.ndim != 4 or images.shape[1] not in (1, 3):
        raise MetricError(
            f"images must be N x C x H x W with C = 1 or 3, got shape {tuple(images.shape)}"
        )
    if images.shape[-1] < 3 or images.shape[-2] < 3:
        raise MetricError(f"images must be at least 3x3, got {tuple(images.shape[-2:])}")
    if data_range <= 0:
        raise MetricError(f"data_range must be > 0, got {data_range}")
    x = images.detach().to(torch.float64) / data_range
    if not torch.isfinite(x).all():
        raise MetricError("images contain NaN or infinite values")
    if x.shape[1] == 3:
        w = torch.tensor(_LUMA, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
        x = (x * w).sum(dim=1, keepdim=True)
    return x


def band_kernel(dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """The 9x9 band-pass kernel ``k``: Gaussian (sigma 0.7 px) convolved with the Laplacian."""
    t = torch.arange(-DENOISE_RADIUS, DENOISE_RADIUS + 1, dtype=torch.float64)
    g1 = torch.exp(-(t**2) / (2 * DENOISE_SIGMA**2))
    g1 = g1 / g1.sum()
    g = (g1[:, None] * g1[None, :]).view(1, 1, *((2 * DENOISE_RADIUS + 1),) * 2)
    lap = torch.tensor(LAPLACIAN, dtype=torch.float64).view(1, 1, 3, 3)
    k = F.conv2d(F.pad(g, (2, 2, 2, 2)), lap.flip(-1, -2))  # full convolution -> 9x9
    return k.to(dtype)


def noise_gain() -> float:
    """``||k||^2``: the expected band energy of unit white noise."""
    return float(band_kernel().square().sum())


def band_energy(images: torch.Tensor, *, data_range: float = 1.0) -> torch.Tensor:
    """Raw band-pass energy ``E`` per image (N,): mean square of ``k`` applied to the luma."""
    y = _luma(images, data_range)
    k = band_kernel(y.dtype).to(y.device)
    if y.shape[-1] < k.shape[-1] or y.shape[-2] < k.shape[-2]:
        raise MetricError(f"images must be at least 9x9, got {tuple(y.shape[-2:])}")
    return F.conv2d(y, k).square().mean(dim=(1, 2, 3))


def noise_sigma(images: torch.Tensor, *, data_range: float = 1.0) -> torch.Tensor:
    """Robust white-noise standard deviation per image (N,), in [0, 1] units, from the residual
    of a 3x3 median filter."""
    y = _luma(images, data_range)
    n, _, h, w = y.shape
    med = F.unfold(y, 3).view(n, 9, h - 2, w - 2).median(dim=1).values
    r = (y[:, 0, 1:-1, 1:-1] - med).abs().flatten(1)
    return torch.quantile(r, 0.5, dim=1) / MEDIAN_RESIDUAL_TO_SIGMA


def sharpness(images: torch.Tensor, *, data_range: float = 1.0) -> torch.Tensor:
    """Noise-corrected band energy per image (N,), float64: ``E - ||k||^2 sigma^2``.

    ``images`` are N x C x H x W (C = 1 or 3) in [0, ``data_range``]; see the module docstring.
    Not clamped per image: on a very noisy, nearly flat image the noise estimate's own error can
    make the value slightly negative, and clamping each image would bias set means upwards. The
    set comparisons below clamp means (and, for the Wasserstein distance, values) at ``1e-6``.
    """
    energy = band_energy(images, data_range=data_range)
    sigma = noise_sigma(images, data_range=data_range)
    return energy - noise_gain() * sigma.square()


def _values(x: torch.Tensor | np.ndarray, what: str) -> np.ndarray:
    v = np.asarray(x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else x, np.float64)
    v = v.reshape(-1)
    if v.size == 0:
        raise MetricError(f"{what}: no values")
    if not np.isfinite(v).all():
        raise MetricError(f"{what}: sharpness values must be finite")
    return v


def sharpness_log_ratio(a: torch.Tensor | np.ndarray, b: torch.Tensor | np.ndarray) -> float:
    """``log(mean a / mean b)`` of two sets of per-image sharpness values (from
    :func:`sharpness`); negative when set ``a`` is blurrier than set ``b``."""
    va, vb = _values(a, "a"), _values(b, "b")
    return math.log(max(va.mean(), EPS) / max(vb.mean(), EPS))


def sharpness_distance(a: torch.Tensor | np.ndarray, b: torch.Tensor | np.ndarray) -> float:
    """``|log(mean a / mean b)|``: 0 for equally sharp sets; symmetric; in nats."""
    return abs(sharpness_log_ratio(a, b))


def sharpness_wasserstein(a: torch.Tensor | np.ndarray, b: torch.Tensor | np.ndarray) -> float:
    """1-Wasserstein distance between the per-image ``log S`` distributions of two sets, S
    clamped at 1e-6 (exact, from the empirical quantile functions; the sets may differ in size)."""
    la = np.sort(np.log(np.maximum(_values(a, "a"), EPS)))
    lb = np.sort(np.log(np.maximum(_values(b, "b"), EPS)))
    # Integrate |F_a^-1(q) - F_b^-1(q)| over q on the union of both sets' quantile breakpoints.
    qs = np.union1d(np.arange(1, la.size + 1) / la.size, np.arange(1, lb.size + 1) / lb.size)
    widths = np.diff(np.concatenate([[0.0], qs]))
    mid = qs - widths / 2
    ia = np.minimum((mid * la.size).astype(np.int64), la.size - 1)
    ib = np.minimum((mid * lb.size).astype(np.int64), lb.size - 1)
    return float(np.sum(widths * np.abs(la[ia] - lb[ib])))
