"""Perceptual and Gram style losses on a frozen VGG, and LPIPS's missing-weights message."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from pixelforge.errors import PixelforgeError
from pixelforge.features import weights as W
from pixelforge.features.lpips import LPIPS, LPIPSWeightsMissing, lpips_vgg
from pixelforge.features.vgg import vgg
from pixelforge.losses.perceptual import PerceptualLoss, StyleLoss, gram_matrix


@pytest.fixture(autouse=True)
def no_weights(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PIXELFORGE_WEIGHTS", str(tmp_path / "store"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setattr(W, "package_dir", lambda name: None)  # as if lpips were not installed


@pytest.fixture(scope="module")
def net16():
    return vgg("vgg16", random_seed=0)


def smooth_image(seed: int = 0, size: int = 48) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    low = torch.rand(2, 3, size // 8, size // 8, generator=g)
    base = F.interpolate(low, size=(size, size), mode="bicubic", align_corners=False)
    return (base + 0.15 * torch.rand(2, 3, size, size, generator=g)).clamp(0, 1)


def blur(x: torch.Tensor, k: int) -> torch.Tensor:
    return F.avg_pool2d(F.pad(x, (k // 2,) * 4, mode="replicate"), k, stride=1)


@pytest.mark.parametrize("criterion", ["l1", "l2"])
def test_perceptual_loss_is_zero_for_identical_images_and_grows_with_blur(net16, criterion) -> None:
    loss = PerceptualLoss(criterion=criterion, network=net16)
    x = smooth_image()
    assert float(loss(x, x.clone())) == 0.0
    values = [float(loss(blur(x, k), x)) for k in (3, 5, 9)]
    assert 0 < values[0] < values[1] < values[2]


def test_perceptual_loss_value_range_and_gradients(net16) -> None:
    x, y = smooth_image(0), smooth_image(1)
    a = PerceptualLoss({"relu2_2": 0.5, "relu3_3": 2.0}, network=net16)
    b = PerceptualLoss({"relu2_2": 0.5, "relu3_3": 2.0}, network=net16, value_range=(-1, 1))
    torch.testing.assert_close(a(x, y), b(2 * x - 1, 2 * y - 1), rtol=1e-5, atol=1e-6)
    pred = x.clone().requires_grad_(True)
    a(pred, y).backward()
    assert pred.grad is not None and float(pred.grad.abs().sum()) > 0
    assert all(p.grad is None and not p.requires_grad for p in net16.parameters())
    a.train()
    assert not a.vgg.training
    with pytest.raises(ValueError, match="relu9_9"):
        PerceptualLoss(["relu9_9"], network=net16)


def test_gram_matrix_of_a_known_input() -> None:
    # Two channels on a 1 x 2 image: F = [[1, 2], [3, 4]], G = F F^T / (C H W) = F F^T / 4.
    f = torch.tensor([[1.0, 2.0], [3.0, 4.0]]).reshape(1, 2, 1, 2)
    expected = torch.tensor([[[5.0, 11.0], [11.0, 25.0]]]) / 4
    torch.testing.assert_close(gram_matrix(f), expected)
    # Gram matrices ignore where things are: a spatial permutation changes nothing.
    x = torch.rand(3, 4, 5, 6)
    perm = torch.randperm(30)
    shuffled = x.reshape(3, 4, 30)[:, :, perm].reshape(3, 4, 5, 6)
    torch.testing.assert_close(gram_matrix(shuffled), gram_matrix(x))


def test_style_loss(net16) -> None:
    loss = StyleLoss(["relu1_2", "relu2_2"], network=net16)
    x = smooth_image(0)
    assert float(loss(x, x[:1].expand(2, -1, -1, -1).clone()[:1])) >= 0
    same = float(loss(x[:1], x[:1]))
    assert same == 0.0
    # Style compares statistics, not places: a flipped image is much closer than another image.
    flipped = float(loss(x[:1], x[:1].flip(-1)))
    other = float(loss(x[:1], smooth_image(7)[:1]))
    assert flipped < other
    # A batch-1 style applies to every image of the batch.
    torch.testing.assert_close(loss(x, x[:1]), (loss(x[:1], x[:1]) + loss(x[1:], x[:1])) / 2)


def test_style_loss_defaults_to_gatys_vgg19_layers() -> None:
    loss = StyleLoss(network=vgg("vgg19", random_seed=0))
    assert list(loss.layer_weights) == ["relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"]


def test_lpips_missing_weights_message(tmp_path: Path) -> None:
    with pytest.raises(LPIPSWeightsMissing) as exc:
        lpips_vgg()
    msg = str(exc.value)
    assert isinstance(exc.value, PixelforgeError)
    assert "vgg16-397923af.pth" in msg and "pixelforge weights fetch vgg16" in msg
    assert "lpips-v0.1-vgg.pth" in msg and "pixelforge weights fetch lpips-vgg" in msg
    assert "pip install lpips" in msg


def test_lpips_is_zero_for_identical_images_and_symmetric(net16) -> None:
    g = torch.Generator().manual_seed(0)
    lin = {
        f"lin{i}.model.1.weight": torch.rand(1, c, 1, 1, generator=g)
        for i, c in enumerate((64, 128, 256, 512, 512))
    }
    model = LPIPS.from_tensors(net16.state_dict(), lin)
    x, y = smooth_image(0), smooth_image(1)
    with torch.no_grad():
        assert torch.equal(model(x, x), torch.zeros(2))
        d = model(x, y)
        assert d.shape == (2,) and bool((d > 0).all())
        torch.testing.assert_close(model(y, x), d)
    with pytest.raises(LPIPSWeightsMissing, match="lin4"):
        LPIPS.from_tensors(net16.state_dict(), {k: v for k, v in lin.items() if "lin4" not in k})
