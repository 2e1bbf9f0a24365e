"""NeRF data: loading transforms files (NeRF synthetic, nerfstudio) and the built-in scenes."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from pixelforge.errors import ConfigError, DataError
from pixelforge.io.images import read_image, write_png
from pixelforge.nerf import scenes
from pixelforge.nerf.make_scene import SCENES, make_scene, scene_primitives
from pixelforge.nerf.scenes import load_scene

LEGO_MINI = Path(__file__).parent / "fixtures" / "nerf_lego_mini"
LEGO_FULL = Path("/work/shared/data/nerf_lego")


@pytest.fixture
def lego(tmp_path: Path) -> Path:
    """A writable copy of the lego mini fixture (3 train + 1 val views, 50 x 50 RGBA)."""
    return Path(shutil.copytree(LEGO_MINI, tmp_path / "lego"))


def _meta(root: Path, split: str = "train") -> dict:
    return json.loads((root / f"transforms_{split}.json").read_text())


def _save(root: Path, meta: dict, split: str = "train") -> None:
    (root / f"transforms_{split}.json").write_text(json.dumps(meta))


@pytest.fixture(scope="module")
def objects_scene(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("gen") / "objects"
    return make_scene("objects", views=4, size=64, out=out, seed=3, val_views=1, test_views=1)


def test_lego_mini_loads_as_is():
    scene = load_scene(LEGO_MINI)
    assert set(load_scene(LEGO_MINI / "transforms_val.json").splits) == {"train", "val"}
    assert scene.format == "nerf-synthetic" and set(scene.splits) == {"train", "val"}
    train = scene.splits["train"]
    assert train.images.shape == (3, 50, 50, 3) and train.alpha is not None
    assert train.alpha.shape == (3, 50, 50)
    assert train.files[0].endswith("train/r_0.png")
    meta = _meta(LEGO_MINI)
    expected = torch.tensor([f["transform_matrix"] for f in meta["frames"]], dtype=torch.float32)
    assert torch.equal(train.cameras.c2w, expected)
    focal = 0.5 * 50 / math.tan(0.5 * meta["camera_angle_x"])
    assert torch.allclose(train.cameras.fx, torch.full((3,), focal))
    assert torch.allclose(train.cameras.fy, torch.full((3,), focal))
    assert torch.allclose(train.cameras.cx, torch.full((3,), 25.0))
    assert torch.allclose(train.cameras.cy, torch.full((3,), 25.0))
    # White background: a transparent pixel becomes 1.0; colours stay in [0, 1].
    assert scene.background == (1.0, 1.0, 1.0)
    assert train.alpha[0, 0, 0] == 0 and torch.equal(train.images[0, 0, 0], torch.ones(3))
    assert float(train.alpha.max()) == 1.0 and float(train.images.min()) >= 0
    # Box from the rig: holds the origin, about +-1.5 like the full lego rig.
    assert scene.aabb_source == "camera rig"
    assert bool((scene.aabb[0] < 0).all() and (scene.aabb[1] > 0).all())
    half = (scene.aabb[1] - scene.aabb[0]) / 2
    assert bool(((half > 1.2) & (half < 1.8)).all())
    near, far = scene.near_far()
    assert 0 < near < 4 - 1.4 and far > 4 + 1.4


@pytest.mark.skipif(not LEGO_FULL.is_dir(), reason="the full lego scene is not on this machine")
def test_full_lego_scene_loads_with_a_box_of_about_1_45():
    scene = load_scene(LEGO_FULL)
    assert {k: v.images.shape for k, v in scene.splits.items()} == {
        "train": (70, 200, 200, 3),
        "val": (10, 200, 200, 3),
    }
    assert torch.allclose(scene.aabb, torch.tensor([[-1.45] * 3, [1.45] * 3]), atol=0.05)


def _project(cameras, i: int, point: torch.Tensor) -> tuple[float, float, float]:
    """(column, row, depth) of a world point in camera i, by the Cameras convention."""
    c2w = cameras.c2w[i].double()
    x, y, z = (c2w[:3, :3].T @ (point.double() - c2w[:3, 3])).tolist()
    u = float(cameras.cx[i]) + float(cameras.fx[i]) * x / -z
    v = float(cameras.cy[i]) - float(cameras.fy[i]) * y / -z
    return u, v, -z


def test_generated_scene_geometry_matches_the_cameras(objects_scene: Path):
    scene = load_scene(objects_scene)
    assert scene.aabb_source == "file" and scene.background == (1.0, 1.0, 1.0)
    train = scene.splits["train"]
    assert train.alpha is not None
    origins, dirs = train.cameras.rays()
    spheres = [p for p in scene_primitives("objects", 3) if p.kind == "sphere"]
    for i in range(len(train.cameras)):
        for sphere in spheres:
            centre = torch.tensor(sphere.centre, dtype=torch.float32)
            u, v, depth = _project(train.cameras, i, centre)
            col, row = math.floor(u), math.floor(v)
            assert 0 <= col < 64 and 0 <= row < 64
            o, d = origins[i, row, col], dirs[i, row, col]
            off_axis = torch.linalg.cross(centre - o, d).norm()
            assert float(off_axis) < depth / float(train.cameras.fx[i])  # within a pixel
            # The ray of that pixel hits the sphere, and something opaque is rendered there.
            assert math.isfinite(sphere.hit(o[None].double().numpy(), d[None].double().numpy())[0])
            assert float(train.alpha[i, row, col]) == 1.0
        assert float(train.alpha[i, [0, 0, -1, -1], [0, -1, 0, -1]].max()) == 0.0
    # Pixels rendered fully covered (alpha 1) / empty (alpha 0) are those whose centre ray, from
    # the cameras as loaded back, hits / misses the primitives (a few edge pixels may differ).
    o, d = origins.reshape(-1, 3).double().numpy(), dirs.reshape(-1, 3).double().numpy()
    hits = np.stack([p.hit(o, d) for p in scene_primitives("objects", 3)]).min(0) < np.inf
    alpha = train.alpha.reshape(-1).numpy()
    wrong = ((alpha == 1) & ~hits) | ((alpha == 0) & hits)
    assert wrong.mean() < 0.002 and (alpha == 1).mean() > 0.1 and (alpha == 0).mean() > 0.3
    # Train, val and test cameras are at different places.
    centres = {k: s.cameras.centers for k, s in scene.splits.items()}
    assert float(torch.cdist(centres["train"], centres["val"]).min()) > 0.05
    assert float(torch.cdist(centres["val"], centres["test"]).min()) > 0.05
    assert torch.allclose(centres["train"].norm(dim=-1), torch.full((4,), 4.0))


def _nerfstudio(lego: Path, per_frame: bool) -> Path:
    """The lego mini scene as one nerfstudio transforms.json with split filename lists."""
    root = lego.parent / ("ns_frame" if per_frame else "ns_shared")
    (root / "images").mkdir(parents=True)
    intr = {"w": 50, "h": 50, "cx": 25.0, "cy": 25.0}
    intr["fl_x"] = intr["fl_y"] = 0.5 * 50 / math.tan(0.5 * _meta(lego)["camera_angle_x"])
    frames, names = [], {}
    for split in ("train", "val"):
        for f in _meta(lego, split)["frames"]:
            name = f"images/{split}_{Path(f['file_path']).name}.png"
            shutil.copy(lego / f"{f['file_path']}.png", root / name)
            frame = {"file_path": name, "transform_matrix": f["transform_matrix"]}
            frames.append({**frame, **intr} if per_frame else frame)
            names.setdefault(f"{split}_filenames", []).append(name)
    meta = {**({} if per_frame else intr), "frames": frames, **names}
    (root / "transforms.json").write_text(json.dumps(meta))
    return root


@pytest.mark.parametrize("per_frame", [False, True])
def test_nerfstudio_file_gives_the_same_rays_as_the_synthetic_one(lego: Path, per_frame: bool):
    reference = load_scene(lego)
    scene = load_scene(_nerfstudio(lego, per_frame) / "transforms.json")
    assert scene.format == "nerfstudio" and set(scene.splits) == {"train", "val"}
    for split in ("train", "val"):
        ours, theirs = scene.splits[split].cameras.rays(), reference.splits[split].cameras.rays()
        for a, b in zip(ours, theirs, strict=True):
            assert torch.allclose(a, b, atol=1e-5)
        assert torch.equal(scene.splits[split].images, reference.splits[split].images)
    assert torch.allclose(scene.aabb, reference.aabb)


def test_nerfstudio_without_split_lists_is_all_train_and_warns_about_distortion(lego: Path):
    root = _nerfstudio(lego, per_frame=False)
    meta = json.loads((root / "transforms.json").read_text())
    del meta["train_filenames"], meta["val_filenames"]
    meta["k1"] = 0.05
    for key in ("w", "h", "fl_x", "fl_y", "cx", "cy"):  # intrinsics of 100 x 100 originals
        meta[key] *= 2
    (root / "transforms.json").write_text(json.dumps(meta))
    with pytest.warns(UserWarning, match=r"distortion coefficients .* ignored"):
        scene = load_scene(root)
    assert list(scene.splits) == ["train"] and len(scene.splits["train"].cameras) == 4
    cameras, reference = scene.splits["train"].cameras, load_scene(lego).splits["train"].cameras
    assert torch.allclose(cameras.fx[:3], reference.fx) and torch.allclose(
        cameras.cx, torch.tensor(25.0)
    )


def test_downscale_halves_sizes_and_focal_and_rounds_odd_sizes():
    full, half = load_scene(LEGO_MINI), load_scene(LEGO_MINI, downscale=2, splits=["train"])
    assert half.splits["train"].images.shape == (3, 25, 25, 3) and list(half.splits) == ["train"]
    assert torch.allclose(half.splits["train"].cameras.fx, full.splits["train"].cameras.fx / 2)
    assert torch.allclose(half.splits["train"].cameras.cx, torch.full((3,), 12.5))
    third = load_scene(LEGO_MINI, downscale=3).splits["train"].cameras
    assert (third.width, third.height) == (17, 17)  # 50 / 3 rounded
    assert torch.allclose(third.fx, full.splits["train"].cameras.fx * 17 / 50)


def test_downscale_averages_premultiplied_colour_so_edges_get_no_dark_fringe(tmp_path: Path):
    image = np.zeros((4, 4, 4), np.uint8)
    image[:, 0::2] = (255, 0, 0, 255)  # opaque red columns
    image[:, 1::2] = (0, 255, 0, 0)  # transparent columns that store green
    write_png(tmp_path / "train" / "a.png", image)
    frame = {"file_path": "./train/a", "transform_matrix": np.eye(4).tolist()}
    meta = {"camera_angle_x": 0.7, "aabb": [[-1, -1, -3], [1, 1, -1]], "frames": [frame]}
    _save(tmp_path, meta)
    split = load_scene(tmp_path, downscale=2).splits["train"]
    assert split.alpha is not None and torch.allclose(split.alpha, torch.full((1, 2, 2), 0.5))
    assert torch.allclose(split.images, torch.tensor([1.0, 0.5, 0.5]).expand(1, 2, 2, 3))
    black = load_scene(tmp_path, downscale=2, background="black").splits["train"].images
    assert torch.allclose(black, torch.tensor([0.5, 0.0, 0.0]).expand(1, 2, 2, 3))


def test_make_scene_is_deterministic_by_seed(tmp_path: Path):
    def files(root: Path) -> dict[str, bytes]:
        return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}

    args = {"views": 2, "size": 16, "val_views": 1, "test_views": 1}
    a = make_scene("simple", out=tmp_path / "a", **args)
    b = make_scene("simple", out=tmp_path / "b", **args)
    c = make_scene("simple", out=tmp_path / "c", seed=1, **args)
    assert files(a) == files(b) and len(files(a)) == 7
    assert not np.array_equal(read_image(a / "train/r_0.png"), read_image(c / "train/r_0.png"))
    assert _meta(a)["frames"][0]["transform_matrix"] != _meta(c)["frames"][0]["transform_matrix"]
    assert _meta(a)["frames"][0]["file_path"] == "./train/r_0"


def test_make_scene_refuses_bad_input(tmp_path: Path):
    args = {"views": 1, "size": 16, "val_views": 1, "test_views": 1}
    with pytest.raises(ConfigError, match=r"unknown scene 'lego'.*simple"):
        make_scene("lego", out=tmp_path / "x", **args)
    with pytest.raises(ConfigError, match=r"views must be a whole number from 1 to 1000, got 0"):
        make_scene("simple", out=tmp_path / "x", **{**args, "views": 0})
    for size in (8, 2000):
        with pytest.raises(ConfigError, match=f"size must be .* 16 to 1024, got {size}"):
            make_scene("simple", out=tmp_path / "x", **{**args, "size": size})
    assert not (tmp_path / "x").exists()
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "keep.txt").write_text("mine")
    with pytest.raises(ConfigError, match=r"already exists and is not empty.*--overwrite"):
        make_scene("simple", out=tmp_path / "x", **args)
    make_scene("hard", out=tmp_path / "x", overwrite=True, **args)
    assert sorted(p.name for p in (tmp_path / "x").iterdir()) == [
        "test", "train", "transforms_test.json", "transforms_train.json", "transforms_val.json", "val",
    ]  # fmt: skip
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x"]  # no temporary folder left
    assert set(SCENES) >= {"simple", "objects", "hard"}


def test_bad_folders_and_files_are_clear_errors(tmp_path: Path, lego: Path):
    with pytest.raises(DataError, match=r"no transforms file found"):
        load_scene(tmp_path)
    (lego / "transforms_val.json").write_text("{ not json")
    with pytest.raises(DataError, match=r"transforms_val.json: not valid JSON"):
        load_scene(lego)
    _save(lego, {"camera_angle_x": 0.69, "frames": []}, "val")
    with pytest.raises(DataError, match=r"transforms_val.json: no frames"):
        load_scene(lego)


def test_bad_frames_are_clear_errors(lego: Path):
    meta = _meta(lego)
    (lego / "train" / "r_20.png").unlink()
    with pytest.raises(
        DataError, match=r"frame 1: image './train/r_20' not found \(tried .*r_20.png"
    ):
        load_scene(lego)
    shutil.copy(lego / "train" / "r_0.png", lego / "train" / "r_20.png")
    no_focal = {k: v for k, v in meta.items() if k != "camera_angle_x"}
    _save(lego, no_focal)
    with pytest.raises(DataError, match=r"frame 0: no focal length.*camera_angle_x nor fl_x"):
        load_scene(lego)
    _save(lego, {**meta, "camera_angle_x": 0})
    with pytest.raises(DataError, match=r"frame 0: invalid intrinsics"):
        load_scene(lego)
    _save(lego, {**meta, "camera_model": "OPENCV_FISHEYE"})
    with pytest.raises(DataError, match=r"frame 0: camera_model OPENCV_FISHEYE is not supported"):
        load_scene(lego)
    bad = json.loads(json.dumps(meta))
    bad["frames"][2]["transform_matrix"] = np.eye(3).tolist()
    _save(lego, bad)
    with pytest.raises(DataError, match=r"frame 2: transform_matrix must be a 4 x 4 .* \(3, 3\)"):
        load_scene(lego)
    three_by_four = json.loads(json.dumps(meta))
    for f in three_by_four["frames"]:
        f["transform_matrix"] = f["transform_matrix"][:3]
    _save(lego, three_by_four)
    assert torch.equal(
        load_scene(lego).splits["train"].cameras.c2w,
        load_scene(LEGO_MINI).splits["train"].cameras.c2w,
    )


def test_mixed_sizes_and_mixed_alpha_are_refused(lego: Path):
    rgba = read_image(lego / "train" / "r_45.png", mode="RGBA")
    write_png(lego / "train" / "r_45.png", rgba[:40])
    with pytest.raises(
        DataError, match=r"different sizes.*r_0.png is 50 x 50.*r_45.png is 50 x 40"
    ):
        load_scene(lego)
    write_png(lego / "train" / "r_45.png", read_image(LEGO_MINI / "train" / "r_45.png"))  # RGB
    with pytest.raises(
        DataError, match=r"some images have alpha \(.*r_0.png\) and some do not \(.*r_45.png\)"
    ):
        load_scene(lego)


def test_background_without_alpha_and_bad_options_are_config_errors(lego: Path):
    for f in (*lego.glob("train/*.png"), *lego.glob("val/*.png")):
        write_png(f, read_image(f))  # drop alpha
    scene = load_scene(lego)
    assert scene.background is None and scene.splits["train"].alpha is None
    with pytest.raises(
        ConfigError, match=r"no alpha channel, so a background cannot be applied.*Drop"
    ):
        load_scene(lego, background="white")
    with pytest.raises(ConfigError, match=r"background must be auto, white or black"):
        load_scene(lego, background="random")
    with pytest.raises(ConfigError, match=r"downscale must be a whole number >= 1"):
        load_scene(lego, downscale=0)
    with pytest.raises(ConfigError, match=r"has no 'test' split; it has train, val"):
        load_scene(lego, splits=["test"])


def test_file_box_is_used_and_cameras_must_see_it(lego: Path):
    meta = _meta(lego)
    meta["aabb"] = [[-1, -1, -1], [1, 1, 1]]
    _save(lego, meta)
    scene = load_scene(lego)
    assert scene.aabb_source == "file" and torch.equal(
        scene.aabb, torch.tensor(meta["aabb"]).float()
    )
    m = np.array(meta["frames"][2]["transform_matrix"])
    m[:3, [0, 2]] *= -1  # turn the camera around: it looks away from the box
    meta["frames"][2]["transform_matrix"] = m.tolist()
    _save(lego, meta)
    with pytest.raises(DataError, match=r"frame 2: the camera looks away from the scene box"):
        load_scene(lego)
    meta["aabb"] = [[1, 1, 1], [-1, -1, -1]]
    _save(lego, meta)
    with pytest.raises(DataError, match=r"'aabb' must be"):
        load_scene(lego)


def test_forward_facing_rig_without_box_asks_for_one(lego: Path):
    meta = _meta(lego)
    for i, f in enumerate(meta["frames"]):
        m = np.eye(4)
        m[:3, 3] = [0.1 * i, 0, 4]
        f["transform_matrix"] = m.tolist()
    _save(lego, meta)
    (lego / "transforms_val.json").unlink()
    with pytest.raises(DataError, match=r'parallel.*Add an "aabb"'):
        load_scene(lego)


def test_memory_cap_suggests_downscale(lego: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(scenes, "MAX_SPLIT_BYTES", 3 * 50 * 50 * 16 - 1)
    with pytest.raises(DataError, match=r"over the limit .* larger downscale"):
        load_scene(lego)
    assert load_scene(lego, downscale=2).splits["train"].images.shape[1] == 25


def test_nerfstudio_split_list_naming_no_frame_is_an_error(lego: Path):
    root = _nerfstudio(lego, per_frame=False)
    meta = json.loads((root / "transforms.json").read_text())
    meta["val_filenames"] = ["images/nope.png"]
    (root / "transforms.json").write_text(json.dumps(meta))
    with pytest.raises(DataError, match=r"val_filenames names 'images/nope.png'"):
        load_scene(root)
