"""PSNR and SSIM between paired images, batched torch code (CPU or GPU), computed in float64.

SSIM follows Wang et al., "Image Quality Assessment: From Error Visibility to Structural
Similarity" (IEEE TIP 2004): an 11 x 11 Gaussian window with sigma 1.5, K1 = 0.01, K2 = 0.03,
population (not sample) local covariances, and the mean over the positions where the window lies
fully inside the image. This equals scikit-image's ``structural_similarity(gaussian_weights=True,
sigma=1.5, use_sample_covariance=False, data_range=...)`` (which filters the whole image and then
crops the 5-pixel border before averaging) and BasicSR's ``calculate_ssim``. Multi-channel
images get the mean of the per-channel SSIMs.

``y_channel=True`` first converts RGB to the ITU-R BT.601 luma used in super-resolution papers
(MATLAB's ``rgb2ycbcr``): Y = 16 + 65.481 R + 128.553 G + 24.966 B for R, G, B in [0, 1], i.e.
Y in [16, 235] / 255 of ``data_range``. ``crop_border=k`` drops k pixels on each side first.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F

from pixelforge.metrics._checks import check_finite
from pixelforge.metrics.errors import MetricError

Reduction = Literal["none", "mean"]

SSIM_SIGMA = 1.5
SSIM_RADIUS = 5  # int(3.5 * sigma + 0.5): scipy's truncate=3.5 as used by scikit-image -> 11 taps
SSIM_K1, SSIM_K2 = 0.01, 0.03


def psnr(
    pred: torch.Tensor,
    target: torch.Tensor,
    *,
    data_range: float = 1.0,
    y_channel: bool = False,
    crop_border: int = 0,
    reduction: Reduction = "none",
) -> torch.Tensor:
    """Peak signal-to-noise ratio in dB, 10 log10(data_range^2 / MSE), per image (N,) or mean.

    Images are N x C x H x W (or C x H x W) with values in [0, data_range]. The MSE is over all
    channels and pixels of an image; identical images give +inf. ``reduction="mean"`` is the
    mean of per-image PSNRs, as super-resolution papers report it.
    """
    x, y = _prepare(pred, target, data_range, y_channel, crop_border, min_size=1)
    mse = (x - y).square().mean(dim=(1, 2, 3))
    out = 10.0 * torch.log10(data_range**2 / mse)  # mse == 0 -> +inf
    return _reduce(out, reduction)


def ssim(
    pred: torch.Tensor,
    target: torch.Tensor,
    *,
    data_range: float = 1.0,
    y_channel: bool = False,
    crop_border: int = 0,
    reduction: Reduction = "none",
) -> torch.Tensor:
    """Structural similarity per image (N,) or its mean; see the module docstring for the exact
    definition. Images must be at least 11 x 11 after cropping."""
    x, y = _prepare(pred, target, data_range, y_channel, crop_border, min_size=2 * SSIM_RADIUS + 1)
    n, c, h, w = x.shape
    c1, c2 = (SSIM_K1 * data_range) ** 2, (SSIM_K2 * data_range) ** 2
    # One separable 'valid' Gaussian blur of the five local moments, all channels as a batch.
    stack = torch.stack([x, y, x * x, y * y, x * y], dim=2).reshape(n * c * 5, 1, h, w)
    g = _gaussian_taps(x.dtype, x.device)
    blurred = F.conv2d(F.conv2d(stack, g.view(1, 1, -1, 1)), g.view(1, 1, 1, -1))
    mx, my, mxx, myy, mxy = blurred.reshape(n, c, 5, *blurred.shape[-2:]).unbind(dim=2)
    vx, vy, cxy = mxx - mx * mx, myy - my * my, mxy - mx * my  # population (co)variances
    s = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))
    return _reduce(s.mean(dim=(2, 3)).mean(dim=1), reduction)


def rgb_to_y(images: torch.Tensor, *, data_range: float = 1.0) -> torch.Tensor:
    """BT.601 luma (MATLAB ``rgb2ycbcr`` convention) of RGB images N x 3 x H x W -> N x 1 x H x W,
    on the same scale: values in [16/255, 235/255] x data_range."""
    if images.ndim != 4 or images.shape[1] != 3:
        raise MetricError(f"Y channel needs RGB images N x 3 x H x W, got {tuple(images.shape)}")
    coeffs = torch.tensor([65.481, 128.553, 24.966], dtype=images.dtype, device=images.device)
    # (16 + 65.481 r + 128.553 g + 24.966 b) / 255 with r = R / data_range, rescaled to data_range
    y = torch.einsum("nchw,c->nhw", images, coeffs) / 255.0 + 16.0 / 255.0 * data_range
    return y.unsqueeze(1)


def _gaussian_taps(dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    r = torch.arange(-SSIM_RADIUS, SSIM_RADIUS + 1, dtype=dtype, device=device)
    g = torch.exp(-0.5 * (r / SSIM_SIGMA) ** 2)
    return g / g.sum()


def _prepare(
    pred: torch.Tensor,
    target: torch.Tensor,
    data_range: float,
    y_channel: bool,
    crop_border: int,
    min_size: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Validated float64 N x C x H x W pair: same shape, finite, converted and cropped."""
    if not isinstance(pred, torch.Tensor) or not isinstance(target, torch.Tensor):
        raise MetricError("pred and target must be torch tensors N x C x H x W")
    if pred.ndim == 3 and target.ndim == 3:
        pred, target = pred.unsqueeze(0), target.unsqueeze(0)
    if pred.ndim != 4 or target.ndim != 4:
        raise MetricError(
            f"images must be N x C x H x W (or C x H x W), got {tuple(pred.shape)} and "
            f"{tuple(target.shape)}"
        )
    if pred.shape != target.shape:
        what = "counts" if pred.shape[0] != target.shape[0] else "sizes or channels"
        raise MetricError(
            f"paired images differ in {what}: pred is {tuple(pred.shape)}, target is "
            f"{tuple(target.shape)} (N x C x H x W); resize or crop them to the same size first"
        )
    if pred.shape[0] == 0:
        raise MetricError("no images given (N = 0)")
    if not (math.isfinite(data_range) and data_range > 0):
        raise MetricError(f"data_range must be a positive number (1.0 or 255.0), got {data_range}")
    if crop_border < 0:
        raise MetricError(f"crop_border must be >= 0, got {crop_border}")
    x = pred.detach().to(torch.float64)
    y = target.detach().to(device=x.device, dtype=torch.float64)
    check_finite(x, "pred images")
    check_finite(y, "target images")
    if y_channel:
        x, y = rgb_to_y(x, data_range=data_range), rgb_to_y(y, data_range=data_range)
    if crop_border:
        x = x[..., crop_border:-crop_border, crop_border:-crop_border]
        y = y[..., crop_border:-crop_border, crop_border:-crop_border]
    h, w = x.shape[-2:]
    if h < min_size or w < min_size:
        raise MetricError(
            f"images are {h} x {w} after crop_border={crop_border}; at least {min_size} x "
            f"{min_size} needed"
        )
    return x, y


def _reduce(values: torch.Tensor, reduction: Reduction) -> torch.Tensor:
    if reduction == "none":
        return values
    if reduction == "mean":
        return values.mean()
    raise MetricError(f"reduction must be 'none' or 'mean', got {reduction!r}")
