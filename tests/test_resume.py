"""Resuming a run with changed settings, the same command again, and Ctrl-C at a checkpoint
(exact resume of each family is in test_families.py and the family test files)."""

from __future__ import annotations

import shutil

import pytest

from pixelforge import hub
from pixelforge.errors import ConfigError
from pixelforge.training.run import prepare_run
from pixelforge.training.trainer import Trainer

from conftest import make_image_folder, small_restore_model, tiny_spec


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


TINY_RESTORE = [
    "--set", "model.image_size=8", "--set", "train.batch_size=4", "--set", "train.sample_every=0",
    "--set", "train.tensorboard=false", "--device", "cpu", "--no-progress",
]  # fmt: skip


def test_the_same_command_with_init_resumes_and_another_init_is_refused(cli, tmp_path):
    # a run started with --init was told "run the same command again to resume" and then
    # refused: --init starts a new run
    data = make_image_folder(tmp_path / "photos")
    hub.save_model(small_restore_model("sr", scale=2), tmp_path / "start")
    command = ["train", "restore", "--data", data, "--out", tmp_path / "run", *TINY_RESTORE]
    assert cli(*command, "--init", tmp_path / "start", "--steps", 2)[0] == 0
    code, out, err = cli(*command, "--init", tmp_path / "start", "--steps", 3)
    assert code == 0 and "resuming at step 2" in err and "done: 3 steps" in out

    hub.save_model(small_restore_model("sr", scale=2), tmp_path / "other")
    code, _, err = cli(*command, "--init", tmp_path / "other", "--steps", 4)
    assert code == 2 and err.startswith("error: --init") and len(err.strip().splitlines()) == 1
    assert "it started from" in err and str(tmp_path / "start") in err


def test_a_finished_run_given_the_same_command_says_so_without_reading_the_data(cli, tmp_path):
    data = make_image_folder(tmp_path / "photos")
    command = ["train", "restore", "--data", data, "--out", tmp_path / "run", *TINY_RESTORE]
    assert cli(*command, "--steps", 2)[0] == 0
    shutil.rmtree(tmp_path / "photos")  # reading the data again would fail
    code, out, err = cli(*command, "--steps", 2)
    assert code == 0 and "has finished" in err and "resuming" not in err
    assert "done: 2 steps" in out and "step-00000002" in out


def test_fewer_steps_than_a_run_has_trained_are_refused_and_run_json_is_kept(cli, tmp_path):
    # they were ignored without a word, and run.json took the lower count
    data = make_image_folder(tmp_path / "photos")
    command = ["train", "restore", "--data", data, "--out", tmp_path / "run", *TINY_RESTORE]
    assert cli(*command, "--steps", 3)[0] == 0
    before = (tmp_path / "run" / "run.json").read_text()
    code, _, err = cli(*command, "--steps", 2)
    assert code == 2 and err.startswith("error: ") and "trained 3 steps already" in err
    assert (tmp_path / "run" / "run.json").read_text() == before


@pytest.mark.parametrize(
    ("family", "then", "named"),
    [
        ("restore", {"adv_weight": 1e-3}, "train.adv_weight=0.001 (run has 0.0)"),
        ("cyclegan", {"pool_size": 6}, "train.pool_size=6 (run has 4)"),
        ("pix2pix", {"ema_decay": 0.9}, "train.ema_decay=0.9 (run has 0.0)"),
    ],
)
def test_settings_that_change_the_trained_modules_are_refused_naming_them(
    family, then, named, tmp_path
):
    # a discriminator, a pool or an EMA copy the checkpoint does not hold ended in torch's
    # many-line state_dict error
    spec = tiny_spec(family, tmp_path / "run")
    Trainer(spec, tmp_path / "run", progress=False).fit()
    before = (tmp_path / "run" / "run.json").read_text()
    more, _ = prepare_run(None, None, tmp_path / "run", overrides={"train": {"steps": 3, **then}})
    with pytest.raises(ConfigError) as info:
        Trainer(more, tmp_path / "run", progress=False).fit()
    message = str(info.value)
    assert named in message and "--init" in message and "\n" not in message
    assert "train.steps" not in message
    assert (tmp_path / "run" / "run.json").read_text() == before


def test_ctrl_c_at_a_checkpoint_step_keeps_that_checkpoint_through_a_second_ctrl_c(
    tmp_path, monkeypatch
):
    # the stop wrote the step's checkpoint a second time, deleting the first: a second Ctrl-C
    # during that save lost it, though the message says the last checkpoint is intact
    import os
    import signal

    from pixelforge import runs
    from pixelforge.training import trainer as trainer_module
    from pixelforge.training.trainer import TrainingInterrupted

    real, saves = trainer_module.save_state, []

    def save_state(*args, **kwargs):
        saves.append(1)
        if len(saves) > 1:  # Ctrl-C pressed again while a checkpoint is being written
            raise KeyboardInterrupt
        real(*args, **kwargs)

    monkeypatch.setattr(trainer_module, "save_state", save_state)
    spec = tiny_spec("restore", tmp_path / "run", train={"steps": 6, "checkpoint_every": 2})

    def press_ctrl_c(trainer, step, values):
        if step == 2:
            os.kill(os.getpid(), signal.SIGINT)

    with pytest.raises(TrainingInterrupted):
        Trainer(spec, tmp_path / "run", progress=False, callbacks=[press_ctrl_c]).fit()
    assert [s for s, _ in runs.list_checkpoints(tmp_path / "run")] == [2]


def test_fast_style_resumed_with_another_style_size_is_refused(tmp_path):
    # the run went on towards the Gram matrices of the first size, without a word
    spec = tiny_spec("fast-style", tmp_path / "run")
    Trainer(spec, tmp_path / "run", progress=False).fit()
    same, _ = prepare_run(None, None, tmp_path / "run", overrides={"train": {"steps": 3}})
    Trainer(same, tmp_path / "run", progress=False).fit()  # unchanged: resumes
    smaller = {"train": {"steps": 4, "style_size": 16}}
    more, _ = prepare_run(None, None, tmp_path / "run", overrides=smaller)
    with pytest.raises(ConfigError, match=r"train\.style_size=16"):
        Trainer(more, tmp_path / "run", progress=False).fit()
    assert '"style_size": 32' in (tmp_path / "run" / "run.json").read_text()


def test_a_run_on_a_relative_folder_resumes_from_another_working_directory(
    cli, tmp_path, monkeypatch
):
    # run.json kept "folder:photos": `pixelforge train --out RUN` elsewhere found no folder, and
    # the same folder named by its full path was refused as other data
    make_image_folder(tmp_path / "photos")
    monkeypatch.chdir(tmp_path)
    command = ["train", "restore", "--data", "folder:photos/", *TINY_RESTORE]
    assert cli(*command, "--steps", 2, "--out", tmp_path / "run")[0] == 0
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    code, out, err = cli("train", "--out", tmp_path / "run", "--steps", 3, "--no-progress")
    assert code == 0 and "done: 3 steps" in out, err
    same = ["train", "restore", "--data", f"folder:{tmp_path / 'photos'}", *TINY_RESTORE]
    code, out, err = cli(*same, "--steps", 4, "--out", tmp_path / "run")
    assert code == 0 and "done: 4 steps" in out, err
