"""The shipped models' cards: every figure they show is the measurement in benchmarks/results."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from pixelforge import hub

RESULTS = Path(__file__).resolve().parents[1] / "benchmarks" / "results"


def _leaves(doc: Any, path: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], Any]]:
    if isinstance(doc, dict):
        return [leaf for key, value in doc.items() for leaf in _leaves(value, (*path, key))]
    return [(path, doc)]


def _decimals(value: float) -> int:
    text = repr(value)
    return len(text.split(".")[1]) if "." in text else 0


@pytest.mark.parametrize("name", sorted(hub.shipped_models()))
def test_card_scores_are_their_result_files_to_the_digits_shown(name):
    card = hub.read_model_meta(hub.shipped_models()[name])["card"]
    for key, scores in card.get("scores", {}).items():
        result = RESULTS / f"{key}.json"  # a card's scores are named after their result file
        assert result.is_file(), f"{name}: no {result.name} behind its '{key}' scores"
        measured = json.loads(result.read_text())["result"]
        for path, shown in _leaves(scores):
            value = measured
            for part in path:
                value = value[part]
            if isinstance(shown, float):
                assert round(value, _decimals(shown)) == shown, (name, key, path, value, shown)
            else:
                assert value == shown, (name, key, path, value, shown)


def test_info_of_a_shipped_model_cuts_no_key_and_no_value_short(cli, monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")  # a pipe or a narrow terminal
    code, out, err = cli("info", "sr-x4-real")
    assert code == 0, err
    # an ellipsis left the card's score rows differing only in their cut-off ends
    assert "…" not in out
    sha = hub.read_model_meta(hub.shipped_models()["sr-x4-real"])["weights"]["sha256"]
    assert sha in "".join(out.split())
    for key in ("card.data", "card.recipe", "config.task", "config.scale", "family"):
        assert key in out


def test_info_of_a_run_before_its_first_checkpoint_shows_what_it_trains(cli, tmp_path):
    from pixelforge.training.run import prepare_run, write_run

    run = tmp_path / "run"  # as `pixelforge train` leaves it until its first checkpoint
    spec, _ = prepare_run("dcgan", "digits", run, overrides={"model": {"g_width": 8}})
    write_run(run, spec)
    code, out, err = cli("info", run, "--json")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["latest_step"] is None and doc["family"] == "dcgan" and doc["data"] == "digits"
    assert doc["config"]["model"]["g_width"] == 8


@pytest.mark.parametrize(
    "content",
    [
        b"[]",
        b'{"format_version": 1}',
        b'{"format_version": 1, "family": 3, "config": {}, "data": "digits"}',
        b"\xff\xfe{",
    ],
)
def test_a_damaged_run_json_is_one_error_line_naming_it(cli, tmp_path, content):
    run = tmp_path / "run"
    run.mkdir()
    (run / "run.json").write_bytes(content)
    for args in (("info", run), ("train", "--out", run, "--steps", "2")):
        code, _, err = cli(*args)
        assert code == 2 and err.startswith("error: ") and "run.json" in err, (args, err)
        assert len(err.strip().splitlines()) == 1


def test_info_of_a_restored_png_names_the_model_that_made_it_and_its_training_data(
    cli, tmp_path, monkeypatch
):
    import numpy as np
    from PIL import Image

    monkeypatch.chdir(tmp_path)  # `--out denoise/` makes a folder named as the shipped model
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (24, 24, 3), dtype=np.uint8)).save("noisy.png")
    code, _, err = cli("denoise", "noisy.png", "--out", "denoise/", "--threads", "1")
    assert code == 0, err
    code, out, err = cli("info", "denoise/noisy.png", "--json")
    assert code == 0, err
    made_by = json.loads(out)["made_by"]
    assert made_by["model"] == "denoise" and made_by["family"] == "restore"
    assert made_by["config"]["task"] == "denoise" and "CSun_Hays80" in made_by["data"]


@pytest.mark.parametrize(
    "damage",
    [{"weights": "model.safetensors"}, {"family": 3}, {"weights": {"file": 5}}],
)
def test_a_damaged_model_config_is_one_error_line(cli, tmp_path, damage):
    from conftest import small_restore_model

    model_dir = hub.save_model(small_restore_model(), tmp_path / "model")
    meta = json.loads((model_dir / "config.json").read_text())
    (model_dir / "config.json").write_text(json.dumps(meta | damage))
    with pytest.raises(hub.ModelLoadError, match=r"config\.json is damaged"):
        hub.load(model_dir)
    code, _, err = cli("info", model_dir)
    assert code == 2 and err.startswith("error: ") and len(err.strip().splitlines()) == 1


def test_a_model_of_a_newer_pixelforge_says_to_upgrade(tmp_path):
    from conftest import small_restore_model

    model_dir = hub.save_model(small_restore_model(), tmp_path / "model")
    meta = json.loads((model_dir / "config.json").read_text())
    meta["pixelforge_version"] = "99.1.0"  # its format unchanged, a family or key added since
    meta["config"]["new_option"] = 1
    (model_dir / "config.json").write_text(json.dumps(meta))
    with pytest.raises(hub.ModelLoadError, match=r"written by pixelforge 99\.1\.0, newer than"):
        hub.load(model_dir)


def test_info_of_a_shipped_name_hidden_by_a_folder_without_a_model(cli, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "sr-x4").mkdir()  # as `pixelforge upscale photos/ --out sr-x4/` leaves
    code, out, err = cli("info", "sr-x4", "--json")
    assert code == 0, err
    assert json.loads(out)["config"]["scale"] == 4
