"""Training your own restoration models (`pixelforge train restore`) and using the runs."""

from __future__ import annotations

import torch
from PIL import Image

from pixelforge import hub
from pixelforge.models.restore import RestoreConfig, RestoreModel

from conftest import FIXTURES

BUTTERFLY = FIXTURES / "photos" / "set5-butterfly.png"


def small_model(task: str = "sr", **kw) -> RestoreModel:
    torch.manual_seed(0)
    model = RestoreModel(RestoreConfig(task=task, image_size=24, width=8, blocks=1, **kw))
    for p in model.parameters():  # untrained tails are zero: make the output depend on the net
        p.data.normal_(0, 0.05)
    return model.eval()


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
    code, _, err = cli("upscale", image, "--model", sr3, "--scale", 4, "--out", tmp_path / "b.png")
    assert code == 2 and "x3, not x4" in err and len(err.strip().splitlines()) == 1
    code, _, err = cli("upscale", image, "--out", tmp_path / "c.png")
    assert code == 0, err
    with Image.open(tmp_path / "c.png") as im:
        assert im.size == (80, 64)
