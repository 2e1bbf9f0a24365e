"""`pixelforge demo` writes its results and reuses its model; the shipped model is the real one."""

from __future__ import annotations

import torch

from pixelforge import demo, hub


def test_demo_writes_results_and_reuses_the_trained_model(tmp_path, monkeypatch, cli):
    tiny = {
        "model": {
            **demo.DEMO_SETTINGS["model"],
            "image_size": 16,
            "g_width": 8,
            "d_width": 8,
            "z_dim": 8,
        },
        "train": {
            **demo.DEMO_SETTINGS["train"],
            "steps": 3,
            "checkpoint_every": 3,
            "sample_every": 0,
            "tensorboard": False,
            "device": "cpu",
        },
    }
    monkeypatch.setattr(demo, "DEMO_SETTINGS", tiny)
    code, _, err = cli("demo", "--out", tmp_path / "d")
    assert code == 0, err
    names = {p.name for p in (tmp_path / "d").iterdir()}
    assert {f"class-{k}.png" for k in range(10)} | {
        "all-classes.png",
        "training-curve.png",
        "report.md",
    } <= names
    report = (tmp_path / "d" / "report.md").read_text()
    assert "class agreement" in report and "3 steps" in report
    ckpt = next((tmp_path / "d" / "run" / "checkpoints").iterdir()) / "state.json"
    before = ckpt.stat().st_mtime_ns
    code, _out, err = cli("demo", "--out", tmp_path / "d")
    assert code == 0, err
    assert "reusing the trained demo model" in err
    assert ckpt.stat().st_mtime_ns == before


def test_shipped_digits_model_draws_the_digit_it_is_asked_for():
    model = hub.load("dcgan-digits")
    clf, accuracy = demo.digits_classifier()
    labels = torch.arange(200) % 10
    agreement = demo.class_agreement(model.sample(200, seed=99, labels=labels), labels, clf)
    assert accuracy > 0.9
    assert agreement > 0.8, agreement
