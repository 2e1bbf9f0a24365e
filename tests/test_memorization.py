"""`pixelforge eval memorization`: a generator that copies its training images is caught."""

from __future__ import annotations

import json

import pytest
import torch

from pixelforge.data import open_dataset
from pixelforge.errors import ConfigError
from pixelforge.io.images import read_provenance, write_png
from pixelforge.metrics.memorization import LIKELY, NONE, memorization, nearest_neighbours

FIELDS = {
    "metric",
    "verdict",
    "median_ratio",
    "copies_fraction",
    "expected_copies_fraction",
    "exact_copies_fraction",
    "copy_threshold",
    "generated",
    "heldout",
    "n_train",
    "n_generated",
    "n_heldout",
    "pairs",
    "thresholds",
    "protocol",
    "warnings",
}


@pytest.fixture(scope="module")
def copies(tmp_path_factory):
    """A "generator" that is a folder of 150 training digits, saved as they are (32x32 grey)."""
    root = tmp_path_factory.mktemp("copies")
    ds = open_dataset("digits", image_size=32, channels=1)
    idx = torch.arange(0, 1437, 1437 // 150)[:150]
    images = ((ds.get_batch(idx)["image"] + 1) * 127.5).round().clamp(0, 255).to(torch.uint8)
    for i, img in enumerate(images):
        write_png(root / f"{i:03d}.png", img.permute(1, 2, 0).numpy())
    return root, idx


# ------------------------------------------------------------------------- metric math


def test_nearest_neighbours_match_brute_force():
    g = torch.Generator().manual_seed(0)
    q, r = torch.randn(37, 5, generator=g), torch.randn(53, 5, generator=g)
    d, i = nearest_neighbours(q, r, max_block_elements=100)  # several blocks
    full = torch.cdist(q.double(), r.double())
    assert torch.allclose(d, full.min(dim=1).values, atol=1e-9)
    assert torch.equal(i, full.argmin(dim=1))


def test_copies_are_flagged_and_fresh_samples_are_not():
    g = torch.Generator().manual_seed(0)
    train, held, fresh = (torch.randn(n, 8, generator=g) for n in (500, 300, 300))
    ok = memorization(train, fresh, held)
    assert ok.verdict == NONE and 0.8 < ok.median_ratio < 1.25 and ok.copies_fraction < 0.03
    copied = train[:300] + 1e-3 * torch.randn(300, 8, generator=g)
    bad = memorization(train, copied, held, k_pairs=3)
    assert bad.verdict == LIKELY and bad.copies_fraction > 0.9 and bad.median_ratio < 0.05
    assert [t for _, t, _ in bad.pairs] == [s for s, _, _ in bad.pairs]  # sample i copies train i
    half = torch.cat([train[:60], fresh[:240]])  # 20% copies, the rest honest
    assert memorization(train, half, held).verdict == LIKELY


# ------------------------------------------------------------------------- command line


def test_a_folder_of_training_digits_is_flagged_with_pairs(cli, copies, tmp_path):
    root, idx = copies
    png = tmp_path / "pairs.png"
    code, out, err = cli(
        "eval", "memorization", root, "--train", "digits", "--json", "--pairs-out", png
    )
    assert code == 0, err
    doc = json.loads(out)
    assert set(doc) >= FIELDS
    assert doc["verdict"] == "likely copying"
    assert doc["copies_fraction"] > 0.9 and doc["exact_copies_fraction"] > 0.9
    assert doc["median_ratio"] < 0.1
    assert doc["protocol"]["extractor"] == "digits-cnn"  # auto for digits
    assert doc["protocol"]["heldout"] == "digits:test"  # the default held-out split
    assert doc["n_generated"] == 150 and doc["n_train"] == 1437 and doc["n_heldout"] == 360
    # the pairs name the training image each copy came from
    assert all(idx[p["sample"]] == p["train"] for p in doc["pairs"])
    meta = read_provenance(png)
    assert meta is not None and meta["verdict"] == "likely copying"


def test_pixel_space_flags_copies_too(cli, copies):
    code, out, err = cli(
        "eval", "memorization", copies[0], "--train", "digits", "--space", "pixels", "--json"
    )
    assert code == 0, err
    doc = json.loads(out)
    assert doc["verdict"] == "likely copying" and doc["protocol"]["space"] == "pixels"


def test_held_out_real_digits_are_not_flagged(cli):
    code, out, err = cli("eval", "memorization", "digits:test", "--train", "digits", "--json")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["verdict"] == "no sign of copying"
    assert doc["median_ratio"] == pytest.approx(1.0)
    assert doc["copies_fraction"] <= 0.02 and doc["exact_copies_fraction"] == 0


def test_the_shipped_digit_gan_is_not_flagged(cli, tmp_path):
    code, out, err = cli(
        "eval", "memorization", "dcgan-digits", "--train", "digits", "--n", "200", "--json"
    )
    assert code == 0, err
    doc = json.loads(out)
    assert doc["verdict"] == "no sign of copying", doc
    assert doc["n_generated"] == 200 and doc["median_ratio"] > 0.8
    assert doc["copies_fraction"] < 0.03


def test_table_output_states_the_verdict(cli, copies):
    code, out, err = cli("eval", "memorization", copies[0], "--train", "digits")
    assert code == 0, err
    assert "verdict: likely copying" in out and "median ratio" in out


def test_held_out_set_is_required_when_there_is_no_test_split(cli, copies, tmp_path):
    code, _, err = cli("eval", "memorization", copies[0], "--train", f"folder:{copies[0]}")
    assert code != 0
    assert "--heldout is required" in err and len(err.strip().splitlines()) == 1
    code, _, err = cli(
        "eval", "memorization", copies[0], "--train", "digits", "--heldout", "digits"
    )
    assert code != 0 and "must not be the training images" in err
    code, _, err = cli("eval", "memorization", copies[0], "--train", "digits", "--space", "latent")
    assert code != 0 and "--space" in err


def test_default_heldout_and_extractor_choice():
    from pixelforge.tasks.memorization import choose_extractor, default_heldout

    assert default_heldout("digits") == "digits:test"
    assert default_heldout("shapes:train") == "shapes:test"
    with pytest.raises(ConfigError, match="--heldout"):
        default_heldout("faces")
    assert choose_extractor("auto", "shapes") == "shapes-cnn"
    assert choose_extractor("auto", "photos") == "inception-v3-fid"
    assert choose_extractor("digits-cnn", "photos") == "digits-cnn"
