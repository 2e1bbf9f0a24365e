"""Configs round-trip through JSON, and a wrong key or value is an error that names it."""

from __future__ import annotations

import json

import pytest

from pixelforge.config import from_dict, split_overrides, to_dict
from pixelforge.data import DataConfig
from pixelforge.errors import ConfigError
from pixelforge.registry import list_families


@pytest.mark.parametrize("family", [f.name for f in list_families()])
def test_every_family_config_round_trips_through_json(family):
    from pixelforge.registry import get_family

    fam = get_family(family)
    for cls in (fam.config_cls, fam.train_config_cls, DataConfig):
        cfg = cls()
        again = from_dict(cls, json.loads(json.dumps(to_dict(cfg))))
        assert again == cfg


def test_misspelt_key_is_named_with_a_suggestion():
    from pixelforge.models.dcgan import DCGANConfig

    with pytest.raises(ConfigError) as e:
        from_dict(DCGANConfig, {"image_sise": 32}, where="model")
    assert "model.image_sise" in str(e.value)
    assert "image_size" in str(e.value)


@pytest.mark.parametrize(
    ("values", "needle"),
    [
        ({"image_size": "big"}, "model.image_size"),
        ({"image_size": 48}, "power of two"),
        ({"g_norm": "group"}, "model.g_norm"),
        ({"spectral_norm": 1}, "true or false"),
    ],
)
def test_wrong_values_name_the_field(values, needle):
    from pixelforge.models.dcgan import DCGANConfig

    with pytest.raises(ConfigError, match=needle):
        from_dict(DCGANConfig, values, where="model")


def test_train_config_ranges_are_checked():
    from pixelforge.training.gan import GANTrainConfig

    with pytest.raises(ConfigError, match=r"train\.batch_size"):
        from_dict(GANTrainConfig, {"batch_size": 0}, where="train")
    with pytest.raises(ConfigError, match=r"train\.loss"):
        from_dict(GANTrainConfig, {"loss": "wasserstein"}, where="train")


def test_overrides_parse_json_values_and_nest_by_dots():
    nested = split_overrides(
        [
            "train.lr=1e-4",
            "model.num_classes=null",
            "train.betas=[0.0, 0.99]",
            "data.resize_filter=bicubic",
        ]
    )
    assert nested == {
        "train": {"lr": 1e-4, "betas": [0.0, 0.99]},
        "model": {"num_classes": None},
        "data": {"resize_filter": "bicubic"},
    }
    with pytest.raises(ConfigError, match="key=value"):
        split_overrides(["train.lr"])


def test_lr_schedule_warmup_and_cosine_reach_zero():
    from pixelforge.training.config import TrainConfig

    cfg = TrainConfig(steps=100, warmup_steps=10, lr_schedule="cosine")
    assert cfg.lr_factor(0) == pytest.approx(0.1)
    assert cfg.lr_factor(9) == pytest.approx(1.0)
    assert cfg.lr_factor(10) == pytest.approx(1.0)
    assert cfg.lr_factor(100) == pytest.approx(0.0, abs=1e-12)
    assert 0 < cfg.lr_factor(55) < 1


def test_a_key_without_section_goes_to_the_one_section_that_has_it(tmp_path):
    """`--set style=X` (as the style-transfer docs write it) means train.style; a name two
    sections share (seed: model and data) must be written in full."""
    from pixelforge.registry import get_family
    from pixelforge.training.run import place_bare_keys, prepare_run

    fam = get_family("fast-style")
    placed = place_bare_keys(
        {"style": "a.png", "image_size": 64, "train": {"lr": 0.1}}, fam, "--set"
    )
    assert placed == {"train": {"style": "a.png", "lr": 0.1}, "model": {"image_size": 64}}
    with pytest.raises(ConfigError, match=r"train\.seed or data\.seed|data\.seed or train\.seed"):
        place_bare_keys({"seed": 1}, fam, "--set")
    with pytest.raises(ConfigError, match="Did you mean 'style'"):
        place_bare_keys({"stlye": "a.png"}, fam, "--set")
    spec, _ = prepare_run(
        "fast-style", "photos", tmp_path / "run", overrides={"style": "builtin:mosaic"}
    )
    assert spec.train.style == "builtin:mosaic"
