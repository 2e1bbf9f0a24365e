"""The extractors: registration, the random-weight VGG fallback, named layers, eval mode."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
import torch

from pixelforge.errors import ConfigError
from pixelforge.features import get_extractor, list_extractors
from pixelforge.features.inception import InceptionV3FID
from pixelforge.features.vgg import DEFAULT_LAYERS, VGG, RandomWeightsWarning, vgg
from pixelforge.features.weights import WeightsNotFoundError


@pytest.fixture(autouse=True)
def no_weights(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Empty weight locations, whatever this machine has cached."""
    monkeypatch.setenv("PIXELFORGE_WEIGHTS", str(tmp_path / "store"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))


def test_registered_names() -> None:
    names = [n for n, _ in list_extractors()]
    for name in ("inception-v3-fid", "vgg16", "vgg19"):
        assert name in names
    with pytest.raises(ConfigError, match="Did you mean 'vgg16'"):
        get_extractor("vgg-16")


def test_inception_without_weights_is_an_error_not_a_fallback() -> None:
    with pytest.raises(WeightsNotFoundError, match="pixelforge weights fetch inception"):
        get_extractor("inception-v3-fid")


def test_inception_outputs_and_protocol() -> None:
    net = get_extractor("inception-v3-fid", random_seed=0)
    assert isinstance(net, InceptionV3FID)
    d = net.describe()
    assert d == {
        "extractor": "inception-v3-fid",
        "weights_sha256": "random:0",
        "input_size": 299,
        "feature_dim": 2048,
        "comparable_to_published": False,
    }
    x = torch.rand(1, 3, 299, 299, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        feats, logits = net.features_and_logits(x)
        assert feats.shape == (1, 2048) and logits.shape == (1, 1008)
        assert feats.dtype == logits.dtype == torch.float32
        assert torch.equal(logits, feats @ net.fc.weight.T)  # no bias: logits_unbiased
        assert torch.equal(net(x), feats)
    net.train()
    assert not net.training and not net.Mixed_5b.branch1x1.bn.training
    with pytest.raises(ValueError, match="prepare"):
        net(torch.rand(1, 3, 64, 64))


def test_random_vgg_fallback_warns_and_is_deterministic() -> None:
    with pytest.warns(RandomWeightsWarning, match="pixelforge weights fetch vgg16"):
        a = get_extractor("vgg16")
    with pytest.warns(RandomWeightsWarning):
        b = vgg("vgg16")
    assert a.weights_sha256 == b.weights_sha256 == "random:0"
    for k, v in a.state_dict().items():
        assert torch.equal(v, b.state_dict()[k]), k
    x = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        assert torch.equal(a(x), b(x))
        assert a(x).shape == (2, 512)
    # Another seed gives other weights; asking for a seed directly does not warn.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        c = vgg("vgg16", random_seed=5)
    assert c.weights_sha256 == "random:5"
    assert not torch.equal(c.features[0].weight, a.features[0].weight)
    # He init: std of the first conv is sqrt(2 / fan_out) = sqrt(2 / (64 * 9)).
    assert abs(float(a.features[0].weight.std()) - (2 / 576) ** 0.5) < 0.006


def test_no_fallback_when_refused_or_when_a_path_is_given(tmp_path: Path) -> None:
    with pytest.raises(WeightsNotFoundError):
        vgg("vgg19", allow_random=False)
    with pytest.raises(WeightsNotFoundError, match="not found"):
        vgg("vgg19", tmp_path / "missing.pth")


def test_vgg_layers_and_keys() -> None:
    net16, net19 = VGG("vgg16"), VGG("vgg19")
    assert len(net16.features) == 31 and len(net19.features) == 37  # as torchvision
    assert "features.28.weight" in net16.state_dict() and "features.34.weight" in net19.state_dict()
    assert set(net16.state_dict()) == {
        f"features.{i}.{p}"
        for i in (0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28)
        for p in ("weight", "bias")
    }
    assert net16.layer_names[29] == "relu5_3" and net19.layer_names[35] == "relu5_4"
    assert net16.last_relu == "relu5_3" and net19.last_relu == "relu5_4"
    x = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        acts = net19.activations(x)
    assert list(acts) == list(DEFAULT_LAYERS["vgg19"])
    assert acts["relu1_1"].shape == (1, 64, 32, 32) and acts["relu5_1"].shape == (1, 512, 2, 2)
    with pytest.raises(ValueError, match="relu5_4"):
        net16.activations(x, ["relu5_4"])
