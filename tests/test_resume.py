"""Resuming a run with changed settings, the same command again, and Ctrl-C at a checkpoint
(exact resume of each family is in test_families.py and the family test files)."""

from __future__ import annotations

import pytest

from pixelforge.training.run import prepare_run
from pixelforge.training.trainer import Trainer

from conftest import tiny_spec


def test_a_changed_learning_rate_betas_and_weight_decay_take_effect_on_resume(tmp_path):
    # the checkpoint's optimizer settings used to win, while run.json showed the new ones
    spec = tiny_spec("restore", tmp_path / "run", train={"lr": 1e-3})
    Trainer(spec, tmp_path / "run", progress=False).fit()
    new = {"steps": 3, "lr": 1e-5, "betas": [0.5, 0.9], "weight_decay": 0.1}
    more, resumed = prepare_run(None, None, tmp_path / "run", overrides={"train": new})
    trainer = Trainer(more, tmp_path / "run", progress=False)
    trainer.fit()
    group = trainer.task.optimizers["net"].param_groups[0]
    assert resumed and trainer.step == 3
    assert group["lr"] == pytest.approx(1e-5) and tuple(group["betas"]) == (0.5, 0.9)
    assert group["weight_decay"] == 0.1
    assert trainer.task.optimizers["net"].state  # the Adam moments were kept
