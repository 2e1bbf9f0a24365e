"""`pixelforge eval`: sources, cached statistics, protocols, paired metrics and bad input."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from pixelforge.io.images import write_png
from pixelforge.io.stats import load_stats
from pixelforge.metrics import frechet_distance

SCRIPTS = Path(__file__).parent / "scripts"
DOMAIN = ["--extractor", "digits-cnn"]


def by_metric(out: str) -> dict[str, dict]:
    doc = json.loads(out)
    return {r["metric"]: r for r in (doc if isinstance(doc, list) else [doc])}


def test_fid_of_digits_splits_is_small_and_a_model_is_further(cli):
    code, out, err = cli("eval", "fid", "digits", "digits:test", *DOMAIN, "--json")
    assert code == 0, err
    assert out.startswith("[")  # stdout holds the results only: no progress bar's leftovers
    rows = by_metric(out)
    assert set(rows) == {"fid", "kid"}  # small sets: KID beside FID
    same_domain = rows["fid"]
    assert same_domain["n_real"] == 1437 and same_domain["n_fake"] == 360
    assert same_domain["protocol"]["extractor"] == "digits-cnn"
    assert any("not comparable" in w or "published" in w for w in same_domain["warnings"])
    assert any("N < 10,000" in w for w in same_domain["warnings"])
    code, out, _ = cli("eval", "fid", "digits", "dcgan-digits", "--n", "300", *DOMAIN, "--json")
    generated = by_metric(out)["fid"]
    assert code == 0 and generated["n_fake"] == 300
    assert 0 <= same_domain["value"] < generated["value"]


def test_cached_statistics_give_the_same_fid_and_are_pytorch_fid_readable(
    cli, tmp_path, monkeypatch
):
    ref = tmp_path / "ref.npz"
    code, _, err = cli("eval", "stats", "digits:test", "--out", ref, *DOMAIN)
    assert code == 0, err
    with np.load(ref) as f:  # what pytorch-fid reads
        mu, sigma = f["mu"][:], f["sigma"][:]
    assert mu.shape == (32,) and sigma.shape == (32, 32)
    stats, warnings = load_stats(ref)
    assert stats.n == 360 and stats.protocol["extractor"] == "digits-cnn" and not warnings

    code, out, _ = cli("eval", "fid", "shapes:test", "digits:test", *DOMAIN, "--json")
    direct = by_metric(out)["fid"]["value"]
    import pixelforge.tasks.evaluate as ev

    calls = []
    real_extract = ev.extract
    monkeypatch.setattr(
        ev,
        "extract",
        lambda source, *a, **k: calls.append(source.spec) or real_extract(source, *a, **k),
    )
    code, out, _ = cli("eval", "fid", "shapes:test", ref, *DOMAIN, "--json")
    assert code == 0 and calls == ["shapes:test"]  # nothing recomputed on the cached side
    assert json.loads(out)["value"] == pytest.approx(direct, rel=1e-9)


def test_foreign_stats_warn_and_different_protocols_are_refused(cli, tmp_path):
    ref = tmp_path / "ref.npz"
    cli("eval", "stats", "digits:test", "--out", ref, *DOMAIN)
    with np.load(ref) as f:
        np.savez(tmp_path / "foreign.npz", mu=f["mu"], sigma=f["sigma"])
    code, out, err = cli("eval", "fid", tmp_path / "foreign.npz", ref, *DOMAIN, "--json")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["value"] == pytest.approx(0.0, abs=1e-6)
    assert any("no protocol keys" in w for w in doc["warnings"])
    code, _, err = cli(
        "eval",
        "fid",
        ref,
        tmp_path / "foreign.npz",
        "--extractor",
        "digits-cnn",
        "--resize",
        "legacy",
    )
    assert code == 2 and "different protocols" in err
    np.savez(tmp_path / "broken.npz", mu=np.zeros(3))
    code, _, err = cli("eval", "fid", tmp_path / "broken.npz", ref, *DOMAIN)
    assert code == 2 and "sigma" in err


def test_stats_of_another_extractor_are_refused_before_any_weights_are_needed(
    cli, tmp_path, monkeypatch
):
    monkeypatch.setenv("PIXELFORGE_WEIGHTS", str(tmp_path / "weights"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    ref = tmp_path / "ref.npz"
    cli("eval", "stats", "digits:test", "--out", ref, *DOMAIN)
    # no --extractor: the default Inception is absent here, but the file says what to pass
    code, _, err = cli("eval", "fid", ref, "shapes:test")
    assert code == 2 and "pass --extractor digits-cnn" in err and "missing" not in err
    assert err.count("\n") == 1 and err.startswith("error: ")


def test_all_reports_fid_kid_precision_recall(cli):
    code, out, err = cli(
        "eval", "all", "digits:test", "dcgan-digits", "--n", "120", *DOMAIN, "--json"
    )
    assert code == 0, err
    rows = {r["metric"]: r for r in json.loads(out)}
    assert set(rows) == {"fid", "kid", "precision", "recall"}
    assert rows["kid"]["std"] is not None and 0 <= rows["precision"]["value"] <= 1


def test_psnr_and_ssim_pair_folders_by_name(cli, tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    rng = np.random.default_rng(0)
    for i in range(3):
        img = rng.random((3, 24, 24))
        write_png(a / f"{i}.png", torch.from_numpy(img))
        noisy = np.clip(img + rng.normal(0, 0.05, img.shape), 0, 1)
        write_png(b / f"{i}.png", torch.from_numpy(noisy))
    code, out, err = cli("eval", "psnr", a, b, "--json")
    assert code == 0, err
    assert 20 < json.loads(out)["value"] < 35
    with pytest.MonkeyPatch.context() as mp:  # the second process of torchrun reports nothing
        mp.setenv("RANK", "1")
        code, out, err = cli("eval", "psnr", a, b, "--json")
        assert code == 0 and out == "", err
    code, out, _ = cli("eval", "ssim", a, a, "--json", "--y-channel")
    assert code == 0 and json.loads(out)["value"] == pytest.approx(1.0)
    (b / "2.png").unlink()
    code, _, err = cli("eval", "psnr", a, b)
    assert code == 2 and "no partner" in err
    write_png(b / "2.png", torch.rand(3, 20, 24))
    code, _, err = cli("eval", "ssim", a, b)
    assert code == 2 and "same size" in err


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["fid", "EMPTY", "digits", *DOMAIN], "no images"),
        (["fid", "digits:test", "dcgan-digits", *DOMAIN], "needs --n"),
        (["fid", "digits:test", "nonsense-source", *DOMAIN], "not a folder"),
        (["fid", "digits", "digits:test", "--extractor", "incepton"], "Did you mean"),
        (["fid", "ONE", "digits", *DOMAIN], "at least 2"),
    ],
)
def test_bad_input_is_one_clear_line(args, needle, cli, tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "one").mkdir()
    write_png(tmp_path / "one" / "x.png", torch.rand(1, 16, 16))
    args = [
        str(tmp_path / "empty") if a == "EMPTY" else str(tmp_path / "one") if a == "ONE" else a
        for a in args
    ]
    code, out, err = cli("eval", *args)
    assert code == 2, out + err
    assert needle in err and "Traceback" not in err


@pytest.mark.slow
def test_two_processes_give_the_statistics_of_one(tmp_path):
    one, two = tmp_path / "one.safetensors", tmp_path / "two.safetensors"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    torchrun = shutil.which("torchrun", path=str(Path(sys.executable).parent))
    script = str(SCRIPTS / "eval_distributed.py")
    for args, out in (
        ([sys.executable, script], one),
        ([torchrun, "--standalone", "--nproc_per_node=2", script], two),
    ):
        proc = subprocess.run(
            [*args, str(out)], capture_output=True, text=True, env=env, timeout=300
        )
        assert proc.returncode == 0, proc.stderr[-3000:]
    from safetensors.torch import load_file

    a, b = load_file(str(one)), load_file(str(two))
    assert torch.equal(a["features"], b["features"])  # same images, same order
    assert torch.allclose(a["mean"], b["mean"], rtol=1e-12, atol=1e-12)
    assert torch.allclose(a["m2"], b["m2"], rtol=1e-10, atol=1e-10)
    fid = frechet_distance(
        a["mean"].numpy(), a["m2"].numpy() / 149, b["mean"].numpy(), b["m2"].numpy() / 149
    )
    assert abs(fid) < 1e-8


@pytest.mark.slow
def test_eval_under_torchrun_shares_the_work_and_reports_once(cli, tmp_path):
    args = ["eval", "fid", "digits:test", "dcgan-digits", "--n", "40", *DOMAIN, "--json"]
    code, out, err = cli(*args)
    assert code == 0, err
    one = by_metric(out)
    torchrun = shutil.which("torchrun", path=str(Path(sys.executable).parent))
    proc = subprocess.run(
        # `--` keeps torchrun's own parser off `--n`
        [torchrun, "--standalone", "--nproc_per_node=2", "-m", "--", "pixelforge", *args],
        capture_output=True,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    two = by_metric(proc.stdout)  # one report: rank 0's
    assert two["fid"]["n_fake"] == 40
    assert two["fid"]["value"] == pytest.approx(one["fid"]["value"], rel=1e-9)


def test_trainer_logs_fid_on_a_fixed_seed_set(tmp_path):
    from pixelforge import runs
    from pixelforge.training.logging import read_metrics
    from pixelforge.training.trainer import Trainer

    from conftest import tiny_spec

    spec = tiny_spec(
        "dcgan",
        tmp_path,
        model={"image_size": 16},
        train={"steps": 4, "eval_every": 2, "eval_samples": 40},
    )
    trainer = Trainer(spec, tmp_path, progress=False)
    trainer.fit()
    fids = [r for r in read_metrics(tmp_path) if "fid" in r]
    assert [r["step"] for r in fids] == [2, 4] and all(r["fid"] > 0 for r in fids)
    assert (tmp_path / "eval" / "ref-digits-cnn.npz").is_file()
    assert trainer.evaluate()["fid"] == fids[-1]["fid"]  # fixed seeds: the same number again
    assert runs.latest_checkpoint(tmp_path)[0] == 4


def test_fid_during_training_without_its_weights_stops_before_the_first_step(
    cli, tmp_path, monkeypatch
):
    monkeypatch.setenv("PIXELFORGE_WEIGHTS", str(tmp_path / "weights"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    run = tmp_path / "run"
    # faces has no domain extractor: the FID logged during training needs the Inception file
    code, _, err = cli(
        "train", "dcgan", "--data", "faces", "--out", run, "--steps", "4", "--no-progress",
        "--set", "model.image_size=16", "--set", "train.eval_every=2",
        "--set", "train.eval_samples=8", "--set", "train.batch_size=4",
        "--set", "train.log_every=1",
    )  # fmt: skip
    last = err.strip().splitlines()[-1]
    assert code == 2 and last.startswith("error: train.eval_every=2 logs FID with inception")
    assert "train.eval_every=0" in last and "--extractor" not in last  # not an option of train
    metrics = run / "metrics.jsonl"
    assert not metrics.is_file() or not metrics.read_text().strip()  # said before any step


def test_lpips_without_its_weights_says_what_is_missing(cli, tmp_path, monkeypatch):
    monkeypatch.setenv("PIXELFORGE_WEIGHTS", str(tmp_path / "weights"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    for side in ("a", "b"):
        write_png(tmp_path / side / "x.png", torch.rand(3, 32, 32))
    code, _, err = cli("eval", "lpips", tmp_path / "a", tmp_path / "b")
    assert code == 2 and "vgg16" in err and "lpips-vgg" in err and "weights fetch" in err
