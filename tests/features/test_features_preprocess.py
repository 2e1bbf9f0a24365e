"""Preprocessing: clean (clean-fid's PIL bicubic on float images) and legacy (bilinear) resizing."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from pixelforge.features.base import FeatureExtractor
from pixelforge.features.preprocess import match_channels, prepare, resize_clean


class Fake(FeatureExtractor):
    def __init__(self, size: int, channels: int = 3):
        super().__init__()
        self.input_size, self.input_channels = size, channels


def images(seed: int = 0, shape: tuple[int, ...] = (2, 3, 20, 28)) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, shape, generator=g, dtype=torch.uint8)


def pil_direct(u: torch.Tensor, size: int) -> torch.Tensor:
    """Per channel: PIL float32 ("F") image in [0, 255], bicubic, clipped, / 255."""
    out = np.zeros((u.shape[0], u.shape[1], size, size), dtype=np.float32)
    for i in range(u.shape[0]):
        for c in range(u.shape[1]):
            img = Image.fromarray(u[i, c].numpy().astype(np.float32))
            assert img.mode == "F"
            out[i, c] = np.clip(np.asarray(img.resize((size, size), Image.BICUBIC)), 0, 255) / 255
    return torch.from_numpy(out)


def test_clean_matches_a_direct_pil_computation() -> None:
    u = images()
    ours = prepare(u, Fake(64), resize="clean")
    assert ours.dtype == torch.float32 and ours.shape == (2, 3, 64, 64)
    assert torch.equal(ours, pil_direct(u, 64))
    # Float input in [0, 1] takes the same path up to float rounding.
    torch.testing.assert_close(prepare(u.float() / 255, Fake(64)), ours, rtol=0, atol=1e-6)


def test_clean_and_legacy_differ() -> None:
    u = images(1, (1, 3, 96, 96))
    clean = prepare(u, Fake(32), resize="clean")
    legacy = prepare(u, Fake(32), resize="legacy")
    expected = F.interpolate(u.float() / 255, size=(32, 32), mode="bilinear", align_corners=False)
    assert torch.equal(legacy, expected)
    # Downsampling noise 3x: PIL's bicubic antialiases (averages), bilinear without antialias
    # samples, so the clean result is much smoother.
    assert float((clean - legacy).abs().mean()) > 0.05
    assert float(clean.std()) < float(legacy.std())


def test_same_size_is_not_resampled() -> None:
    u = images(2, (1, 3, 16, 16))
    for mode in ("clean", "legacy"):
        assert torch.equal(prepare(u, Fake(16), resize=mode), u.float() / 255)  # type: ignore[arg-type]


def test_channels() -> None:
    gray = images(3, (2, 1, 10, 10))
    rgb = prepare(gray, Fake(10))
    assert rgb.shape == (2, 3, 10, 10)
    assert torch.equal(rgb[:, 0], rgb[:, 1]) and torch.equal(rgb[:, 1], rgb[:, 2])
    assert torch.equal(rgb[:, :1], gray.float() / 255)
    x = torch.tensor([1.0, 0.0, 0.0]).view(1, 3, 1, 1)
    torch.testing.assert_close(match_channels(x, 1), torch.full((1, 1, 1, 1), 0.299))
    assert prepare(images(4), Fake(12, channels=1)).shape == (2, 1, 12, 12)
    with pytest.raises(ValueError, match="4-channel"):
        match_channels(torch.rand(1, 4, 2, 2), 3)


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="clean' or 'legacy"):
        prepare(images(), Fake(8), resize="bicubic")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="N x C x H x W"):
        prepare(torch.rand(3, 8, 8), Fake(8))
    with pytest.raises(TypeError, match="uint8 or float"):
        prepare(torch.zeros(1, 3, 4, 4, dtype=torch.int32), Fake(8))


def test_clean_resize_keeps_the_device_and_clips() -> None:
    x = torch.full((1, 1, 4, 4), 2.0)  # out of range: clipped like clean-fid's clip(0, 255)
    assert float(resize_clean(x, 8).max()) == 1.0
