"""Noise-robust sharpness: blur lowers it, white noise does not raise it, set distances behave."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from pixelforge.metrics import MetricError
from pixelforge.metrics.sharpness import (
    MEDIAN_RESIDUAL_TO_SIGMA,
    band_energy,
    band_kernel,
    noise_gain,
    noise_sigma,
    sharpness,
    sharpness_distance,
    sharpness_log_ratio,
    sharpness_wasserstein,
)


def _blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    r = max(1, int(3 * sigma + 0.5))
    t = torch.arange(-r, r + 1, dtype=x.dtype)
    g = torch.exp(-(t**2) / (2 * sigma**2))
    g = g / g.sum()
    c = x.shape[1]
    y = F.pad(x, (r, r, r, r), mode="reflect")
    y = F.conv2d(y, g.view(1, 1, 1, -1).repeat(c, 1, 1, 1), groups=c)
    return F.conv2d(y, g.view(1, 1, -1, 1).repeat(c, 1, 1, 1), groups=c)


def _shapes(n: int = 64, size: int = 32, seed: int = 0) -> torch.Tensor:
    """Flat-coloured rectangles and discs on flat backgrounds, in [0, 1] (N x 3 x size x size),
    at a contrast like the built-in ``shapes`` (a step of 0.1 to 0.3 between shape and ground)."""
    g = torch.Generator().manual_seed(seed)
    yy, xx = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    out = torch.empty(n, 3, size, size)
    for i in range(n):
        bg = 0.3 + torch.rand(3, generator=g) * 0.3
        fg = bg + (0.1 + torch.rand(3, generator=g) * 0.2) * (1 if i % 3 else -1)
        cx, cy = (torch.randint(8, size - 8, (2,), generator=g)).tolist()
        r = int(torch.randint(4, 8, (1,), generator=g))
        if i % 2:
            mask = ((xx - cx) ** 2 + (yy - cy) ** 2) <= r * r
        else:
            mask = ((xx - cx).abs() <= r) & ((yy - cy).abs() <= r)
        out[i] = torch.where(mask, fg.view(3, 1, 1), bg.view(3, 1, 1))
    return out


@pytest.fixture(scope="module")
def real() -> torch.Tensor:
    return _shapes()


def test_kernel_is_a_zero_dc_band_pass() -> None:
    k = band_kernel()
    assert k.shape == (1, 1, 9, 9)
    assert abs(float(k.sum())) < 1e-12  # flat images give no response
    assert noise_gain() == pytest.approx(float(k.square().sum()))
    flat = torch.full((2, 3, 16, 16), 0.3)
    assert torch.allclose(band_energy(flat), torch.zeros(2, dtype=torch.float64))
    ramp = torch.linspace(0, 1, 16).view(1, 1, 1, 16).expand(1, 1, 16, 16)
    assert float(band_energy(ramp)) < 1e-12  # linear gradients are not detail


def test_noise_sigma_matches_white_noise() -> None:
    g = torch.Generator().manual_seed(1)
    for s in (0.01, 0.05, 0.1):
        x = 0.5 + s * torch.randn(8, 1, 64, 64, generator=g)
        assert noise_sigma(x).mean().item() == pytest.approx(s, rel=0.05)
    assert 0.55 < MEDIAN_RESIDUAL_TO_SIGMA < 0.62


def test_noise_sigma_ignores_edges(real: torch.Tensor) -> None:
    assert noise_sigma(real).max().item() < 1e-6  # flat regions and edges: no noise


def test_blur_lowers_sharpness(real: torch.Tensor) -> None:
    s = sharpness(real).mean().item()
    s_half = sharpness(_blur(real, 0.5)).mean().item()
    s_one = sharpness(_blur(real, 1.0)).mean().item()
    assert s > 0
    assert s_one < s_half < s
    assert s_one < 0.5 * s  # a 1-px Gaussian blur at least halves it


@pytest.mark.parametrize("noise", [0.02, 0.05])
def test_noise_does_not_count_as_sharpness(real: torch.Tensor, noise: float) -> None:
    g = torch.Generator().manual_seed(2)
    noisy = (real + noise * torch.randn(real.shape, generator=g)).clamp(0, 1)
    raw_ratio = band_energy(noisy).mean().item() / band_energy(real).mean().item()
    assert raw_ratio > 1.1  # uncorrected, the noise adds at least 10% "detail"...
    ratio = sharpness(noisy).mean().item() / sharpness(real).mean().item()
    assert 0.85 < ratio < 1.1  # ...corrected, the set's sharpness barely moves
    # and noise does not make a blurred set look as sharp as the real one
    blurred = _blur(real, 1.0)
    noisy_blurred = (blurred + noise * torch.randn(real.shape, generator=g)).clamp(0, 1)
    s_nb = sharpness(noisy_blurred)
    assert sharpness_distance(s_nb, sharpness(real)) > 0.5


def test_distance_zero_for_identical_sets(real: torch.Tensor) -> None:
    s = sharpness(real)
    assert sharpness_distance(s, s) == 0.0
    assert sharpness_log_ratio(s, s) == 0.0
    assert sharpness_wasserstein(s, s) == 0.0


def test_blurred_set_is_farther_than_real_from_real(real: torch.Tensor) -> None:
    s_real = sharpness(real)
    s_other = sharpness(_shapes(seed=1))  # another draw of the same distribution
    s_blur = sharpness(_blur(real, 1.0))
    d_same = sharpness_distance(s_other, s_real)
    d_blur = sharpness_distance(s_blur, s_real)
    assert d_blur > 0.5
    assert d_blur > 3 * d_same
    assert sharpness_log_ratio(s_blur, s_real) == pytest.approx(-d_blur)  # blurrier: negative
    assert sharpness_log_ratio(s_real, s_blur) == pytest.approx(d_blur)  # antisymmetric
    assert sharpness_wasserstein(s_blur, s_real) > sharpness_wasserstein(s_other, s_real)


def test_wasserstein_matches_shifted_sets() -> None:
    a = np.exp(np.linspace(-8, -6, 50))
    assert sharpness_wasserstein(a * math.e, a) == pytest.approx(1.0)  # log shift by 1
    b = np.exp(np.array([-7.0, -7.0, -5.0]))
    c = np.exp(np.array([-7.0, -5.0]))
    # quantiles: a = (-7, -7, -5) at thirds; c = (-7, -5) at halves -> 2 on (1/2, 2/3]
    assert sharpness_wasserstein(b, c) == pytest.approx(2.0 / 6.0)


def test_grey_and_data_range() -> None:
    x = _shapes(8)
    grey = (0.299 * x[:, :1] + 0.587 * x[:, 1:2] + 0.114 * x[:, 2:]).contiguous()
    assert torch.allclose(sharpness(x), sharpness(grey))
    assert torch.allclose(sharpness(x * 255, data_range=255.0), sharpness(x))


def test_bad_inputs() -> None:
    with pytest.raises(MetricError):
        sharpness(torch.zeros(2, 2, 16, 16))
    with pytest.raises(MetricError):
        sharpness(torch.zeros(2, 3, 4, 4))
    with pytest.raises(MetricError):
        sharpness(torch.full((1, 1, 16, 16), float("nan")))
    with pytest.raises(MetricError):
        sharpness_distance(np.array([]), np.array([1.0]))
