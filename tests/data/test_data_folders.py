"""User folders: folder:, paired:, unpaired: layouts, unreadable files and spec errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from pixelforge.data import (
    DataConfig,
    check_dataset,
    inspect_dataset,
    open_dataset,
    parse_spec,
)
from pixelforge.errors import ConfigError, DataError

RED, GREEN, BLUE = (255, 0, 0), (0, 255, 0), (0, 0, 255)


def _png(path: Path, colour: tuple[int, int, int], size: tuple[int, int] = (12, 10)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, colour).save(path)
    return path


def _corrupt(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\x89PNG\r\n\x1a\n this is not really a png")
    return path


def test_labels_come_from_sorted_sub_folders(tmp_path: Path) -> None:
    for i in range(3):
        _png(tmp_path / "dogs" / f"{i}.png", BLUE)
        _png(tmp_path / "cats" / "nested" / f"{i}.jpg", RED)
    info = inspect_dataset(f"folder:{tmp_path}")
    assert (info.size, info.num_classes, info.class_names) == (6, 2, ["cats", "dogs"])
    ds = open_dataset(f"folder:{tmp_path}", image_size=8, channels=3)
    assert ds.images.shape == (6, 3, 8, 8)
    for image, label in zip(ds.images, ds.labels, strict=True):
        red_wins = image[0].float().mean() > image[2].float().mean()
        assert red_wins == (ds.info.class_names[label] == "cats")
    batch = ds.get_batch(torch.tensor([0, 5]))
    assert batch["label"].dtype == torch.int64
    assert ds.info.native_size == (10, 12) and ds.info.channels == 3


def test_flat_folder_is_unlabelled_and_grey_is_detected(tmp_path: Path) -> None:
    for i in range(4):
        _png(tmp_path / f"{i}.png", (i * 40, i * 40, i * 40))
    ds = open_dataset(f"folder:{tmp_path}", image_size=8, channels=1)
    assert ds.labels is None and ds.info.num_classes == 0
    assert ds.info.channels == 1
    assert set(ds.get_batch(torch.arange(4))) == {"image"}
    assert ds.images[:, 0, 0, 0].tolist() == [0, 40, 80, 120]


def test_images_beside_class_folders_are_refused(tmp_path: Path) -> None:
    _png(tmp_path / "a" / "1.png", RED)
    _png(tmp_path / "b" / "1.png", RED)
    _png(tmp_path / "stray.png", RED)
    with pytest.raises(DataError, match=r"stray\.png.*sub-folder named after its class"):
        open_dataset(f"folder:{tmp_path}", image_size=8, channels=3)


def test_one_corrupt_file_in_30_is_skipped_and_recorded(tmp_path: Path) -> None:
    for i in range(29):
        _png(tmp_path / f"{i:02d}.png", GREEN)
    bad = _corrupt(tmp_path / "99.png")
    ds = open_dataset(f"folder:{tmp_path}", image_size=8, channels=3)
    assert len(ds) == 29
    assert [p for p, _ in ds.skipped] == [bad]
    assert ds.skipped[0][1]  # a reason is given
    report = check_dataset(f"folder:{tmp_path}")
    assert (report.total, report.readable) == (30, 29)
    assert [p for p, _ in report.unreadable] == [bad] and not report.ok


def test_too_many_corrupt_files_stop_with_a_check_hint(tmp_path: Path) -> None:
    for i in range(7):
        _png(tmp_path / f"{i}.png", GREEN)
    for i in range(3):
        _corrupt(tmp_path / f"bad{i}.png")
    spec = f"folder:{tmp_path}"
    with pytest.raises(DataError, match=r"3 of 10.*pixelforge data check") as exc:
        open_dataset(spec, image_size=8, channels=3)
    assert "bad0.png" in str(exc.value)
    lenient = DataConfig(max_bad_fraction=0.5)
    assert len(open_dataset(spec, image_size=8, channels=3, config=lenient)) == 7


def test_missing_and_empty_folders(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no such folder"):
        open_dataset(f"folder:{tmp_path / 'nope'}", image_size=8, channels=3)
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("not an image")
    with pytest.raises(DataError, match="no images"):
        open_dataset(f"folder:{tmp_path / 'empty'}", image_size=8, channels=3)
    with pytest.raises(DataError, match="no such folder"):
        inspect_dataset(f"paired:{tmp_path / 'nope'}")


def test_unknown_names_list_the_valid_forms_and_suggest(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="Did you mean 'digits'") as exc:
        parse_spec("digts")
    for form in ("shapes", "emoji", "folder:PATH", "paired:PATH", "unpaired:PATH"):
        assert form in str(exc.value)
    with pytest.raises(DataError, match="Did you mean 'shapes:test'"):
        parse_spec("shapse:test")
    with pytest.raises(DataError, match="digits:test"):
        parse_spec("digits:valid")
    with pytest.raises(DataError, match=f"folder:{tmp_path}"):
        parse_spec(str(tmp_path))  # a bare folder path: say how to use it
    assert parse_spec("digits") == ("digits", None)
    assert parse_spec("shapes:test") == ("shapes", "test")
    assert parse_spec("folder:C:/data:x") == ("folder", "C:/data:x")


# ------------------------------------------------------------------------------ paired
def test_paired_a_b_folders_pair_by_name(tmp_path: Path) -> None:
    root = tmp_path / "facades"
    for i in range(4):  # A and B share the index in their red channel; B is also blue
        _png(root / "train" / "A" / f"{i}.png", (i * 50, 0, 0))
        _png(root / "train" / "B" / f"{i}.jpg", (i * 50, 0, 255))
    ds = open_dataset(f"paired:{root}", image_size=8, channels=3)
    assert ds.info.kind == "paired" and len(ds) == 4
    batch = ds.get_batch(torch.tensor([3, 1]))
    assert set(batch) == {"A", "B"}
    assert torch.allclose(batch["A"][:, 0], batch["B"][:, 0], atol=0.05)  # partners
    assert (batch["B"][:, 2] > 0.9).all() and (batch["A"][:, 2] < -0.9).all()


def test_paired_missing_partner_is_named(tmp_path: Path) -> None:
    for name in ("1", "2", "3"):
        _png(tmp_path / "A" / f"{name}.png", RED)
    for name in ("1", "2"):
        _png(tmp_path / "B" / f"{name}.png", RED)
    with pytest.raises(DataError, match=r"1 in A/ have no partner in B/ \(A/3\.png\)"):
        open_dataset(f"paired:{tmp_path}", image_size=8, channels=3)


def test_paired_side_by_side_is_split_in_half(tmp_path: Path) -> None:
    for i in range(3):
        image = np.zeros((10, 20, 3), np.uint8)
        image[:, :10] = RED
        image[:, 10:] = BLUE
        Image.fromarray(image).save(tmp_path / f"{i}.png")
    ds = open_dataset(f"paired:{tmp_path}", image_size=8, channels=3)
    assert len(ds) == 3 and ds.info.native_size == (10, 10)
    assert (ds.images[:, 0] == 255).all() and (ds.images[:, 2] == 0).all()
    assert (ds.images_b[:, 2] == 255).all() and (ds.images_b[:, 0] == 0).all()


def test_paired_square_images_explain_the_layout(tmp_path: Path) -> None:
    _png(tmp_path / "x.png", RED, size=(10, 10))
    with pytest.raises(DataError, match="side by side"):
        open_dataset(f"paired:{tmp_path}", image_size=8, channels=3)


def test_paired_sides_of_another_shape_are_refused_naming_the_pair(tmp_path: Path) -> None:
    # Each side is resized and cropped on its own: a 12x12 A beside a 24x12 B would be cut to
    # different parts of the scene, and the model would learn from pairs that do not line up.
    _png(tmp_path / "A" / "1.png", RED, size=(12, 12))
    _png(tmp_path / "B" / "1.png", BLUE, size=(24, 24))  # the same frame, larger: fine
    _png(tmp_path / "A" / "2.png", RED, size=(12, 12))
    _png(tmp_path / "B" / "2.png", BLUE, size=(24, 12))
    with pytest.raises(DataError, match=r"1 pairs do not line up: \S*A/2\.png is 12x12 but "):
        open_dataset(f"paired:{tmp_path}", image_size=8, channels=3)
    _png(tmp_path / "B" / "2.png", BLUE, size=(36, 36))
    assert len(open_dataset(f"paired:{tmp_path}", image_size=8, channels=3)) == 2


def test_paired_direction_bto_a_makes_b_the_input(tmp_path: Path) -> None:
    # Many pix2pix datasets hold the photo on the left and its labels on the right, and their
    # labels -> photo model is trained B -> A (facades).
    for i in range(2):
        image = np.zeros((10, 20, 3), np.uint8)
        image[:, :10] = RED
        image[:, 10:] = BLUE
        Image.fromarray(image).save(tmp_path / f"{i}.png")
    ds = open_dataset(
        f"paired:{tmp_path}", image_size=8, channels=3, config=DataConfig(direction="BtoA")
    )
    assert (ds.images[:, 2] == 255).all() and (ds.images_b[:, 0] == 255).all()
    with pytest.raises(ConfigError, match="not paired"):
        open_dataset(
            f"folder:{tmp_path}", image_size=8, channels=3, config=DataConfig(direction="BtoA")
        )
    with pytest.raises(ConfigError, match="AtoB or BtoA"):
        DataConfig(direction="AB").validate()


# ------------------------------------------------------------------------------ unpaired
def test_unpaired_sides_wrap_modulo_their_length(tmp_path: Path) -> None:
    for i in range(3):
        _png(tmp_path / "trainA" / f"{i}.png", (i * 100, 0, 0))
    for i in range(5):
        _png(tmp_path / "trainB" / f"{i}.png", (0, i * 50, 0))
    ds = open_dataset(f"unpaired:{tmp_path}", image_size=8, channels=3)
    assert len(ds) == 5 and ds.info.kind == "unpaired"
    batch = ds.get_batch(torch.arange(5))
    reds = ((batch["A"][:, 0, 0, 0] + 1) * 127.5).round().tolist()
    greens = ((batch["B"][:, 1, 0, 0] + 1) * 127.5).round().tolist()
    assert reds == [0, 100, 200, 0, 100]
    assert greens == [0, 50, 100, 150, 200]
    assert check_dataset(f"unpaired:{tmp_path}").total == 8


def test_unpaired_without_two_domains_explains_the_layout(tmp_path: Path) -> None:
    _png(tmp_path / "trainA" / "0.png", RED)
    with pytest.raises(DataError, match=r"trainA/ and trainB/"):
        open_dataset(f"unpaired:{tmp_path}", image_size=8, channels=3)


# ------------------------------------------------------------------------------ resize modes
@pytest.mark.parametrize("mode", ["center-crop", "stretch", "pad"])
def test_resize_modes_on_a_wide_image(tmp_path: Path, mode: str) -> None:
    image = np.zeros((20, 40, 3), np.uint8)  # 40 wide, 20 high: red | green | blue
    image[:, :10], image[:, 10:30], image[:, 30:] = RED, GREEN, BLUE
    Image.fromarray(image).save(tmp_path / "wide.png")
    cfg = DataConfig(resize_mode=mode, resize_filter="nearest")
    out = open_dataset(f"folder:{tmp_path}", image_size=16, channels=3, config=cfg).images[0]
    colour = out.permute(1, 2, 0).numpy()
    if mode == "center-crop":  # the centre 20x20 is all green
        assert (colour == GREEN).all()
    elif mode == "stretch":  # the three bands keep their 1:2:1 widths across all rows
        assert (colour[:, :4] == RED).all()
        assert (colour[:, 4:12] == GREEN).all()
        assert (colour[:, 12:] == BLUE).all()
    else:  # scaled to 16x8, centred, black bars above and below
        assert (colour[:4] == 0).all() and (colour[12:] == 0).all()
        assert (colour[4:12, :4] == RED).all() and (colour[4:12, 12:] == BLUE).all()
