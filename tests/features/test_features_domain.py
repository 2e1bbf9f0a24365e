"""Domain feature extractors (digits-cnn, shapes-cnn): shipped weights, determinism, training."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy import linalg

from pixelforge.errors import ModelLoadError
from pixelforge.features import get_extractor
from pixelforge.features.domain import (
    DOMAINS,
    DomainExtractor,
    classification_accuracy,
    digits_cnn,
    load_domain_extractor,
    open_domain_data,
    read_card,
    shipped_weights_dir,
    train_domain_extractor,
)
from pixelforge.hub import sha256_file

NAMES = sorted(DOMAINS)


@pytest.fixture(scope="module")
def digits() -> DomainExtractor:
    return digits_cnn()


def images01(name: str, split: str) -> tuple[torch.Tensor, torch.Tensor]:
    """All images of a split in [0, 1], and their labels."""
    ds = open_domain_data(name, split)
    batch = ds.get_batch(torch.arange(len(ds)))
    return (batch["image"] + 1.0) / 2.0, batch["label"]


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """||mu_a - mu_b||^2 + Tr(S_a + S_b - 2 (S_a S_b)^(1/2)), in float64 (Heusel et al. 2017)."""
    a, b = a.astype(np.float64), b.astype(np.float64)
    mu_a, mu_b = a.mean(0), b.mean(0)
    s_a, s_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    covmean = linalg.sqrtm(s_a @ s_b).real
    return float(((mu_a - mu_b) ** 2).sum() + np.trace(s_a + s_b - 2.0 * covmean))


# ---------------------------------------------------------------------------- shipped weights


@pytest.mark.parametrize("name", NAMES)
def test_shipped_weights_reproduce_their_card(name: str) -> None:
    extractor = get_extractor(name)
    card = read_card(name)
    assert isinstance(extractor, DomainExtractor)
    assert extractor.name == name
    assert extractor.weights_sha256 == card["sha256"]
    assert extractor.weights_sha256 == sha256_file(shipped_weights_dir() / f"{name}.safetensors")
    assert extractor.input_size == 32
    assert extractor.input_channels == DOMAINS[name].channels == card["dataset"]["channels"]
    assert extractor.feature_dim == card["feature_dim"] <= 64
    assert extractor.comparable_to_published is False
    assert extractor.describe()["comparable_to_published"] is False
    assert "not comparable with published FIDs" in str(extractor.describe()["note"])
    assert card["reproduce"] == f"pixelforge weights train-domain {name} --out DIR"
    assert card["dataset"]["train"] == DOMAINS[name].train_data
    assert card["dataset"]["test"] == DOMAINS[name].test_data
    assert "judge" in card["usage"] and "guidance" in card["usage"]

    test_set = open_domain_data(name, "test")
    assert len(test_set) == card["dataset"]["test_size"]
    accuracy = classification_accuracy(extractor, test_set)
    assert abs(accuracy - card["test_accuracy"]) <= 0.005
    assert accuracy >= (0.97 if name == "digits-cnn" else 0.95)


def test_features_are_deterministic_and_batch_size_independent(digits: DomainExtractor) -> None:
    x, _ = images01("digits-cnn", "test")
    x = x[:64]
    whole = digits(x)
    assert whole.shape == (64, digits.feature_dim) and whole.dtype == torch.float32
    halves = torch.cat([digits(x[:32]), digits(x[32:])])
    assert float((whole - halves).abs().max()) <= 1e-6
    assert torch.equal(digits(x), whole)
    digits.train()  # a measuring instrument stays in eval mode: batch norm keeps its statistics
    assert not digits.training and not any(m.training for m in digits.modules())
    assert float((digits(x) - whole).abs().max()) <= 1e-6
    singles = torch.cat([digits(x[i : i + 1]) for i in range(8)])
    torch.testing.assert_close(singles, whole[:8], rtol=1e-5, atol=1e-5)  # float32 rounding only
    assert digits.logits(x).shape == (64, 10)


def test_wrong_input_shape_is_refused(digits: DomainExtractor) -> None:
    with pytest.raises(ValueError, match=r"N x 1 x 32 x 32"):
        digits(torch.zeros(2, 3, 32, 32))
    with pytest.raises(ValueError, match=r"N x 1 x 32 x 32"):
        digits(torch.zeros(2, 1, 64, 64))


def test_tampered_weights_are_refused(tmp_path: Path) -> None:
    for suffix in (".safetensors", ".json"):
        shutil.copy(shipped_weights_dir() / f"digits-cnn{suffix}", tmp_path)
    assert (
        load_domain_extractor("digits-cnn", tmp_path).weights_sha256
        == read_card("digits-cnn")["sha256"]
    )
    weights = tmp_path / "digits-cnn.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0x01  # one bit of one weight
    weights.write_bytes(bytes(data))
    with pytest.raises(ModelLoadError, match="SHA-256"):
        load_domain_extractor("digits-cnn", tmp_path)
    with pytest.raises(ModelLoadError, match="SHA-256"):
        digits_cnn(weights_dir=tmp_path)


def test_missing_card_says_how_to_make_one(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="pixelforge weights train-domain shapes-cnn"):
        load_domain_extractor("shapes-cnn", tmp_path)


# ---------------------------------------------------------------------------- training


def test_a_short_training_run_writes_a_loadable_pair(tmp_path: Path) -> None:
    threads = torch.get_num_threads()
    rng_state = torch.get_rng_state()
    report = train_domain_extractor("digits-cnn", tmp_path / "a", steps=3, progress=False)
    assert torch.get_num_threads() == threads  # restored after the one-thread training
    assert torch.equal(torch.get_rng_state(), rng_state)  # global random state untouched

    files = sorted(p.name for p in (tmp_path / "a").iterdir())
    assert files == ["digits-cnn.json", "digits-cnn.safetensors"]  # no temporary files left
    card = json.loads((tmp_path / "a" / "digits-cnn.json").read_text())
    assert card["steps"] == report["steps"] == 3
    assert card["seed"] == report["seed"] == 0
    assert card["sha256"] == report["sha256"] == sha256_file(tmp_path / "a/digits-cnn.safetensors")
    assert card["reproduce"] == "pixelforge weights train-domain digits-cnn --out DIR --steps 3"
    assert card["dataset"]["train_size"] == report["train_size"] == 1437
    assert card["dataset"]["test_size"] == report["test_size"] == 360
    assert card["test_accuracy"] == pytest.approx(report["test_accuracy"], abs=1e-6)

    extractor = digits_cnn(weights_dir=tmp_path / "a")
    assert extractor.weights_sha256 == report["sha256"]
    accuracy = classification_accuracy(extractor, open_domain_data("digits-cnn", "test"))
    assert accuracy == pytest.approx(card["test_accuracy"], abs=1e-6)

    again = train_domain_extractor("digits-cnn", tmp_path / "b", steps=3, progress=False)
    assert again["sha256"] == report["sha256"]  # same seed, same bytes


def test_the_command_prints_its_report_alone_and_no_torch_warning(tmp_path: Path, cli) -> None:
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        code, out, err = cli(
            "weights", "train-domain", "digits-cnn", "--out", tmp_path, "--steps", 2
        )
    assert code == 0, err
    assert json.loads(out)["steps"] == 2 and out.startswith("{")  # stdout: the report alone
    assert not [w for w in caught if "requires_grad" in str(w.message)]


def test_unknown_name_and_bad_steps_are_refused(tmp_path: Path) -> None:
    from pixelforge.errors import ConfigError

    with pytest.raises(ConfigError, match="digits-cnn"):
        train_domain_extractor("digit-cnn", tmp_path, steps=1, progress=False)
    with pytest.raises(ConfigError, match="steps"):
        train_domain_extractor("digits-cnn", tmp_path, steps=0, progress=False)


# ---------------------------------------------------------------------------- FID-style sanity


def test_frechet_distance_separates_real_from_scrambled_digits(digits: DomainExtractor) -> None:
    train, _ = images01("digits-cnn", "train")
    test, _ = images01("digits-cnn", "test")
    g = torch.Generator().manual_seed(0)
    flat = test.flatten(1)
    perms = torch.stack([torch.randperm(flat.shape[1], generator=g) for _ in range(len(flat))])
    scrambled = torch.gather(flat, 1, perms).view_as(test)  # each image's pixels shuffled

    f_train = digits(train).numpy()
    real = frechet_distance(f_train, digits(test).numpy())
    fake = frechet_distance(f_train, digits(scrambled).numpy())
    assert 0.0 <= real < 0.05 * fake
