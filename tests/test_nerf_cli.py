"""The `pixelforge nerf` commands end to end on a tiny built-in scene: make-scene, train (and
resume), eval (JSON per view), render (orbit GIF/MP4, pose files, depth), and their mistakes."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from pixelforge import hub
from pixelforge.io.images import read_provenance
from pixelforge.nerf.cameras import Cameras, look_at
from pixelforge.nerf.scenes import load_poses, scene_cameras
from pixelforge.tasks.nerf import depth_image, orbit, write_video

TINY = [
    "--set", "model.resolution=12", "--set", "model.density_components=2",
    "--set", "model.color_components=2", "--set", "model.color_features=4",
    "--set", "model.hidden=8", "--set", "model.occupancy_resolution=8",
    "--set", "train.batch_size=256", "--set", "train.resolution_start=8",
    "--set", "train.upsample_steps=[3]", "--set", "train.occupancy_every=4",
    "--set", "train.eval_views=1", "--set", "train.sample_every=0",
]  # fmt: skip


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A built-in scene (6 train views, 24 px) and a grid model trained on it for 8 steps."""
    from conftest import run_cli

    root = tmp_path_factory.mktemp("nerf")
    scene, run = root / "scene", root / "run"
    threads = torch.get_num_threads()  # restored: later tests compare with subprocesses
    args = ["nerf", "make-scene", "simple", "--views", "6", "--size", "24", "--val-views", "2"]
    assert run_cli([*args, "--test-views", "3", "--out", scene]) == 0
    train = ["nerf", "train", scene, "--out", run, "--steps", "8", "--threads", "1", *TINY]
    assert run_cli(train) == 0
    torch.set_num_threads(threads)
    return scene, run


def test_train_resumes_and_eval_scores_every_test_view(trained, cli, tmp_path):
    scene, run = trained
    code, _, err = cli("nerf", "train", scene, "--out", run, "--steps", "10", *TINY)
    assert code == 0, err
    assert "resuming" in err and (run / "checkpoints" / "step-00000010").is_dir()
    code, out, err = cli("nerf", "eval", run, "--out", tmp_path / "r.json", "--threads", "1")
    assert code == 0, err
    result = json.loads((tmp_path / "r.json").read_text())
    assert result == json.loads(out)
    assert result["split"] == "test" and result["size"] == [24, 24]  # test, since it exists
    assert len(result["views"]) == 3
    psnrs = [v["psnr"] for v in result["views"]]
    assert result["psnr"] == pytest.approx(sum(psnrs) / 3) and all(p > 5 for p in psnrs)
    code, out, _ = cli("nerf", "eval", run, "--split", "val", "--threads", "1")
    assert code == 0 and len(json.loads(out)["views"]) == 2


def test_render_orbit_pose_file_and_depth(trained, cli, tmp_path):
    scene, run = trained
    code, _, err = cli("nerf", "render", run, "--frames", "5", "--out", tmp_path / "o.gif")
    assert code == 0, err
    gif = Image.open(tmp_path / "o.gif")
    total = 0  # Pillow merges identical frames (a barely trained field) but keeps the time
    for i in range(gif.n_frames):
        gif.seek(i)
        total += gif.info["duration"]
    assert total == 5 * round(1000 / 24) and gif.size == (24, 24)
    code, _, err = cli(
        "nerf", "render", run, "--pose", scene / "transforms_test.json", "--out", tmp_path / "v"
    )
    assert code == 0, err
    assert sorted(p.name for p in (tmp_path / "v").iterdir()) == [
        f"view_{i:04d}.png" for i in range(3)
    ]
    code, _, err = cli(
        "nerf", "render", run, "--frames", "1", "--depth", "--scale", "2", "--out",
        tmp_path / "d.png",
    )  # fmt: skip
    assert code == 0, err
    assert Image.open(tmp_path / "d.png").size == (48, 48)
    # how each view was made: the model's hash and family, and the command without --out
    doc = read_provenance(tmp_path / "d.png")
    model = hub.load(run)
    assert (doc["family"], doc["model_sha256"]) == ("nerf-grid", model.model_sha256)
    assert doc["command"] == f"pixelforge nerf render {run} --orbit --frames 1 --scale 2.0 --depth"
    doc = read_provenance(tmp_path / "v" / "view_0000.png")
    assert doc["command"] == f"pixelforge nerf render {run} --pose {scene / 'transforms_test.json'}"
    assert doc["model_sha256"] == model.model_sha256 and doc["depth"] is False


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--frames", "0", "--out", "x.gif"], "at least 1 frame"),
        (["--frames", "3", "--out", "x.png"], "holds one view"),
        (["--frames", "3", "--out", "x.avi"], "x.mp4 (a video)"),
        (["--frames", "1", "--out", "x.jpg"], "x.png (one view)"),
        (["--scale", "500", "--out", "x.png", "--frames", "1"], "above the cap"),
    ],
)
def test_render_mistakes_are_one_line(trained, cli, tmp_path, args, needle):
    _, run = trained
    code, _, err = cli("nerf", "render", run, *[tmp_path / a if a.startswith("x.") else a
                                                for a in args])  # fmt: skip
    assert code != 0 and needle in err and "Traceback" not in err


def test_a_model_folder_alone_renders_the_runs_orbit(trained, cli, tmp_path):
    """The model's config keeps its training rig: a copied model folder, away from its run and
    scene, renders the same orbit as the run; a model without a rig asks for --pose."""
    _, run = trained
    model = tmp_path / "model"
    shutil.copytree(run / "checkpoints" / "step-00000008" / "model", model)
    rig = json.loads((model / "config.json").read_text())["config"]["rig"]
    assert rig["width"] == rig["height"] == 24 and rig["radius"] > 0
    for source, out in ((run, "from_run"), (model, "from_model")):
        code, _, err = cli("nerf", "render", source, "--frames", "3", "--out", tmp_path / out)
        assert code == 0, err
    for i in range(3):
        name = f"view_{i:04d}.png"
        a, b = (np.asarray(Image.open(tmp_path / d / name)) for d in ("from_run", "from_model"))
        assert np.array_equal(a, b)
    meta = json.loads((model / "config.json").read_text())
    meta["config"]["rig"] = None  # as saved before models kept their rig
    (model / "config.json").write_text(json.dumps(meta))
    code, _, err = cli("nerf", "render", model, "--out", tmp_path / "o.gif")
    assert code != 0 and "--pose" in err and "Traceback" not in err


def test_a_model_folder_needs_a_split_file_and_other_mistakes(trained, cli, tmp_path):
    scene, run = trained
    model = run / "checkpoints" / "step-00000008" / "model"
    code, _, err = cli("nerf", "eval", model)
    assert code != 0 and "--split" in err
    code, _, err = cli("nerf", "eval", model, "--split", scene / "transforms_val.json")
    assert code == 0, err
    code, _, err = cli("nerf", "train", scene, "--out", tmp_path / "r", "--model", "voxels")
    assert code != 0 and "grid or mlp" in err
    for key in ("model.resolution=100000", "model.occupancy_resolution=5000"):  # a typo's size
        code, _, err = cli("nerf", "train", scene, "--out", tmp_path / "r", "--set", key)
        assert code == 2 and err.startswith(f"error: {key.split('=')[0]} must be <=")
    code, _, err = cli("nerf", "make-scene", "nope", "--out", tmp_path / "s")
    assert code != 0 and "simple" in err  # lists the known scenes


def test_a_model_folder_alone_scores_and_renders_at_its_training_size(trained, cli, tmp_path):
    """A model trained on half-size views, copied without its run: --split scores the views at
    that size, as its run does, and a pose file without image sizes renders at it."""
    scene, _ = trained
    run = tmp_path / "half"
    train = ["nerf", "train", scene, "--out", run, "--steps", "2", "--set", "downscale=2"]
    assert cli(*train, *TINY, "--threads", "1")[0] == 0
    model = tmp_path / "model"
    shutil.copytree(run / "checkpoints" / "step-00000002" / "model", model)
    code, by_run, err = cli("nerf", "eval", run, "--split", "val", "--threads", "1")
    assert code == 0, err
    code, alone, err = cli("nerf", "eval", model, "--split", scene / "transforms_val.json")
    assert code == 0, err
    by_run, alone = json.loads(by_run), json.loads(alone)
    assert alone["size"] == by_run["size"] == [12, 12] and alone["psnr"] == by_run["psnr"]
    meta = json.loads((scene / "transforms_val.json").read_text())
    for frame in meta["frames"]:  # cameras only: no images, no w and h
        frame["file_path"] = "./nowhere/" + Path(frame["file_path"]).name
    (tmp_path / "poses.json").write_text(json.dumps(meta))
    code, _, err = cli("nerf", "render", model, "--pose", tmp_path / "poses.json", "--out",
                       tmp_path / "v")  # fmt: skip
    assert code == 0, err
    assert Image.open(tmp_path / "v" / "view_0000.png").size == (12, 12)


def test_orbit_circles_the_centre_at_the_rigs_distance_and_elevation():
    eye = torch.tensor([[4.0, 0.0, 2.0], [0.0, 4.0, 2.0], [-4.0, 0.0, 2.0]])
    rig = Cameras.from_fov(look_at(eye, torch.zeros(3), torch.tensor([0.0, 0.0, 1.0])), 8, 6, 0.7)
    cams = orbit(rig, 12, center=torch.zeros(3))
    dist = cams.centers.norm(dim=-1)
    assert torch.allclose(dist, torch.full((12,), math.sqrt(20)), atol=1e-4)
    assert torch.allclose(cams.centers[:, 2], torch.full((12,), 2.0), atol=1e-4)
    assert torch.allclose(cams.centers[0], eye[0], atol=1e-4)  # starts at the first camera
    forward = -cams.c2w[:, :3, 2]  # OpenGL cameras look down -z
    to_centre = -cams.centers / dist[:, None]
    assert torch.allclose(forward, to_centre, atol=1e-5)
    assert (cams.width, cams.height) == (8, 6) and torch.equal(cams.fx, rig.fx[:1].expand(12))
    low = orbit(rig, 4, center=torch.zeros(3), elevation=0.0, radius=2.0)
    assert torch.allclose(low.centers[:, 2], torch.zeros(4), atol=1e-5)
    assert torch.allclose(low.centers.norm(dim=-1), torch.full((4,), 2.0), atol=1e-5)


def test_pose_files_need_no_images_and_match_the_scene(trained, tmp_path):
    scene, _ = trained
    meta = json.loads((scene / "transforms_test.json").read_text())
    cams = scene_cameras(scene, "test")
    for frame in meta["frames"]:
        frame["file_path"] = "./nowhere/" + Path(frame["file_path"]).name
    poses = tmp_path / "poses.json"
    poses.write_text(json.dumps({**meta, "w": 24, "h": 24}))
    got = load_poses(poses)
    assert torch.allclose(got.c2w, cams.c2w) and torch.allclose(got.fx, cams.fx)
    del meta["camera_angle_x"]
    poses.write_text(json.dumps({**meta, "w": 24, "h": 24}))
    with pytest.raises(Exception, match="no focal length"):
        load_poses(poses)


def test_depth_image_and_video_files(tmp_path):
    depth = torch.tensor([[2.0, 3.0], [4.0, 9.0]])
    acc = torch.tensor([[1.0, 1.0], [1.0, 0.0]])
    image = depth_image(depth, acc, near=2.0, far=4.0)
    assert image.shape == (2, 2, 3) and image[0, 0, 0] == 255  # near: white
    assert image[0, 0, 0] > image[0, 1, 0] > image[1, 0, 0] > 0 and image[1, 1, 0] == 0
    frames = [np.full((10, 14, 3), 40 * i, dtype=np.uint8) for i in range(4)]
    write_video(frames, tmp_path / "a.gif", fps=10)
    assert Image.open(tmp_path / "a.gif").n_frames == 4
    pytest.importorskip("imageio_ffmpeg", reason="MP4 needs the video extra (imageio-ffmpeg)")
    import imageio.v3 as iio

    write_video(frames, tmp_path / "a.mp4", fps=10)
    video = iio.imread(tmp_path / "a.mp4")
    assert video.shape == (4, 10, 14, 3)
    assert abs(float(video[3].mean()) - 120) < 8  # the frames, in order


def test_train_views_takes_that_many_images_spread_over_the_split(trained):
    from pixelforge.errors import ConfigError
    from pixelforge.nerf.scenes import load_scene
    from pixelforge.training.nerf import RayDataset

    scene_dir, _ = trained
    scene = load_scene(scene_dir, splits=["train"])
    every = RayDataset(scene)
    three = RayDataset(scene, views=3)
    assert every.views.tolist() == list(range(6)) and three.views.tolist() == [0, 2, 5]
    assert len(three) == 3 * 24 * 24
    image_two = scene.splits["train"].images[2].reshape(-1, 3)
    assert torch.equal(three.rgb[24 * 24 : 2 * 24 * 24], image_two)
    _, d = scene.splits["train"].cameras[2].rays()
    assert torch.equal(three.directions[24 * 24 : 2 * 24 * 24], d.reshape(-1, 3))
    with pytest.raises(ConfigError, match="has 6 training views"):
        RayDataset(scene, views=7)


def test_a_background_is_for_images_with_alpha(trained, cli, tmp_path):
    scene, _ = trained
    black = ["--set", "model.background=[0,0,0]"]
    code, _, err = cli(
        "nerf", "train", scene, "--out", tmp_path / "b", "--steps", "1", *TINY, *black
    )
    assert code == 0, err  # RGBA images: composited on black, and the model renders on black
    rgb = tmp_path / "rgb"
    (rgb / "train").mkdir(parents=True)
    meta = json.loads((scene / "transforms_train.json").read_text())
    for frame in meta["frames"]:
        name = Path(frame["file_path"]).name + ".png"
        Image.open(scene / "train" / name).convert("RGB").save(rgb / "train" / name)
    (rgb / "transforms_train.json").write_text(json.dumps(meta))
    code, _, err = cli("nerf", "train", rgb, "--out", tmp_path / "c", "--steps", "1", *TINY, *black)
    assert code != 0 and "no alpha channel" in err and "Traceback" not in err
    grey = ["--set", "model.background=[0.5,0.5,0.5]"]
    code, _, err = cli("nerf", "train", scene, "--out", tmp_path / "d", *TINY, *grey)
    assert code != 0 and "white [1,1,1] or black" in err
