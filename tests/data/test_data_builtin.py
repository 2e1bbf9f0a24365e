"""Built-in datasets: digits, faces, photos, shapes."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch

from pixelforge.data import DataConfig, inspect_dataset, list_datasets, open_dataset
from pixelforge.data.shapes import PALETTE, POSITIONS, SHAPE_CLASSES, SIZES

# ------------------------------------------------------------------------------ digits


@pytest.fixture(scope="module")
def digits() -> dict[str, object]:
    cfg = DataConfig(resize_filter="nearest")
    return {
        split: open_dataset(f"digits:{split}", image_size=8, channels=1, config=cfg)
        for split in ("train", "test")
    }


def test_digits_split_is_the_documented_stratified_split(digits: dict) -> None:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    bunch = load_digits()
    train_idx, test_idx = train_test_split(
        np.arange(len(bunch.target)), test_size=360, stratify=bunch.target, random_state=0
    )
    assert not set(train_idx) & set(test_idx)
    for split, idx in (("train", np.sort(train_idx)), ("test", np.sort(test_idx))):
        ds = digits[split]
        assert len(ds) == {"train": 1437, "test": 360}[split]
        assert ds.info.num_classes == 10 and ds.info.class_names == [str(d) for d in range(10)]
        assert ds.labels.tolist() == bunch.target[idx].tolist()
        # at the native 8x8 size the pixels are exactly 0..16 scaled to 0..255
        expected = np.rint(bunch.images[idx] * 255 / 16).astype(np.uint8)
        assert np.array_equal(ds.images[:, 0].numpy(), expected)
        # stratified: every class in both splits, in about the same proportion
        counts = np.bincount(ds.labels.numpy(), minlength=10)
        assert (counts > 0).all()
        assert counts.max() / counts.min() < 1.2


def test_digits_default_is_train_and_deterministic(digits: dict) -> None:
    again = open_dataset(
        "digits", image_size=8, channels=1, config=DataConfig(resize_filter="nearest")
    )
    assert again.info.size == 1437
    assert torch.equal(again.images, digits["train"].images)
    assert inspect_dataset("digits:test").size == 360


def test_digits_batch_range_shape_and_rgb_replication() -> None:
    grey = open_dataset("digits:test", image_size=16, channels=1)
    rgb = open_dataset("digits:test", image_size=16, channels=3)
    batch = rgb.get_batch(torch.arange(10))
    assert batch["image"].shape == (10, 3, 16, 16) and batch["image"].dtype == torch.float32
    assert batch["label"].dtype == torch.int64 and batch["label"].shape == (10,)
    assert batch["image"].min() >= -1.0 and batch["image"].max() <= 1.0
    assert batch["image"].min() == -1.0 and batch["image"].max() == 1.0  # full range used
    assert torch.equal(rgb.images, grey.images.expand(-1, 3, -1, -1))
    assert rgb.info.channels == 1  # native channels are reported, not the requested ones


# ------------------------------------------------------------------------------ shapes
CAPTION = re.compile(
    r"^a (?P<size>small|large) (?P<colour>\w+) (?P<shape>\w+) at the (?P<position>[a-z ]+)$"
)


def _cell_of(position: str) -> tuple[int, int]:
    for row, names in enumerate(POSITIONS):
        if position in names:
            return row, names.index(position)
    raise AssertionError(f"unknown position {position!r}")


def test_shapes_captions_describe_what_is_drawn() -> None:
    size = 48
    ds = open_dataset("shapes", image_size=size, channels=3, config=DataConfig(shapes_count=80))
    assert ds.info.has_captions and ds.info.has_masks
    assert ds.info.class_names == list(SHAPE_CLASSES)
    assert ds.masks.dtype == torch.uint8 and ds.masks.shape == (80, 1, size, size)
    assert set(ds.masks.unique().tolist()) == {0, 1}
    areas: dict[tuple[str, str], list[int]] = {}
    for i, caption in enumerate(ds.captions):
        m = CAPTION.match(caption)
        assert m, caption
        assert SHAPE_CLASSES[int(ds.labels[i])] == m["shape"]
        mask = ds.masks[i, 0].numpy().astype(bool)
        ys, xs = np.nonzero(mask)
        row, col = _cell_of(m["position"])
        assert int(ys.mean() * 3 // size) == row and int(xs.mean() * 3 // size) == col, caption
        mean = ds.images[i].permute(1, 2, 0).numpy()[mask].mean(axis=0)
        nearest = min(PALETTE, key=lambda c: np.linalg.norm(mean - np.array(PALETTE[c])))
        assert nearest == m["colour"], caption
        assert np.linalg.norm(mean - np.array(PALETTE[m["colour"]])) < 40, caption
        areas.setdefault((m["shape"], m["size"]), []).append(int(mask.sum()))
    for shape in SHAPE_CLASSES:
        small, large = areas.get((shape, "small")), areas.get((shape, "large"))
        if small and large:
            assert max(small) < min(large), shape
    assert set(SIZES) == {"small", "large"}


def test_shapes_deterministic_by_seed_and_same_layout_at_any_size() -> None:
    cfg = DataConfig(shapes_count=20, seed=3)
    a = open_dataset("shapes", image_size=16, channels=3, config=cfg)
    b = open_dataset("shapes", image_size=16, channels=3, config=cfg)
    other = open_dataset("shapes", image_size=16, channels=3, config=DataConfig(shapes_count=20))
    big = open_dataset("shapes", image_size=32, channels=3, config=cfg)
    assert torch.equal(a.images, b.images) and torch.equal(a.masks, b.masks)
    assert a.captions == b.captions
    assert not torch.equal(a.images, other.images)
    assert a.captions == big.captions and torch.equal(a.labels, big.labels)
    # the prefix of a larger set is the smaller set: samples depend on (seed, index) only
    more = open_dataset(
        "shapes", image_size=16, channels=3, config=DataConfig(shapes_count=30, seed=3)
    )
    assert torch.equal(more.images[:20], a.images)


def test_shapes_test_split_is_disjoint_and_a_quarter() -> None:
    cfg = DataConfig(shapes_count=40)
    train = open_dataset("shapes", image_size=16, channels=3, config=cfg)
    test = open_dataset("shapes:test", image_size=16, channels=3, config=cfg)
    assert len(test) == 10 and inspect_dataset("shapes:test", cfg).size == 10
    train_bytes = {img.numpy().tobytes() for img in train.images}
    assert not any(img.numpy().tobytes() in train_bytes for img in test.images)


# ------------------------------------------------------------------------------ photos, faces
def test_photos_are_deterministic_patches_of_the_right_shape() -> None:
    cfg = DataConfig(photo_patches=12, seed=5)
    a = open_dataset("photos", image_size=16, channels=3, config=cfg)
    b = open_dataset("photos", image_size=16, channels=3, config=cfg)
    c = open_dataset("photos", image_size=16, channels=3, config=DataConfig(photo_patches=12))
    assert a.images.shape == (12, 3, 16, 16) and a.images.dtype == torch.uint8
    assert torch.equal(a.images, b.images)
    assert not torch.equal(a.images, c.images)
    assert a.labels is None and set(a.get_batch(torch.arange(2))) == {"image"}
    grey = open_dataset("photos", image_size=16, channels=1, config=cfg)
    assert grey.images.shape == (12, 1, 16, 16)


def test_faces_are_100_grey_images() -> None:
    info = inspect_dataset("faces")
    assert (info.size, info.channels, info.native_size) == (100, 1, (25, 25))
    assert "demo" in info.description
    ds = open_dataset("faces", image_size=16, channels=1)
    assert ds.images.shape == (100, 1, 16, 16)
    assert ds.labels is None
    # the first 100 of lfw_subset's 200 entries are the faces (the rest are background crops)
    from skimage.data import lfw_subset

    native = open_dataset("faces", image_size=25, channels=1).images[:, 0].numpy()
    assert np.array_equal(native, np.rint(lfw_subset()[:100] * 255).astype(np.uint8))


def test_list_datasets_names_every_builtin() -> None:
    names = [name for name, _ in list_datasets()]
    assert names == ["digits", "faces", "photos", "shapes", "emoji", "composites"]
    assert all(desc for _, desc in list_datasets())
