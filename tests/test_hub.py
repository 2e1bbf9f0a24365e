"""Model dirs describe themselves, load with no flags, and never unpickle anything by accident."""

from __future__ import annotations

import json
import os
import pickle
import shutil

import pytest
import torch

from pixelforge import hub
from pixelforge.errors import ModelLoadError
from pixelforge.models.dcgan import DCGAN, DCGANConfig

from conftest import FIXTURES


def tiny_model(num_classes: int = 0) -> DCGAN:
    torch.manual_seed(0)
    return DCGAN(
        DCGANConfig(
            image_size=8, channels=1, num_classes=num_classes, z_dim=8, g_width=8, d_width=8
        )
    )


class Evil:
    """Unpickling this would create a marker file: proof that code ran."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.mkdir, (self.marker,))


def test_save_load_gives_identical_samples_with_no_flags(tmp_path):
    model = tiny_model(num_classes=3)
    hub.save_model(model, tmp_path / "m")
    meta = json.loads((tmp_path / "m" / "config.json").read_text())
    assert meta["family"] == "dcgan" and meta["format_version"] == hub.FORMAT_VERSION
    assert meta["weights"]["sha256"] == hub.sha256_file(tmp_path / "m" / "model.safetensors")
    loaded = hub.load(tmp_path / "m")
    assert loaded.config == model.config
    assert torch.equal(model.sample(6, seed=3), loaded.sample(6, seed=3))


def test_pickle_renamed_safetensors_is_refused_and_not_executed(tmp_path):
    model = tiny_model()
    hub.save_model(model, tmp_path / "m")
    marker = tmp_path / "code-ran"
    for payload in (pickle.dumps({"w": Evil(str(marker))}), None):
        target = tmp_path / "m" / "model.safetensors"
        if payload is None:  # the zip container torch.save writes
            torch.save({"w": Evil(str(marker))}, target)
        else:
            target.write_bytes(payload)
        with pytest.raises(ModelLoadError, match="not safetensors"):
            hub.load(tmp_path / "m")
        assert not marker.exists()


def test_tampered_or_missing_weights_are_reported(tmp_path):
    hub.save_model(tiny_model(), tmp_path / "m")
    weights = tmp_path / "m" / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(ModelLoadError, match="SHA-256"):
        hub.load(tmp_path / "m")
    weights.unlink()
    with pytest.raises(ModelLoadError, match="not found"):
        hub.load(tmp_path / "m")


def test_old_format_is_migrated_and_newer_format_refused(tmp_path):
    model = hub.load(FIXTURES / "model_v0")
    assert model.config.image_size == 8
    assert model.sample(2, seed=0).shape == (2, 1, 8, 8)
    newer = tmp_path / "newer"
    shutil.copytree(FIXTURES / "model_v0", newer)
    meta = json.loads((newer / "config.json").read_text())
    meta["format_version"] = 99
    (newer / "config.json").write_text(json.dumps(meta))
    with pytest.raises(ModelLoadError, match="Upgrade pixelforge"):
        hub.load(newer)


def test_pickle_import_needs_opt_in_and_pinned_hash_is_checked_first(tmp_path):
    state = {"w": torch.arange(4.0)}
    src = tmp_path / "weights.pth"
    torch.save(state, src)
    with pytest.raises(ModelLoadError, match="--allow-pickle"):
        hub.import_pickled(src, tmp_path / "out.safetensors")
    hub.import_pickled(src, tmp_path / "out.safetensors", allow_pickle=True)
    assert torch.equal(hub.read_safetensors(tmp_path / "out.safetensors")["w"], state["w"])

    marker = tmp_path / "code-ran"
    evil = tmp_path / "evil.pth"
    torch.save({"w": Evil(str(marker))}, evil)
    with pytest.raises(ModelLoadError, match="not the expected file"):
        hub.read_pickled_weights(evil, pinned_sha256="0" * 64)
    with pytest.raises(ModelLoadError, match="plain state dict"):
        hub.read_pickled_weights(evil, allow_pickle=True)  # weights_only refuses the object
    assert not marker.exists()


def test_model_argument_resolution(tmp_path, monkeypatch):
    hub.save_model(tiny_model(), tmp_path / "m")
    assert hub.resolve_model_dir(tmp_path / "m") == tmp_path / "m"
    with pytest.raises(ModelLoadError, match="no such model"):
        hub.resolve_model_dir("no-such-model-name")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelLoadError, match="neither a model dir"):
        hub.resolve_model_dir(tmp_path / "empty")
    # An existing path wins over a shipped name.
    monkeypatch.setattr(hub, "shipped_models", lambda: {"m": FIXTURES / "model_v0"})
    monkeypatch.chdir(tmp_path)
    assert hub.resolve_model_dir("m") == hub.Path("m")


@pytest.mark.parametrize("header_len", [640, 896, 1152, 1408])
def test_safetensors_whose_header_length_looks_like_a_pickle_protocol_still_loads(
    header_len, tmp_path
):
    # These header lengths start the file with 80 02..80 05, a pickle's PROTO opcode.
    from safetensors.torch import save_file

    for pad in range(1500):
        path = tmp_path / "w.safetensors"
        save_file({"w": torch.ones(2)}, str(path), metadata={"pad": "x" * pad})
        head = path.read_bytes()[:8]
        if int.from_bytes(head, "little") == header_len:
            break
    else:
        raise AssertionError(f"no padding gave a {header_len}-byte header")
    assert path.read_bytes()[:2] == bytes([0x80, header_len // 256])
    assert hub.sniff_format(path.read_bytes()[:16]) == "safetensors"
    assert torch.equal(hub.read_safetensors(path)["w"], torch.ones(2))
    pickle_head = pickle.dumps({"w": 1}, protocol=header_len // 256)[:16]
    assert hub.sniff_format(pickle_head) == "pickle"
