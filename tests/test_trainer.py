"""The trainer: exact resume, non-finite handling, Ctrl-C, logs, several processes."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from pixelforge import runs
from pixelforge.errors import ConfigError, TrainingError
from pixelforge.hub import read_safetensors
from pixelforge.training.run import prepare_run, read_run, write_run
from pixelforge.training.trainer import Trainer, TrainingInterrupted

from conftest import tiny_spec

SCRIPTS = Path(__file__).parent / "scripts"

# Shuffling, augmentation, EMA, R1 and a learning-rate schedule all on.
EVERYTHING_ON = {
    "model": {"num_classes": None, "g_norm": "batch"},
    "train": {
        "steps": 8,
        "checkpoint_every": 3,
        "r1_gamma": 1.0,
        "ema_decay": 0.9,
        "ema_rampup": True,
        "lr_schedule": "cosine",
        "warmup_steps": 2,
        "keep_checkpoints": 10,
    },
    "data": {"hflip": True, "translate": 0.25},
}


def final_state(run_dir: Path) -> dict[str, torch.Tensor]:
    _, folder = runs.latest_checkpoint(run_dir)
    tensors = read_safetensors(folder / runs.STATE_TENSORS)
    tensors.update(
        {
            f"export/{k}": v
            for k, v in read_safetensors(folder / runs.MODEL_SUBDIR / "model.safetensors").items()
        }
    )
    return tensors


def test_run_killed_between_checkpoints_resumes_bit_identical(tmp_path):
    ref_dir, killed_dir = tmp_path / "ref", tmp_path / "killed"
    spec = tiny_spec("dcgan", ref_dir, **EVERYTHING_ON)
    Trainer(spec, ref_dir, progress=False).fit()

    write_run(killed_dir, spec)
    proc = subprocess.run(
        [sys.executable, str(SCRIPTS / "train_until_killed.py"), str(killed_dir), "7"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    assert [s for s, _ in runs.list_checkpoints(killed_dir)] == [
        3,
        6,
    ]  # step 7 was lost with the process

    resumed = Trainer(read_run(killed_dir), killed_dir, progress=False)
    resumed.fit()
    a, b = final_state(ref_dir), final_state(killed_dir)
    assert (
        a.keys() == b.keys()
        and any(k.startswith("optim/") for k in a)
        and any("G_ema" in k for k in a)
    )
    for key in a:
        assert torch.equal(a[key], b[key]), key
    rows = [json.loads(line) for line in (killed_dir / runs.METRICS).read_text().splitlines()]
    assert [r["step"] for r in rows] == sorted(
        {r["step"] for r in rows}
    )  # no duplicated steps after resume


class NaNAfter:
    """Wraps a dataset so that the images of chosen steps are NaN."""

    def __init__(self, dataset, bad_calls):
        self.dataset, self.bad_calls, self.calls = dataset, set(bad_calls), 0
        self.info = dataset.info

    def __len__(self):
        return len(self.dataset)

    def get_batch(self, idx):
        batch = self.dataset.get_batch(idx)
        if self.calls in self.bad_calls or "all" in self.bad_calls:
            batch["image"] = torch.full_like(batch["image"], float("nan"))
        self.calls += 1
        return batch


def test_nonfinite_steps_are_skipped_and_counted(tmp_path):
    from pixelforge.data import open_dataset

    spec = tiny_spec("dcgan", tmp_path, train={"steps": 6, "checkpoint_every": 2})
    ds = open_dataset("digits", image_size=8, channels=1)
    trainer = Trainer(spec, tmp_path, progress=False, dataset=NaNAfter(ds, {1, 2}))
    trainer.fit()
    assert trainer.nonfinite_total == 2 and trainer.step == 6
    assert all(
        torch.isfinite(v).all() for v in final_state(tmp_path).values() if v.is_floating_point()
    )


def test_repeated_nonfinite_steps_stop_the_run_without_a_bad_checkpoint(tmp_path):
    from pixelforge.data import open_dataset

    spec = tiny_spec(
        "dcgan", tmp_path, train={"steps": 20, "checkpoint_every": 1, "max_nonfinite": 3}
    )
    ds = open_dataset("digits", image_size=8, channels=1)
    trainer = Trainer(spec, tmp_path, progress=False, dataset=NaNAfter(ds, {"all"}))
    with pytest.raises(TrainingError, match="3 steps in a row"):
        trainer.fit()
    for _, folder in runs.list_checkpoints(tmp_path):
        tensors = read_safetensors(folder / runs.STATE_TENSORS)
        assert all(torch.isfinite(v).all() for v in tensors.values() if v.is_floating_point())


def test_ctrl_c_writes_a_checkpoint_and_the_run_resumes(tmp_path):
    spec = tiny_spec("dcgan", tmp_path, train={"steps": 10, "checkpoint_every": 100})

    def press_ctrl_c(trainer, step, values):
        if step == 4:
            os.kill(os.getpid(), signal.SIGINT)

    with pytest.raises(TrainingInterrupted) as info:
        Trainer(spec, tmp_path, progress=False, callbacks=[press_ctrl_c]).fit()
    assert info.value.exit_code == 130
    assert [s for s, _ in runs.list_checkpoints(tmp_path)] == [4]
    trainer = Trainer(read_run(tmp_path), tmp_path, progress=False)
    assert trainer._resume() and trainer.step == 4


def test_resume_refuses_a_changed_architecture_but_allows_more_steps(tmp_path):
    spec = tiny_spec("dcgan", tmp_path)
    Trainer(spec, tmp_path, progress=False).fit()
    with pytest.raises(ConfigError, match=r"model.image_size=16 \(run has 8\)"):
        prepare_run(None, None, tmp_path, overrides={"model": {"image_size": 16}})
    with pytest.raises(ConfigError, match="trained on 'digits'"):
        prepare_run("dcgan", "faces", tmp_path)
    spec2, resumed = prepare_run(None, None, tmp_path, overrides={"train": {"steps": 4}})
    assert resumed and spec2.train.steps == 4 and spec2.model == spec.model


def test_resume_reads_null_as_the_value_it_means_for_the_data(tmp_path):
    # num_classes=null on labelled digits asks for a class-conditional model: an unconditional
    # run given it is refused, not silently resumed as unconditional
    spec = tiny_spec("dcgan", tmp_path, model={"num_classes": 0})
    write_run(tmp_path, spec)
    with pytest.raises(ConfigError, match=r"model.num_classes=10 \(run has 0\)"):
        prepare_run("dcgan", "digits", tmp_path, overrides={"model": {"num_classes": None}})
    # null that means what the run has (channels of grey digits) is no conflict
    spec2, resumed = prepare_run(None, None, tmp_path, overrides={"model": {"channels": None}})
    assert resumed and spec2.model == spec.model


def test_logs_samples_tensorboard_and_checkpoint_pruning(tmp_path):
    spec = tiny_spec(
        "dcgan",
        tmp_path,
        train={
            "steps": 6,
            "checkpoint_every": 1,
            "keep_checkpoints": 2,
            "log_every": 2,
            "sample_every": 3,
            "tensorboard": True,
        },
    )
    Trainer(spec, tmp_path, progress=False).fit()
    assert [s for s, _ in runs.list_checkpoints(tmp_path)] == [5, 6]
    rows = [json.loads(line) for line in (tmp_path / runs.METRICS).read_text().splitlines()]
    assert [r["step"] for r in rows] == [2, 4, 6]
    assert {"loss_D", "loss_G", "lr", "images_per_s"} <= set(rows[0])
    assert sorted(p.name for p in (tmp_path / runs.SAMPLES).iterdir()) == [
        "step-00000000.png",
        "step-00000003.png",
        "step-00000006.png",
    ]
    assert list((tmp_path / runs.TENSORBOARD).glob("events.out.tfevents.*"))


def test_bf16_autocast_keeps_fp32_weights(tmp_path):
    spec = tiny_spec("dcgan", tmp_path, train={"precision": "bf16", "steps": 2})
    trainer = Trainer(spec, tmp_path, progress=False)
    trainer.fit()
    for module in trainer.task.modules.values():
        for p in module.parameters():
            assert p.dtype == torch.float32 and torch.isfinite(p).all()


@pytest.mark.slow
def test_two_processes_match_one_process_on_the_same_global_batch(tmp_path):
    settings = {
        "model": {"g_norm": "none", "d_norm": "none", "num_classes": None},
        "train": {
            "steps": 3,
            "batch_size": 8,
            "checkpoint_every": 3,
            "r1_gamma": 0.5,
            "ema_decay": 0.5,
        },
        "data": {"hflip": True, "translate": 0.25},
    }
    one, two = tmp_path / "one", tmp_path / "two"
    spec = tiny_spec("dcgan", one, **settings)
    write_run(one, spec)
    write_run(two, spec)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    torchrun = shutil.which("torchrun", path=str(Path(sys.executable).parent))
    script = str(SCRIPTS / "train_distributed.py")
    for args, run_dir in (
        ([sys.executable, script], one),
        ([torchrun, "--standalone", "--nproc_per_node=2", script], two),
    ):
        proc = subprocess.run(
            [*args, str(run_dir)], capture_output=True, text=True, env=env, timeout=300
        )
        assert proc.returncode == 0, proc.stderr[-3000:]
    ref = read_safetensors(one / "rank0.safetensors")
    r0, r1 = (
        read_safetensors(two / "rank0.safetensors"),
        read_safetensors(two / "rank1.safetensors"),
    )
    for key in ref:
        assert torch.equal(r0[key], r1[key]), f"replicas disagree on {key}"
        assert torch.allclose(ref[key], r0[key], atol=1e-5, rtol=0), key
