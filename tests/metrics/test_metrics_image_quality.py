"""PSNR and SSIM: the values of scikit-image on random and real images, RGB and Y channel."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from skimage import color, data, filters
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from pixelforge.metrics import MetricError, psnr, rgb_to_y, ssim

TOL = 1e-4


def _sk_ssim(a: np.ndarray, b: np.ndarray, data_range: float, rgb: bool) -> float:
    return structural_similarity(
        a,
        b,
        gaussian_weights=True,
        sigma=1.5,
        use_sample_covariance=False,
        data_range=data_range,
        channel_axis=-1 if rgb else None,
    )


def _nchw(*images: np.ndarray) -> torch.Tensor:
    return torch.stack([torch.from_numpy(im).permute(2, 0, 1) for im in images])


def _real_pairs() -> list[tuple[np.ndarray, np.ndarray]]:
    """Crops of real photos in [0, 1] and degraded copies (noise, blur, both)."""
    rng = np.random.default_rng(0)
    crops = [data.astronaut()[60:156, 160:256], data.coffee()[100:196, 200:296]]
    pairs = []
    for crop in crops:
        clean = crop.astype(np.float64) / 255
        noisy = np.clip(clean + rng.normal(0, 0.04, clean.shape), 0, 1)
        blurred = filters.gaussian(clean, sigma=1.2, channel_axis=-1)
        pairs += [(noisy, clean), (blurred, clean), (np.clip(blurred + noisy - clean, 0, 1), clean)]
    return pairs


def test_rgb_matches_scikit_image_on_real_images() -> None:
    pairs = _real_pairs()
    pred, target = _nchw(*(p for p, _ in pairs)), _nchw(*(t for _, t in pairs))
    ours_psnr, ours_ssim = psnr(pred, target), ssim(pred, target)
    for i, (p, t) in enumerate(pairs):
        assert ours_psnr[i].item() == pytest.approx(
            peak_signal_noise_ratio(t, p, data_range=1.0), abs=TOL
        )
        assert ours_ssim[i].item() == pytest.approx(_sk_ssim(p, t, 1.0, rgb=True), abs=TOL)
    assert psnr(pred, target, reduction="mean").item() == pytest.approx(ours_psnr.mean().item())


def test_y_channel_matches_scikit_image_rgb2ycbcr() -> None:
    pairs = _real_pairs()
    pred, target = _nchw(*(p for p, _ in pairs)), _nchw(*(t for _, t in pairs))
    ours_psnr = psnr(pred, target, y_channel=True, crop_border=4)
    ours_ssim = ssim(pred, target, y_channel=True, crop_border=4)
    for i, (p, t) in enumerate(pairs):
        # skimage's rgb2ycbcr is the same BT.601 / MATLAB convention: Y in [16, 235].
        yp, yt = color.rgb2ycbcr(p)[4:-4, 4:-4, 0], color.rgb2ycbcr(t)[4:-4, 4:-4, 0]
        assert ours_psnr[i].item() == pytest.approx(
            peak_signal_noise_ratio(yt, yp, data_range=255), abs=TOL
        )
        assert ours_ssim[i].item() == pytest.approx(_sk_ssim(yp, yt, 255.0, rgb=False), abs=TOL)


def test_y_conversion_is_the_matlab_convention() -> None:
    rgb = torch.tensor([0.0, 1.0, 0.5]).view(1, 3, 1, 1) * torch.ones(1, 3, 2, 2)
    expected = (16 + 65.481 * 0.0 + 128.553 * 1.0 + 24.966 * 0.5) / 255
    assert torch.allclose(rgb_to_y(rgb), torch.full((1, 1, 2, 2), expected))
    assert torch.allclose(
        rgb_to_y(rgb * 255, data_range=255.0), torch.full((1, 1, 2, 2), expected * 255)
    )


@pytest.mark.parametrize("channels", [1, 3])
def test_random_images_in_0_255_match_scikit_image(channels: int) -> None:
    rng = np.random.default_rng(channels)
    a = rng.uniform(0, 255, (2, 40, 33, channels))
    b = np.clip(a + rng.normal(0, 20, a.shape), 0, 255)
    pa, pb = _nchw(*a), _nchw(*b)
    ours_psnr, ours_ssim = psnr(pa, pb, data_range=255.0), ssim(pa, pb, data_range=255.0)
    for i in range(2):
        x, y = (a[i], b[i]) if channels == 3 else (a[i, ..., 0], b[i, ..., 0])
        assert ours_psnr[i].item() == pytest.approx(
            peak_signal_noise_ratio(y, x, data_range=255), abs=TOL
        )
        assert ours_ssim[i].item() == pytest.approx(
            _sk_ssim(x, y, 255.0, rgb=channels == 3), abs=TOL
        )


def test_identical_images_and_batching() -> None:
    x = torch.rand(3, 3, 24, 24, dtype=torch.float64)
    assert torch.isinf(psnr(x, x)).all()
    assert torch.allclose(ssim(x, x), torch.ones(3, dtype=torch.float64))
    y = (x + 0.1 * torch.randn_like(x)).clamp(0, 1)
    batched = ssim(y, x)
    one_by_one = torch.stack([ssim(y[i], x[i])[0] for i in range(3)])  # C x H x W is one image
    assert torch.allclose(batched, one_by_one, rtol=0, atol=1e-12)
    assert psnr(y.float(), x.float()).dtype == torch.float64  # computed in float64


def test_mismatched_pairs_are_clear_errors() -> None:
    a = torch.rand(2, 3, 32, 32)
    with pytest.raises(MetricError, match="differ in sizes"):
        psnr(a, torch.rand(2, 3, 32, 30))
    with pytest.raises(MetricError, match="differ in counts"):
        ssim(a, torch.rand(3, 3, 32, 32))
    with pytest.raises(MetricError, match="RGB"):
        psnr(a[:, :1], a[:, :1], y_channel=True)
    with pytest.raises(MetricError, match="at least 11 x 11"):
        ssim(a, a, crop_border=11)
    with pytest.raises(MetricError, match="NaN"):
        psnr(a, torch.full_like(a, float("nan")))
    with pytest.raises(MetricError, match="data_range"):
        psnr(a, a, data_range=0)
