"""Where weights are found, how pickles are checked before reading, conversion, fetch, import."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import pickle
from pathlib import Path

import pytest
import torch

from pixelforge.errors import PixelforgeError
from pixelforge.features import weights as W
from pixelforge.features.weights import (
    KNOWN_WEIGHTS,
    WeightsDownloadError,
    WeightsHashError,
    WeightsNotFoundError,
    fetch,
    find_weights,
    import_weights,
    load_weights,
)
from pixelforge.hub import write_safetensors

INCEPTION_FILES = KNOWN_WEIGHTS["inception"].files  # pytorch-fid's and torch-fidelity's names


@pytest.fixture
def dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    """An isolated store ($PIXELFORGE_WEIGHTS) and torch hub cache ($TORCH_HOME)."""
    store = tmp_path / "store"
    torch_home = tmp_path / "torch"
    monkeypatch.setenv("PIXELFORGE_WEIGHTS", str(store))
    monkeypatch.setenv("TORCH_HOME", str(torch_home))
    monkeypatch.setattr(W, "package_dir", lambda name: tmp_path / f"{name}-pkg")
    hub = torch_home / "hub" / "checkpoints"
    hub.mkdir(parents=True)
    return {"store": store, "hub": hub, "tmp": tmp_path}


def tiny_state(seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {"a.weight": torch.randn(3, 4, generator=g), "a.bias": torch.randn(3, generator=g)}


def save_pickle(path: Path, state: dict[str, torch.Tensor]) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(state, path)
    return hashlib.sha256(path.read_bytes()).hexdigest()


def pin(monkeypatch: pytest.MonkeyPatch, name: str, sha: str, **changes: object) -> None:
    """Pretend the known file ``name`` has SHA-256 ``sha`` (the real files are not here)."""
    entry = dataclasses.replace(KNOWN_WEIGHTS[name], sha256=sha, **changes)  # type: ignore[arg-type]
    monkeypatch.setitem(KNOWN_WEIGHTS, name, entry)


class Payload:
    """A pickle that runs code when unpickled: it writes a marker file."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (exec, (f"open({str(self.marker)!r}, 'w').write('pwned')",))


# --------------------------------------------------------------------------- the table


def test_table_hashes_agree_with_the_torch_hub_name_prefix() -> None:
    for entry in KNOWN_WEIGHTS.values():
        assert len(entry.sha256) == 64 and int(entry.sha256, 16) >= 0
        if entry.hash_prefix is not None:
            assert entry.sha256.startswith(entry.hash_prefix), entry.name
        for file in entry.files[1:]:  # every alternative name embeds the same prefix
            if entry.hash_prefix is not None and "-" in file:
                assert entry.hash_prefix in file
    assert KNOWN_WEIGHTS["inception"].hash_prefix == "6726825d"
    assert KNOWN_WEIGHTS["vgg16"].hash_prefix == "397923af"
    assert KNOWN_WEIGHTS["vgg19"].hash_prefix == "dcbb9e9d"


# --------------------------------------------------------------------------- resolution order


def test_resolution_order(dirs: dict[str, Path]) -> None:
    hub, store = dirs["hub"], dirs["store"]
    assert find_weights("inception") is None
    # torch-fidelity's file name in the torch hub cache is found ...
    (hub / INCEPTION_FILES[1]).write_bytes(b"x")
    assert find_weights("inception") == hub / INCEPTION_FILES[1]
    # ... pytorch-fid's name is preferred in the same folder ...
    (hub / INCEPTION_FILES[0]).write_bytes(b"x")
    assert find_weights("inception") == hub / INCEPTION_FILES[0]
    # ... a converted safetensors beside them wins over both ...
    (hub / KNOWN_WEIGHTS["inception"].converted_name).write_bytes(b"x")
    assert find_weights("inception") == hub / KNOWN_WEIGHTS["inception"].converted_name
    # ... $PIXELFORGE_WEIGHTS wins over the torch hub cache ...
    store.mkdir()
    (store / INCEPTION_FILES[0]).write_bytes(b"x")
    assert find_weights("inception") == store / INCEPTION_FILES[0]
    # ... and an explicit path wins over everything.
    explicit = dirs["tmp"] / "mine.safetensors"
    explicit.write_bytes(b"x")
    assert find_weights("inception", explicit) == explicit
    # The LPIPS layers are also looked for inside an installed lpips package, after the others.
    lp = dirs["tmp"] / "lpips-pkg" / "weights" / "v0.1"
    lp.mkdir(parents=True)
    (lp / "vgg.pth").write_bytes(b"x")
    (hub / "vgg.pth").write_bytes(b"x")  # a generic name elsewhere is not taken for it
    assert find_weights("lpips-vgg") == lp / "vgg.pth"
    (hub / "lpips-v0.1-vgg.pth").write_bytes(b"x")
    assert find_weights("lpips-vgg") == hub / "lpips-v0.1-vgg.pth"


def test_missing_weights_error_says_what_where_and_how(dirs: dict[str, Path]) -> None:
    with pytest.raises(WeightsNotFoundError) as exc:
        load_weights("inception")
    msg = str(exc.value)
    assert isinstance(exc.value, PixelforgeError)
    for part in (
        INCEPTION_FILES[0],
        INCEPTION_FILES[1],
        str(dirs["store"]),
        str(dirs["hub"]),
        "pixelforge weights fetch inception",
        "$PIXELFORGE_WEIGHTS",
    ):
        assert part in msg
    with pytest.raises(WeightsNotFoundError, match=r"not found: .*nope\.pth"):
        load_weights("inception", dirs["tmp"] / "nope.pth")


# --------------------------------------------------------------------------- hash before unpickling


@pytest.mark.parametrize("fmt", ["raw-pickle", "torch-zip"])
def test_wrong_bytes_under_the_right_name_are_refused_before_unpickling(
    dirs: dict[str, Path], monkeypatch: pytest.MonkeyPatch, fmt: str
) -> None:
    marker = dirs["tmp"] / "executed"
    bad = dirs["hub"] / INCEPTION_FILES[0]
    if fmt == "raw-pickle":
        bad.write_bytes(pickle.dumps({"fc.weight": Payload(marker)}, protocol=2))
    else:
        torch.save({"fc.weight": Payload(marker)}, bad)
    # The payload is live: unpickling it without any check would run it.
    control = dirs["tmp"] / "control"
    pickle.loads(pickle.dumps(Payload(control)))
    assert control.read_text() == "pwned"

    def no_unpickling(*args: object, **kwargs: object) -> None:
        raise AssertionError("torch.load was called on a file whose hash does not match")

    monkeypatch.setattr(torch, "load", no_unpickling)
    with pytest.raises(WeightsHashError) as exc:
        load_weights("inception")
    assert "pixelforge weights fetch inception" in str(exc.value)
    assert KNOWN_WEIGHTS["inception"].sha256[:16] in str(exc.value)
    assert not marker.exists()
    assert not (dirs["store"] / KNOWN_WEIGHTS["inception"].converted_name).exists()


def test_even_a_pinned_file_is_read_with_weights_only(
    dirs: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    # If a pinned hash were ever wrong, weights_only=True still refuses code in the pickle.
    marker = dirs["tmp"] / "executed"
    bad = dirs["hub"] / INCEPTION_FILES[0]
    torch.save({"fc.weight": Payload(marker)}, bad)
    pin(monkeypatch, "inception", hashlib.sha256(bad.read_bytes()).hexdigest())
    with pytest.raises(WeightsHashError, match="plain state dict"):
        load_weights("inception")
    assert not marker.exists()


# --------------------------------------------------------------------------- conversion


def test_a_pickle_is_converted_once_and_later_loads_read_safetensors(
    dirs: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    state = tiny_state()
    pin(monkeypatch, "inception", save_pickle(dirs["hub"] / INCEPTION_FILES[1], state))
    first = load_weights("inception")
    converted = dirs["store"] / KNOWN_WEIGHTS["inception"].converted_name
    assert first.path == converted and converted.is_file()
    assert first.verified and first.sha256 == KNOWN_WEIGHTS["inception"].sha256
    assert all(torch.equal(first.tensors[k], v) for k, v in state.items())

    def no_unpickling(*args: object, **kwargs: object) -> None:
        raise AssertionError("the pickle was read again")

    monkeypatch.setattr(torch, "load", no_unpickling)
    mtime = converted.stat().st_mtime_ns
    second = load_weights("inception")
    assert second.path == converted and second.verified
    assert second.sha256 == KNOWN_WEIGHTS["inception"].sha256
    assert all(torch.equal(second.tensors[k], v) for k, v in state.items())
    assert converted.stat().st_mtime_ns == mtime  # not written again


def test_vgg_conversion_keeps_only_the_features(
    dirs: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    state = {"features.0.weight": torch.ones(2), "classifier.0.weight": torch.ones(3)}
    pin(monkeypatch, "vgg16", save_pickle(dirs["hub"] / "vgg16-397923af.pth", state))
    loaded = load_weights("vgg16")
    assert set(loaded.tensors) == {"features.0.weight"}


def test_a_tampered_converted_file_is_refused(
    dirs: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    state = tiny_state()
    pin(monkeypatch, "inception", save_pickle(dirs["hub"] / INCEPTION_FILES[0], state))
    converted = load_weights("inception").path
    meta = W._safetensors_metadata(converted)
    write_safetensors(converted, {**state, "a.bias": torch.zeros(3)}, metadata=meta)
    with pytest.raises(WeightsHashError, match="modified or is damaged"):
        load_weights("inception")


def test_an_own_safetensors_file_is_used_but_not_verified(
    dirs: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    own = dirs["tmp"] / "own.safetensors"
    digest = write_safetensors(own, tiny_state(1))
    loaded = load_weights("inception", own)
    assert not loaded.verified and loaded.sha256 == digest
    # An explicit pickle that is not the pinned file is refused (convert it yourself).
    other = dirs["tmp"] / "other.pth"
    save_pickle(other, tiny_state(2))
    with pytest.raises(WeightsHashError, match="--allow-pickle"):
        load_weights("inception", other)


def test_unwritable_store_warns_and_uses_the_tensors(
    dirs: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    pin(monkeypatch, "inception", save_pickle(dirs["hub"] / INCEPTION_FILES[0], tiny_state()))
    blocker = dirs["tmp"] / "file-not-dir"
    blocker.write_bytes(b"")
    monkeypatch.setenv("PIXELFORGE_WEIGHTS", str(blocker / "sub"))
    with pytest.warns(UserWarning, match="could not write the converted"):
        loaded = load_weights("inception")
    assert loaded.verified and loaded.path == dirs["hub"] / INCEPTION_FILES[0]


# --------------------------------------------------------------------------- fetch and import


def test_fetch_downloads_checks_and_converts(
    dirs: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    served = dirs["tmp"] / "served" / "file.pth"
    sha = save_pickle(served, tiny_state())
    missing_url = (dirs["tmp"] / "nowhere.pth").as_uri()
    pin(monkeypatch, "inception", sha, urls=(missing_url, served.as_uri()))
    out = fetch("inception")
    assert out == dirs["store"] / KNOWN_WEIGHTS["inception"].converted_name
    assert not (dirs["store"] / INCEPTION_FILES[0]).exists()  # the pickle is not kept
    assert [p.name for p in dirs["store"].iterdir()] == [out.name]  # no temporary file left
    assert load_weights("inception").verified


def test_fetch_refuses_a_download_with_the_wrong_hash(
    dirs: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    served = dirs["tmp"] / "served.pth"
    save_pickle(served, tiny_state())
    pin(monkeypatch, "inception", "0" * 64, urls=(served.as_uri(),))
    with pytest.raises(WeightsDownloadError, match="expected 0000") as exc:
        fetch("inception")
    assert "pixelforge weights import --name inception" in str(exc.value)
    assert list(dirs["store"].iterdir()) == []


def test_import_weights(dirs: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    src = dirs["tmp"] / "downloads" / "vgg19-dcbb9e9d.pth"
    pin(monkeypatch, "vgg19", save_pickle(src, {"features.0.weight": torch.ones(2)}))
    stored = import_weights("vgg19", src)
    assert stored == dirs["store"] / "vgg19-dcbb9e9d.safetensors"
    assert load_weights("vgg19").verified
    # Importing the converted file again is accepted; a file of other bytes is not.
    assert import_weights("vgg19", stored) == stored
    wrong = dirs["tmp"] / "wrong.pth"
    save_pickle(wrong, {"features.0.weight": torch.zeros(2)})
    with pytest.raises(WeightsHashError) as info:
        import_weights("vgg19", wrong)
    # one statement of the mismatch and one way out (it said both twice, once as "delete it")
    message = str(info.value)
    assert message.startswith(f"{wrong} is not the") and message.count("SHA-256") == 1
    assert message.count("weights fetch vgg19") == 1 and "elete" not in message
    own = dirs["tmp"] / "own.safetensors"
    write_safetensors(own, {"features.0.weight": torch.zeros(2)})
    with pytest.raises(WeightsHashError, match="not one converted"):
        import_weights("vgg19", own)
    with pytest.raises(WeightsNotFoundError):
        import_weights("vgg19", dirs["tmp"] / "absent.pth")


def test_inception_extractor_with_pinned_weights_is_comparable(
    dirs: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    from pixelforge.features import get_extractor
    from pixelforge.features.inception import inception_v3_fid

    state = inception_v3_fid(random_seed=3).state_dict()
    buf = io.BytesIO()
    torch.save(state, buf)
    path = dirs["store"] / INCEPTION_FILES[0]
    path.parent.mkdir(parents=True)
    path.write_bytes(buf.getvalue())
    pin(monkeypatch, "inception", hashlib.sha256(buf.getvalue()).hexdigest())
    net = get_extractor("inception-v3-fid")
    assert net.comparable_to_published
    assert net.describe()["weights_sha256"] == KNOWN_WEIGHTS["inception"].sha256
    assert torch.equal(net.state_dict()["fc.weight"], state["fc.weight"])
    random = get_extractor("inception-v3-fid", random_seed=3)
    assert not random.comparable_to_published and random.weights_sha256 == "random:3"
