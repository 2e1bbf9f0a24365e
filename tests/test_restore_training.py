"""Training your own restoration models (`pixelforge train restore`) and using the runs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from PIL import Image

from pixelforge import hub
from pixelforge.errors import ConfigError
from pixelforge.io.images import read_provenance
from pixelforge.models.restore import RestoreConfig, RestoreModel
from pixelforge.training.restore import RestoreTask, RestoreTrainConfig, make_pair
from pixelforge.training.run import prepare_run

from conftest import FIXTURES, small_restore_model

BUTTERFLY = FIXTURES / "photos" / "set5-butterfly.png"


def small_model(task: str = "sr", **kw) -> RestoreModel:
    return small_restore_model(task, 24, **kw)


def test_upscale_with_a_model_uses_its_own_scale(cli, tmp_path):
    # a user's x3 model: `upscale --model` enlarges x3 without being told; a --scale that
    # contradicts the model is refused; without --model the shipped sr-x4 stays the default
    image = tmp_path / "in.png"
    Image.open(BUTTERFLY).crop((0, 0, 20, 16)).save(image)
    sr3 = hub.save_model(small_model("sr", scale=3), tmp_path / "sr3")
    code, _, err = cli("upscale", image, "--model", sr3, "--out", tmp_path / "a.png")
    assert code == 0, err
    with Image.open(tmp_path / "a.png") as im:
        assert im.size == (60, 48)
    assert read_provenance(tmp_path / "a.png")["scale"] == 3  # pixelforge info tells the scale
    code, _, err = cli("upscale", image, "--model", sr3, "--scale", 4, "--out", tmp_path / "b.png")
    assert code == 2 and "x3, not x4" in err and len(err.strip().splitlines()) == 1
    code, _, err = cli("upscale", image, "--out", tmp_path / "c.png")
    assert code == 0, err
    with Image.open(tmp_path / "c.png") as im:
        assert im.size == (80, 64)


TINY_RUN = [
    "--set", "data.patches=2", "--set", "model.image_size=16", "--set", "model.width=4",
    "--set", "model.blocks=1", "--set", "model.depth=1", "--set", "train.batch_size=2",
    "--set", "train.sample_every=0", "--set", "train.tensorboard=false", "--device", "cpu",
    "--threads", "1", "--no-progress",
]  # fmt: skip


def photo_folder(root: Path, names: dict[str, str]) -> str:
    """PNG crops of the butterfly under ``root``, one per name, in the mode named (RGB, L)."""
    root.mkdir(parents=True, exist_ok=True)
    with Image.open(BUTTERFLY) as im:
        for i, (name, mode) in enumerate(names.items()):
            im.crop((i * 20, 0, i * 20 + 40, 30)).convert(mode).save(root / f"{name}.png")
    return f"folder:{root}"


def test_colorize_on_grey_photos_is_refused_before_training(cli, tmp_path):
    # a folder of grey scans has no colour to learn: the run would learn to leave photos grey
    grey = photo_folder(tmp_path / "grey", {"a": "L", "b": "L", "c": "RGB"})
    stored_rgb = tmp_path / "grey" / "c.png"  # a grey photo stored as RGB is grey too
    Image.open(stored_rgb).convert("L").convert("RGB").save(stored_rgb)
    out = tmp_path / "run"
    code, _, err = cli(
        "train", "restore", "--data", grey, "--set", "model.task=colorize", "--steps", 1,
        "--out", out, *TINY_RUN,
    )  # fmt: skip
    assert code == 2 and len(err.strip().splitlines()) == 1 and err.startswith("error:")
    assert "grey" in err and "colour photos" in err and not out.exists()
    # one colour photo among grey ones is something to learn from
    mixed = photo_folder(tmp_path / "mixed", {"a": "L", "b": "RGB"})
    code, _, err = cli(
        "train", "restore", "--data", mixed, "--set", "model.task=colorize", "--steps", 1,
        "--out", out, *TINY_RUN,
    )  # fmt: skip
    assert code == 0, err


def test_init_from_a_model_of_another_scale_or_task_names_the_model_and_the_way_out(tmp_path):
    # --init sr-x2 for a x4 run, or a JPEG model to warm-start a denoiser: the error names the
    # model's value (not a "run" the user has not made) and says what to do
    for init, key, value, has in (
        ("sr-x2", "scale", 4, "2"),
        ("jpeg", "task", "denoise", '"jpeg"'),
    ):
        with pytest.raises(ConfigError) as caught:
            prepare_run(
                "restore", "photos", tmp_path / "run", init=init, overrides={"model": {key: value}}
            )
        message = str(caught.value)
        assert f"(--init {init} has {has})" in message and "Drop those settings" in message


def test_info_of_a_trained_run_says_what_it_learned_to_undo(cli, tmp_path):
    # two x2 models on one folder, one for clean bicubic inputs and one fine-tuned from it for
    # blurred, noisy, compressed photos: only the card tells them apart
    photos = photo_folder(tmp_path / "photos", {"a": "RGB", "b": "RGB"})
    base = hub.save_model(small_model("sr", scale=2, depth=1), tmp_path / "base")
    sizes = ["--set", "model.width=8", "--set", "model.blocks=1", "--set", "model.scale=2"]
    runs = {"bicubic": [], "real": ["--set", "train.degradation=real", "--init", base]}
    for name, extra in runs.items():
        code, _, err = cli(
            "train", "restore", "--data", photos, "--steps", 1, "--out", tmp_path / name,
            *TINY_RUN, *sizes, *extra,
        )  # fmt: skip
        assert code == 0, err
    cards = {}
    for name in runs:
        code, out, err = cli("info", tmp_path / name, "--json")
        assert code == 0, err
        cards[name] = json.loads(out)["model"]["card"]
    assert "bicubic x2" in cards["bicubic"]["degradation"] and "init" not in cards["bicubic"]
    assert "blur" in cards["real"]["degradation"] and "JPEG" in cards["real"]["degradation"]
    assert Path(cards["real"]["init"]) == base.resolve()
    code, _, err = cli(
        "train", "restore", "--data", photos, "--steps", 1, "--out", tmp_path / "jpeg",
        "--set", "model.task=jpeg", "--set", "train.jpeg_quality=[30,60]",
        "--set", "train.perceptual_weight=0.5", *TINY_RUN,
    )  # fmt: skip
    assert code == 0, err
    card = json.loads(cli("info", tmp_path / "jpeg", "--json")[1])["model"]["card"]
    assert "JPEG quality 30-60" in card["degradation"] and "0.5 x VGG" in card["loss"]


def test_colorize_trains_with_a_perceptual_loss_on_the_coloured_photo(cli, tmp_path):
    # train.perceptual_weight for a colorizer: the VGG compares RGB photos made of the input's
    # lightness and the a/b colours (it crashed at the first step on the two a/b channels)
    photos = photo_folder(tmp_path / "photos", {"a": "RGB", "b": "RGB"})
    code, _, err = cli(
        "train", "restore", "--data", photos, "--steps", 1, "--out", tmp_path / "run",
        "--set", "model.task=colorize", "--set", "train.perceptual_weight=1", *TINY_RUN,
    )  # fmt: skip
    assert code == 0, err
    logged = json.loads((tmp_path / "run" / "metrics.jsonl").read_text().splitlines()[-1])
    assert logged["perceptual"] > 0
    config = RestoreConfig(task="colorize", image_size=16, width=4, blocks=1, depth=1)
    task = RestoreTask(config, RestoreTrainConfig(perceptual_weight=1))
    clean = torch.rand(1, 3, 16, 16)
    inp, target, _ = make_pair(config, task.train_config, clean, torch.Generator().manual_seed(0))
    _, rgb = task._as_rgb(inp, target, target)
    turned = [torch.rot90(clean.flip(f), k, (-2, -1)) for f in ((), (-1,)) for k in range(4)]
    assert min(float((rgb - (t * 2 - 1)).abs().max()) for t in turned) < 1e-3  # the photo itself


def test_eval_every_is_refused_before_training(cli, tmp_path):
    # the trainer's evaluation samples images for FID: a restore run stopped at the first
    # evaluation, losing the steps since its last checkpoint
    photos = photo_folder(tmp_path / "photos", {"a": "RGB", "b": "RGB"})
    code, _, err = cli(
        "train", "restore", "--data", photos, "--steps", 2, "--out", tmp_path / "run",
        "--set", "model.task=denoise", "--set", "train.eval_every=1", *TINY_RUN,
    )  # fmt: skip
    assert code == 2 and len(err.strip().splitlines()) == 1 and "eval psnr" in err
    assert not (tmp_path / "run").exists()


def test_photos_smaller_than_the_crops_are_named_when_training_starts(cli, tmp_path):
    # a crop of an enlarged photo is a blurred target: the user should know which photos
    photos = photo_folder(tmp_path / "photos", {"a": "RGB", "b": "RGB"})  # 40 x 30
    Image.open(tmp_path / "photos" / "b.png").crop((0, 0, 12, 10)).save(
        tmp_path / "photos" / "b.png"
    )
    code, _, err = cli(
        "train", "restore", "--data", photos, "--steps", 1, "--out", tmp_path / "run",
        "--set", "model.task=denoise", *TINY_RUN,
    )  # fmt: skip
    assert code == 0, err
    assert "1 image is smaller than the 16-pixel crops" in err and "b.png" in err
    assert "a.png" not in err


@pytest.mark.parametrize(
    ("task", "option"),
    [("denoise", "train.degradation=real"), ("jpeg", "train.mask_kind=box")],
)
def test_options_of_another_task_are_refused_not_ignored(cli, tmp_path, task, option):
    # a denoiser asked for real-world degradations would have trained on Gaussian noise alone
    photos = photo_folder(tmp_path / "photos", {"a": "RGB", "b": "RGB"})
    code, _, err = cli(
        "train", "restore", "--data", photos, "--steps", 1, "--out", tmp_path / "run",
        "--set", f"model.task={task}", "--set", option, *TINY_RUN,
    )  # fmt: skip
    assert code == 2 and option.split("=")[0] in err and "leave it out" in err
