"""Differentiable augmentation (DiffAugment, ADA) and its place in the GAN step."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
import torch

from pixelforge import runs
from pixelforge.errors import ConfigError
from pixelforge.hub import read_safetensors
from pixelforge.losses.augment import POLICIES, ada_update, augment, cutout, translation
from pixelforge.registry import get_family
from pixelforge.training.run import prepare_run
from pixelforge.training.trainer import Trainer

from conftest import tiny_spec


def seeded_rand(seed: int = 0, n: int = 6):
    g = torch.Generator().manual_seed(seed)
    return lambda *shape: torch.rand((n, *shape), generator=g)


def test_off_or_p_zero_is_the_identity_and_shapes_are_kept():
    x = torch.rand(6, 3, 16, 16) * 2 - 1
    assert augment(x, (), seeded_rand()) is x
    assert torch.equal(augment(x, POLICIES, seeded_rand(), p=0.0), x)
    y = augment(x, POLICIES, seeded_rand(), p=1.0)
    assert y.shape == x.shape and not torch.equal(y, x)
    # the same draws give the same augmentation
    assert torch.equal(y, augment(x, POLICIES, seeded_rand(), p=1.0))


@pytest.mark.parametrize("policy", [("color",), ("translation",), ("cutout",), POLICIES])
def test_augmentations_pass_gradients_to_their_input(policy):
    x = torch.randn(6, 3, 8, 8, requires_grad=True)
    augment(x, policy, seeded_rand(1), p=1.0).square().sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


def test_translation_moves_whole_pixels_and_cutout_zeros_a_square():
    x = torch.zeros(1, 1, 8, 8)
    x[0, 0, 3, 4] = 1.0
    # u = 1 - eps and u = 0: the largest shifts (1 pixel at 8 px, ratio 1/8), both directions
    moved = translation(x, torch.full((1, 2), 0.999))
    assert moved[0, 0, 2, 3] == 1.0 and moved.sum() == 1.0
    moved = translation(x, torch.tensor([[0.0, 0.5]]))
    assert moved[0, 0, 4, 4] == 1.0 and moved.sum() == 1.0
    ones = torch.ones(2, 1, 8, 8)
    cut = cutout(ones, torch.tensor([[0.5, 0.5], [0.0, 0.0]]))
    assert cut[0].sum() == 64 - 16  # a 4 x 4 square inside the image
    assert cut[1].sum() == 64 - 4  # centred on the corner: clipped to 2 x 2


def test_ada_p_moves_toward_the_target_at_the_paper_rate():
    step = 64 * 4 / (100 * 1000)
    assert ada_update(0.2, 0.9, target=0.6, batch_size=64, interval=4, kimg=100) == pytest.approx(
        0.2 + step
    )
    assert ada_update(0.2, 0.1, target=0.6, batch_size=64, interval=4, kimg=100) == pytest.approx(
        0.2 - step
    )
    assert ada_update(0.0, -1.0, target=0.6, batch_size=64, interval=4, kimg=1) == 0.0
    assert ada_update(0.99, 1.0, target=0.6, batch_size=64, interval=4, kimg=1) == 1.0


def test_p_rises_when_the_discriminator_overfits(tmp_path):
    spec = tiny_spec("dcgan", tmp_path, train={"augment": "ada", "ada_interval": 2, "ada_kimg": 1})
    task = get_family("dcgan").task_cls(spec.model, spec.train)
    ada = task.modules["augment"]
    confident = torch.full((8,), 3.0)  # D calls every real image real: r_t = 1 > 0.6
    task._ada_observe(confident, SimpleNamespace(step=0, global_batch=8))
    assert float(ada.p) == 0.0  # adjusted every 2 steps only
    task._ada_observe(confident, SimpleNamespace(step=1, global_batch=8))
    assert float(ada.p) == pytest.approx(8 * 2 / 1000)
    unsure = torch.tensor([1.0, -1.0] * 4)  # r_t = 0 < 0.6: p falls back
    for step in (2, 3):
        task._ada_observe(unsure, SimpleNamespace(step=step, global_batch=8))
    assert float(ada.p) == 0.0


@pytest.mark.parametrize("family", ["dcgan", "stylegan"])
@pytest.mark.parametrize("kind", ["diffaugment", "ada"])
def test_two_steps_train_with_augmentation_and_ada_p_is_checkpointed(family, kind, tmp_path):
    train = {"augment": kind, "ada_interval": 1, "ada_kimg": 1, "ada_target": 0.01}
    spec = tiny_spec(family, tmp_path, train={**train, "log_every": 1})
    trainer = Trainer(spec, tmp_path, progress=False)
    trainer.fit()
    assert trainer.nonfinite_total == 0
    _, folder = runs.latest_checkpoint(tmp_path)
    state = read_safetensors(folder / runs.STATE_TENSORS)
    rows = [json.loads(line) for line in (tmp_path / runs.METRICS).read_text().splitlines()]
    if kind == "ada":
        p = trainer.task.modules["augment"].p
        assert torch.equal(state["module/augment/p"], p)
        assert all("ada_p" in r for r in rows if "loss_D" in r)
    else:
        assert not any(k.startswith("module/augment/") for k in state)


def test_resume_with_ada_is_exact(tmp_path):
    train = {"augment": "ada", "ada_interval": 1, "ada_kimg": 1, "ada_target": 0.01, "log_every": 1}
    straight, split = tmp_path / "straight", tmp_path / "split"
    Trainer(
        tiny_spec("stylegan", straight, train={**train, "steps": 3}), straight, progress=False
    ).fit()
    Trainer(tiny_spec("stylegan", split, train={**train, "steps": 2}), split, progress=False).fit()
    more, resumed = prepare_run(None, None, split, overrides={"train": {"steps": 3}})
    trainer = Trainer(more, split, progress=False)
    trainer.fit()
    assert resumed and trainer.step == 3
    a = read_safetensors(runs.latest_checkpoint(straight)[1] / runs.STATE_TENSORS)
    b = read_safetensors(runs.latest_checkpoint(split)[1] / runs.STATE_TENSORS)
    assert a.keys() == b.keys() and "module/augment/p" in a
    rows = [json.loads(line) for line in (straight / runs.METRICS).read_text().splitlines()]
    assert any(r.get("ada_p", 0) > 0 for r in rows)  # p moved during the run
    for key in a:
        assert torch.equal(a[key], b[key]), key


def test_unknown_policy_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="augment_policy"):
        tiny_spec(
            "dcgan", tmp_path, train={"augment": "diffaugment", "augment_policy": "color,rotate"}
        )
