"""Translation as users meet it: datasets laid out as the pix2pix/CycleGAN datasets are, junyanz
checkpoints of every supported layout, and `translate` / `pixelforge.translate` on real images."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

import pixelforge
from pixelforge import hub
from pixelforge.data import inspect_dataset
from pixelforge.errors import ConfigError, DataError
from pixelforge.models.cyclegan import CycleGAN, CycleGANConfig
from pixelforge.training.trainer import Trainer

from conftest import tiny_spec


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)


def _save(path: Path, pixels: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path)


def _photo(h: int, w: int, seed: int = 0) -> np.ndarray:
    """A crop of scikit-image's astronaut (a real photo, in colour)."""
    from skimage import data as skdata

    y, x = 40 * seed, 30 * seed
    return np.ascontiguousarray(skdata.astronaut()[y : y + h, x : x + w])


# ----------------------------------------------------------------------------- datasets


def test_grey_sketches_paired_with_colour_photos_train_a_colour_model(tmp_path):
    for i in range(3):
        photo = _photo(24, 32, i)
        _save(tmp_path / "A" / f"{i}.png", photo.mean(axis=2).astype(np.uint8))  # grey
        _save(tmp_path / "B" / f"{i}.jpg", photo)
    assert inspect_dataset(f"paired:{tmp_path}").channels == 3
    spec = tiny_spec("pix2pix", tmp_path / "run", dataset=f"paired:{tmp_path}")
    assert spec.model.channels == 3  # B's colour is learnt, not turned grey


def test_pix2pix_splits_train_is_read_and_held_out_images_never_mixed_in(tmp_path):
    side_by_side = np.concatenate([_photo(20, 20, 0), _photo(20, 20, 1)], axis=1)
    facades = tmp_path / "facades"  # as the pix2pix datasets unpack
    for split, n in (("train", 3), ("val", 2), ("test", 1)):
        for i in range(n):
            _save(facades / split / f"{i}.jpg", side_by_side)
    info = inspect_dataset(f"paired:{facades}")
    assert info.size == 3 and str(facades / "train") in info.description

    held_out = tmp_path / "held-out"  # no train/: its images are not training images
    for split in ("val", "test"):
        _save(held_out / split / "0.jpg", side_by_side)
    with pytest.raises(DataError, match=r"no train/.*paired:.*held-out/val"):
        inspect_dataset(f"paired:{held_out}")
    assert inspect_dataset(f"paired:{held_out}/val").size == 1

    folders = tmp_path / "own"  # A/train, A/test, B/train, B/test, paired by name
    for split, n in (("train", 2), ("test", 3)):
        for i in range(n):
            for side in ("A", "B"):
                _save(folders / side / split / f"{i}.png", _photo(16, 16, i))
    assert inspect_dataset(f"paired:{folders}").size == 2


def test_unpaired_folder_without_both_train_sides_names_what_it_has(tmp_path):
    for side in ("trainA", "testA", "testB"):
        _save(tmp_path / side / "0.png", _photo(16, 16))
    with pytest.raises(DataError, match=r"it has testA/, testB/, trainA/"):
        inspect_dataset(f"unpaired:{tmp_path}")


def test_pix2pix_refuses_unpaired_data_before_training(tmp_path):
    for side in ("trainA", "trainB"):
        for i in range(2):
            _save(tmp_path / "data" / side / f"{i}.png", _photo(16, 16, i))
    spec = tiny_spec("pix2pix", tmp_path / "run", dataset=f"unpaired:{tmp_path / 'data'}")
    with pytest.raises(DataError, match=r"aligned pairs.*cyclegan"):
        Trainer(spec, tmp_path / "run", progress=False)


# ----------------------------------------------------------------------------- junyanz import


def _norm(kind: str, c: int) -> nn.Module:
    return nn.BatchNorm2d(c) if kind == "batch" else nn.InstanceNorm2d(c)


class _JunyanzBlock(nn.Module):
    def __init__(self, d: int, norm: str, dropout: bool) -> None:
        super().__init__()
        bias = norm == "instance"
        layers = [nn.ReflectionPad2d(1), nn.Conv2d(d, d, 3, bias=bias), _norm(norm, d), nn.ReLU()]
        layers += [nn.Dropout(0.5)] if dropout else []
        layers += [nn.ReflectionPad2d(1), nn.Conv2d(d, d, 3, bias=bias), _norm(norm, d)]
        self.conv_block = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv_block(x)


class _JunyanzResnet(nn.Module):
    """The ResnetGenerator layout of pytorch-CycleGAN-and-pix2pix, built from torch modules so
    that its state dict keys are the ones their checkpoints hold (one Sequential ``model``;
    each residual block a Sequential ``conv_block``, with Dropout after the first ReLU when
    trained with dropout, and biases only with instance norm)."""

    def __init__(self, ngf: int, blocks: int, norm: str, dropout: bool) -> None:
        super().__init__()
        bias = norm == "instance"

        def nl(c: int) -> nn.Module:
            return _norm(norm, c)

        layers: list[nn.Module] = [
            nn.ReflectionPad2d(3), nn.Conv2d(3, ngf, 7, bias=bias), nl(ngf), nn.ReLU(),
        ]  # fmt: skip
        for m in (1, 2):
            layers += [nn.Conv2d(ngf * m, 2 * ngf * m, 3, 2, 1, bias=bias), nl(2 * ngf * m)]
            layers += [nn.ReLU()]
        layers += [_JunyanzBlock(4 * ngf, norm, dropout) for _ in range(blocks)]
        for m in (4, 2):
            layers += [
                nn.ConvTranspose2d(ngf * m, ngf * m // 2, 3, 2, 1, output_padding=1, bias=bias),
                nl(ngf * m // 2), nn.ReLU(),
            ]  # fmt: skip
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, 3, 7), nn.Tanh()]
        self.model = nn.Sequential(*layers)
        g = torch.Generator().manual_seed(0)
        for module in self.modules():  # trained-looking weights and batch statistics
            if isinstance(module, nn.Conv2d | nn.ConvTranspose2d):
                module.weight.data = torch.randn(module.weight.shape, generator=g) * 0.2
            if isinstance(module, nn.BatchNorm2d):
                module.running_mean.uniform_(-0.3, 0.3, generator=g)
                module.running_var.uniform_(0.5, 1.5, generator=g)
                module.weight.data.uniform_(0.8, 1.2, generator=g)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


@pytest.mark.parametrize(("dropout", "bn_stats"), [(False, "image"), (True, "running")])
def test_junyanz_resnet_with_batch_norm_imports_and_translates_as_theirs(
    tmp_path, dropout, bn_stats
):
    # e.g. their pix2pix with --netG resnet_6blocks (batch norm), with or without --no_dropout;
    # their test.py runs it in training mode (each image's own batch statistics) unless --eval
    theirs = _JunyanzResnet(ngf=4, blocks=2, norm="batch", dropout=dropout)
    torch.save(theirs.state_dict(), tmp_path / "latest_net_G.pth")
    theirs.train(bn_stats == "image")
    for m in theirs.modules():
        if isinstance(m, nn.Dropout):
            m.eval()  # ours never drops out; theirs would give a random output
    from pixelforge.tasks.junyanz import import_junyanz

    model = import_junyanz(tmp_path / "latest_net_G.pth", allow_pickle=True, bn_stats=bn_stats)
    assert isinstance(model, CycleGAN) and model.config.dropout == dropout
    image = torch.from_numpy(_photo(36, 52)).permute(2, 0, 1).float() / 255
    with torch.no_grad():
        want = (theirs(image[None] * 2 - 1)[0] + 1) / 2
    got = pixelforge.translate(model, image)
    assert torch.allclose(got, want.clamp(0, 1), atol=1e-5)


def test_junyanz_import_of_a_whole_pickled_model_is_one_error_line(tmp_path, cli):
    torch.save(_JunyanzResnet(ngf=2, blocks=1, norm="instance", dropout=False), tmp_path / "G.pth")
    code, _, err = cli(
        "import", "junyanz", tmp_path / "G.pth", "--allow-pickle", "--out", tmp_path / "m"
    )
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "_JunyanzResnet" in err and "state_dict()" in err


# ----------------------------------------------------------------------------- translate


@pytest.fixture
def cyclegan(tmp_path) -> Path:
    torch.manual_seed(0)
    config = CycleGANConfig(image_size=16, channels=3, ngf=4, n_blocks=1, d_layers=2)
    return hub.save_model(CycleGAN(config), tmp_path / "cg")


def test_translate_api_takes_the_image_forms_and_keeps_alpha(tmp_path, cyclegan):
    photo = _photo(30, 41)
    _save(tmp_path / "photo.png", photo)
    model = hub.load(cyclegan)
    from_path = pixelforge.translate(cyclegan, tmp_path / "photo.png")
    assert from_path.shape == (3, 30, 41)
    assert torch.equal(pixelforge.translate(model, Image.fromarray(photo)), from_path)
    assert torch.equal(pixelforge.translate(model, photo), from_path)
    back = pixelforge.translate(model, photo, direction="BtoA")
    assert not torch.equal(back, from_path) and model.direction == "AtoB"  # the model's own

    alpha = np.zeros((30, 41), dtype=np.uint8)
    alpha[5:25, 8:30] = 200
    _save(tmp_path / "cutout.png", np.dstack([photo, alpha]))
    cutout = pixelforge.translate(model, Image.open(tmp_path / "cutout.png"))
    assert cutout.shape == (4, 30, 41)
    assert torch.equal((cutout[3] * 255).round().to(torch.uint8), torch.from_numpy(alpha))


def test_translate_api_takes_the_command_s_device_names(cyclegan):
    """device="auto" (the command's default, --device auto) was a torch error."""
    model, photo = hub.load(cyclegan), _photo(30, 41)
    on_auto = pixelforge.translate(model, photo, device="auto")
    assert torch.equal(on_auto, pixelforge.translate(model, photo))
    with pytest.raises(ConfigError, match="unknown device 'gpu'; use auto, cpu, cuda or mps"):
        pixelforge.translate(model, photo, device="gpu")


def test_translate_cli_keeps_alpha_and_names_outputs_as_other_commands(tmp_path, cyclegan, cli):
    photo = _photo(30, 41)
    _save(tmp_path / "cutout.png", np.dstack([photo, np.full((30, 41), 128, np.uint8)]))
    code, _, err = cli("translate", cyclegan, tmp_path / "cutout.png", "--out", tmp_path / "res")
    assert code == 0, err
    with Image.open(tmp_path / "res.png") as written:  # ".png" added, as upscale does
        assert written.mode == "RGBA" and written.getextrema()[3] == (128, 128)
    code, _, err = cli("translate", cyclegan, tmp_path / "cutout.png", "--out", tmp_path / "x.jpg")
    assert code == 2 and f"use {tmp_path / 'x.png'}" in err


def test_translate_refuses_a_model_of_another_family(tmp_path, cli):
    from pixelforge.models.restore import RestoreConfig, RestoreModel

    restore = hub.save_model(
        RestoreModel(RestoreConfig(task="denoise", width=4, blocks=1)), tmp_path / "r"
    )
    _save(tmp_path / "photo.png", _photo(20, 20))
    code, _, err = cli("translate", restore, tmp_path / "photo.png", "--out", tmp_path / "o.png")
    assert code == 2 and "restore model" in err and "pix2pix and cyclegan" in err
    assert f"run this one with `pixelforge denoise` --model {restore}" in err  # the way on
    assert not (tmp_path / "o.png").exists()
    code, _, err = cli(
        "translate", "dcgan-digits", tmp_path / "photo.png", "--out", tmp_path / "o.png"
    )
    assert code == 2 and "`pixelforge sample dcgan-digits`" in err


def test_translate_a_few_pixels_with_cyclegan_is_an_error_not_a_crash(tmp_path, cyclegan, cli):
    _save(tmp_path / "in" / "dot.png", _photo(3, 4))
    _save(tmp_path / "in" / "photo.png", _photo(9, 5))
    code, _, err = cli("translate", cyclegan, tmp_path / "in", "--out", tmp_path / "out")
    assert code == 2 and "dot.png" in err and "too small" in err
    assert (tmp_path / "out" / "photo.png").exists()


def test_translate_a_strip_one_pixel_wide_is_an_error_not_a_crash(tmp_path, cyclegan, cli):
    # 1 x 40 pixels: the test above's 4x4 rule let it through to reflection padding's
    # RuntimeError at a quarter of its width
    _save(tmp_path / "in" / "strip.png", _photo(40, 1))
    _save(tmp_path / "in" / "photo.png", _photo(9, 5))
    code, _, err = cli("translate", cyclegan, tmp_path / "in", "--out", tmp_path / "out")
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "strip.png" in err and "1x40 pixels" in err and "at least 5 pixels" in err
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["photo.png"]
