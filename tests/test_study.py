"""`pixelforge study augment`: a tiny study (2 seeds, few steps) and its errors."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pytest
import torch

from pixelforge.cli.main import main
from pixelforge.errors import ConfigError
from pixelforge.models.base import ImageGenerator
from pixelforge.study import ARMS, ClassifierBudget, run_augment_study
from pixelforge.study.augment import parse_fractions, stratified_subset

TINY = ClassifierBudget(steps=40, batch_size=32, width=8)
SIZE = 8  # the digits' native size: no upsampling, fastest


def run_cli(*args: Any) -> int:
    """The real command line in-process: returns the exit code (errors printed to stderr)."""
    return main([str(a) for a in args])


@pytest.fixture(autouse=True)
def one_thread():
    """One torch thread: faster than two on a shared, loaded CPU; restored afterwards."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@dataclass(frozen=True)
class NoiseConfig:
    image_size: int = SIZE
    channels: int = 1
    num_classes: int = 10


class NoiseGenerator(ImageGenerator):
    """A "generator" whose images are uniform noise whatever the label."""

    family = "noise"

    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        self.config = NoiseConfig(num_classes=num_classes)
        self.dummy = torch.nn.Parameter(torch.zeros(1))

    def latent_shape(self) -> tuple[int, ...]:
        return (1, SIZE, SIZE)

    def generate(self, z: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        return torch.rand(
            z.shape, generator=torch.Generator().manual_seed(int(z.sum().abs() * 1e3))
        )


@pytest.fixture(scope="module")
def noise_study() -> dict[str, Any]:
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return run_augment_study(
            "digits", NoiseGenerator(), seeds=2, fractions=(0.1, 1.0), budget=TINY, image_size=SIZE
        )
    finally:
        torch.set_num_threads(before)


def test_structure_and_equal_budgets(noise_study):
    r = noise_study
    assert r["test_data"] == "digits:test" and r["n_test"] == 360 and r["n_train"] == 1437
    assert r["seeds"] == [0, 1] and r["fractions"] == [0.1, 1.0]
    assert len(r["runs"]) == 2 * 2 * 3
    assert [(s["fraction"], s["arm"]) for s in r["summary"]] == [
        (f, a) for f in (0.1, 1.0) for a in ARMS
    ]
    seen = TINY.steps * TINY.batch_size
    for s in r["summary"]:
        assert len(s["accuracies"]) == 2 and 0.0 <= s["mean"] <= 1.0 and s["std"] >= 0.0
        assert s["images_seen"] == seen  # equal images seen in every arm
        assert s["images_seen_real"] + s["images_seen_generated"] == seen
        if s["arm"] == "real+generated":
            assert s["images_seen_real"] == s["images_seen_generated"] == seen // 2
            assert s["pool_real"] == s["pool_generated"]
    pools = {s["fraction"]: s["pool_real"] for s in r["summary"] if s["arm"] == "real"}
    assert pools[1.0] == 1437 and 140 <= pools[0.1] <= 146
    json.dumps(r)  # JSON-ready


def test_noise_generator_is_near_chance_and_real_is_well_above(noise_study):
    by = {(s["arm"], s["fraction"]): s["mean"] for s in noise_study["summary"]}
    assert by[("real", 1.0)] > 0.6
    assert by[("real", 0.1)] > 0.4
    assert by[("generated", 1.0)] < 0.25 and by[("generated", 0.1)] < 0.25  # chance: 0.1


def test_stratified_subset_is_by_class_and_seed():
    labels = torch.arange(100) % 10
    a, b = stratified_subset(labels, 0.2, 0), stratified_subset(labels, 0.2, 1)
    assert torch.bincount(labels[a]).tolist() == [2] * 10
    assert not torch.equal(a, b)
    assert torch.equal(stratified_subset(labels, 1.0, 3), torch.arange(100))


def test_unconditional_and_mismatched_generators_are_refused():
    with pytest.raises(ConfigError, match="unconditional"):
        run_augment_study("digits", NoiseGenerator(num_classes=0), seeds=1, budget=TINY)
    with pytest.raises(ConfigError, match="3 classes"):
        run_augment_study("digits", NoiseGenerator(num_classes=3), seeds=1, budget=TINY)


def test_parse_fractions():
    assert parse_fractions("0.1, 1") == (0.1, 1.0)
    for bad in ("0", "1.5", "x", "0.5,0.5"):
        with pytest.raises(ConfigError):
            parse_fractions(bad)


def test_cli_runs_and_writes_json(tmp_path, capsys):
    out = tmp_path / "r.json"
    code = run_cli(
        "study", "augment", "--data", "digits", "--generator", "dcgan-digits",
        "--seeds", "1", "--fractions", "0.1", "--steps", "5", "--batch-size", "16",
        "--image-size", SIZE, "--out", out,
    )  # fmt: skip
    assert code == 0, capsys.readouterr()
    result = json.loads(out.read_text())
    assert result["generator"] == "dcgan-digits" and len(result["runs"]) == 3
    assert result["command"].startswith("pixelforge study augment --data digits")
    assert "real" in capsys.readouterr().out


def test_cli_refuses_unconditional_generator(tmp_path, capsys):
    from pixelforge.hub import save_model
    from pixelforge.models.dcgan import DCGAN, DCGANConfig

    model_dir = tmp_path / "uncond"
    cfg = DCGANConfig(image_size=8, channels=1, num_classes=0, z_dim=4, g_width=4, d_width=4)
    save_model(DCGAN(cfg), model_dir)
    code = run_cli("study", "augment", "--data", "digits", "--generator", model_dir)
    assert code != 0
    err = capsys.readouterr().err
    assert "unconditional" in err and "Traceback" not in err and err.startswith("error:")
    assert run_cli("study", "augment", "--data", "digits", "--generator", "dcgan-digits",
                   "--fractions", "2") != 0  # fmt: skip
