"""Fast neural style: train then stylize any size, the style image recorded and kept across
resume, clear errors for a missing style, pytorch/examples checkpoint import, tiling."""

from __future__ import annotations

import hashlib
import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from pixelforge import hub, runs
from pixelforge.config import from_dict
from pixelforge.errors import ConfigError, ModelLoadError
from pixelforge.features.vgg import RandomWeightsWarning
from pixelforge.models.fast_style import FastStyle, FastStyleConfig, from_pytorch_examples
from pixelforge.tasks.image2image import apply_model
from pixelforge.tasks.tiling import run_tiled
from pixelforge.training.run import prepare_run
from pixelforge.training.trainer import Trainer

from conftest import tiny_spec


@pytest.fixture(autouse=True)
def _quiet():
    """One thread (a shared 2-core machine; conftest restores it) and no VGG-weights warning:
    tests run offline with the seeded random VGG."""
    torch.set_num_threads(1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RandomWeightsWarning)
        yield


def _style(path: Path, seed: int = 0) -> Path:
    """A small striped colour image, 40 x 56."""
    g = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:40, 0:56]
    stripes = ((xx + yy) // 4 % 2)[..., None] * g.integers(0, 256, 3)
    pixels = np.clip(stripes + g.integers(0, 40, (40, 56, 3)), 0, 255).astype(np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path)
    return path


def _train(run: Path, style: Path, steps: int = 2) -> Trainer:
    spec = tiny_spec("fast-style", run, train={"style": str(style), "steps": steps})
    trainer = Trainer(spec, run, progress=False)
    trainer.fit()
    return trainer


def test_trains_then_stylizes_any_size_and_records_the_style(tmp_path):
    style = _style(tmp_path / "my style.png")
    _train(tmp_path / "run", style)
    model = hub.load(tmp_path / "run")
    assert isinstance(model, FastStyle) and model.config.image_size == 32
    digest = hashlib.sha256(style.read_bytes()).hexdigest()
    assert (model.config.style_name, model.config.style_sha256) == ("my style.png", digest)
    _, last = runs.latest_checkpoint(tmp_path / "run")
    saved = json.loads((last / runs.MODEL_SUBDIR / "config.json").read_text())
    assert saved["config"]["style_sha256"] == digest

    for h, w in ((37, 53), (50, 70)):  # not multiples of 4, not square; larger than training
        image = torch.rand(3, h, w, generator=torch.Generator().manual_seed(h))
        out = apply_model(model, image)
        assert out.shape == (3, h, w) and bool(torch.isfinite(out).all())


def test_stylize_command_runs_a_trained_model_with_strength(tmp_path, cli):
    style = _style(tmp_path / "style.png")
    _train(tmp_path / "run", style)
    content = _style(tmp_path / "photo.png", seed=3)  # 40 x 56, any image will do
    code, _, err = cli(
        "stylize", content, "--model", tmp_path / "run", "--strength", "0.5", "--out",
        tmp_path / "half.png", "--threads", "1",
    )  # fmt: skip
    assert code == 0, err
    x = torch.from_numpy(np.asarray(Image.open(content).convert("RGB")).copy())
    x = x.permute(2, 0, 1).float() / 255
    full = apply_model(hub.load(tmp_path / "run"), x)
    half = np.asarray(Image.open(tmp_path / "half.png").convert("RGB")).astype(np.float64) / 255
    expected = ((x + full) / 2).permute(1, 2, 0).numpy()
    assert half.shape == expected.shape and np.abs(half - expected).max() <= 1 / 255 + 1e-6


def test_a_builtin_style_trains_without_a_file(tmp_path):
    trainer = _train(tmp_path / "run", "builtin:strokes")  # type: ignore[arg-type]
    model = hub.load(tmp_path / "run")
    assert model.config.style_name == "builtin:strokes" and model.config.style_sha256
    del trainer
    with pytest.raises(ConfigError, match="unknown built-in style"):
        _train(tmp_path / "bad", "builtin:nope")  # type: ignore[arg-type]


def test_the_colour_term_targets_the_style_pixels_and_is_logged(tmp_path):
    from pixelforge.losses.perceptual import gram_matrix
    from pixelforge.training.fast_style import read_style

    style = _style(tmp_path / "style.png")
    spec = tiny_spec(
        "fast-style", tmp_path / "run", train={"style": str(style), "steps": 2, "color_weight": 5}
    )
    trainer = Trainer(spec, tmp_path / "run", progress=False)
    trainer.fit()
    target = trainer.task.target.gram("rgb")
    image, _ = read_style(str(style), 32)  # the tiny config's style_size
    assert torch.allclose(target, gram_matrix(image), atol=1e-6)
    rows = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert all(row["color"] >= 0 for row in rows if "color" in row) and any(
        "color" in r for r in rows
    )


def test_resume_keeps_the_style_even_when_the_file_is_gone(tmp_path):
    style = _style(tmp_path / "style.png")
    trainer = _train(tmp_path / "run", style)
    grams = {k: v.clone() for k, v in trainer.task.modules["style"].state_dict().items()}
    style.unlink()
    spec, resumed = prepare_run(None, None, tmp_path / "run", overrides={"train": {"steps": 3}})
    again = Trainer(spec, tmp_path / "run", progress=False)
    again.fit()
    assert resumed and again.step == 3
    for k, v in again.task.modules["style"].state_dict().items():
        assert torch.equal(v, grams[k]), k
    assert hub.load(tmp_path / "run").config.style_name == "style.png"

    _style(style, seed=1)  # another image under the same name: refused
    spec, _ = prepare_run(None, None, tmp_path / "run", overrides={"train": {"steps": 4}})
    with pytest.raises(ConfigError, match="not the image this run was trained on"):
        Trainer(spec, tmp_path / "run", progress=False).fit()


def test_missing_or_unreadable_style_is_a_one_line_error(tmp_path, cli):
    base = ["train", "fast-style", "--data", "digits", "--no-progress", "--set", "train.device=cpu"]
    base += [
        "--set",
        "model.image_size=16",
        "--set",
        "model.width=4",
        "--set",
        "train.batch_size=8",
    ]
    code, _, err = cli(*base, "--out", tmp_path / "a")
    assert code != 0 and "--set train.style=" in err and "Traceback" not in err
    code, _, err = cli(*base, "--out", tmp_path / "b", "--set", f"train.style={tmp_path}/nope.jpg")
    assert code != 0 and "nope.jpg" in err and "no such file" in err and "Traceback" not in err
    # nothing of the refused run is left, so the same --out starts afresh with a good style
    assert not (tmp_path / "b" / "run.json").exists()
    style = _style(tmp_path / "style.png")
    code, _, err = cli(
        *base, "--out", tmp_path / "b", "--set", f"train.style={style}", "--set", "train.steps=1"
    )
    assert code == 0, err
    (tmp_path / "notes.txt").write_text("not an image")
    code, _, err = cli(*base, "--out", tmp_path / "c", "--set", f"train.style={tmp_path}/notes.txt")
    assert code != 0 and "notes.txt" in err and "train.style" in err and "Traceback" not in err


# ------------------------------------------------------------------- pytorch/examples import


def _examples_state(width: int, blocks: int, seed: int) -> dict[str, torch.Tensor]:
    """A random state dict with the key layout of pytorch/examples' TransformerNet, including
    the running statistics old instance norms saved."""
    g = torch.Generator().manual_seed(seed)
    w = width
    convs = {"conv1": (w, 3, 9), "conv2": (2 * w, w, 3), "conv3": (4 * w, 2 * w, 3)}
    for i in range(1, blocks + 1):
        convs |= {f"res{i}.conv1": (4 * w, 4 * w, 3), f"res{i}.conv2": (4 * w, 4 * w, 3)}
    convs |= {"deconv1": (2 * w, 4 * w, 3), "deconv2": (w, 2 * w, 3), "deconv3": (3, w, 9)}
    norms = {"in1": w, "in2": 2 * w, "in3": 4 * w, "in4": 2 * w, "in5": w}
    for i in range(1, blocks + 1):
        norms |= {f"res{i}.in1": 4 * w, f"res{i}.in2": 4 * w}
    sd: dict[str, torch.Tensor] = {}
    for name, (cout, cin, k) in convs.items():
        sd[f"{name}.conv2d.weight"] = (
            torch.randn(cout, cin, k, k, generator=g) / (cin * k * k) ** 0.5
        )
        sd[f"{name}.conv2d.bias"] = torch.randn(cout, generator=g) * 0.1
    for name, c in norms.items():
        sd[f"{name}.weight"] = 1 + 0.3 * torch.randn(c, generator=g)
        sd[f"{name}.bias"] = 0.3 * torch.randn(c, generator=g)
        sd[f"{name}.running_mean"] = torch.randn(c, generator=g)
        sd[f"{name}.running_var"] = torch.rand(c, generator=g) + 0.5
    sd["deconv3.conv2d.weight"] *= 60.0  # an output spread like a trained model's (0..255)
    sd["deconv3.conv2d.bias"] += 127.5
    return sd


def _reference(sd: dict[str, torch.Tensor], x: torch.Tensor, blocks: int) -> torch.Tensor:
    """pytorch/examples' TransformerNet.forward written out with torch.nn.functional."""

    def conv(h: torch.Tensor, name: str, k: int, stride: int = 1) -> torch.Tensor:
        h = F.pad(h, [k // 2] * 4, mode="reflect")
        return F.conv2d(h, sd[f"{name}.conv2d.weight"], sd[f"{name}.conv2d.bias"], stride)

    def norm(h: torch.Tensor, name: str) -> torch.Tensor:
        return F.instance_norm(h, weight=sd[f"{name}.weight"], bias=sd[f"{name}.bias"], eps=1e-5)

    y = F.relu(norm(conv(x, "conv1", 9), "in1"))
    y = F.relu(norm(conv(y, "conv2", 3, 2), "in2"))
    y = F.relu(norm(conv(y, "conv3", 3, 2), "in3"))
    for i in range(1, blocks + 1):
        r = F.relu(norm(conv(y, f"res{i}.conv1", 3), f"res{i}.in1"))
        y = y + norm(conv(r, f"res{i}.conv2", 3), f"res{i}.in2")
    y = F.relu(norm(conv(F.interpolate(y, scale_factor=2, mode="nearest"), "deconv1", 3), "in4"))
    y = F.relu(norm(conv(F.interpolate(y, scale_factor=2, mode="nearest"), "deconv2", 3), "in5"))
    return conv(y, "deconv3", 9)


@torch.no_grad()
def test_pytorch_examples_checkpoint_imports_with_the_same_output(tmp_path, cli):
    width, blocks = 8, 5
    sd = _examples_state(width, blocks, seed=0)
    torch.save(sd, tmp_path / "candy.pth")
    out = tmp_path / "candy"
    code, _, err = cli("import", "fast-style", tmp_path / "candy.pth", "--out", out)
    assert code != 0 and "--allow-pickle" in err and not out.exists()
    code, _, err = cli(
        "import", "fast-style", tmp_path / "candy.pth", "--out", out, "--allow-pickle"
    )
    assert code == 0, err
    model = hub.load(out)
    assert isinstance(model, FastStyle)
    assert (model.config.width, model.config.n_blocks) == (width, blocks)
    assert model.card["source"] == "candy.pth"

    x255 = torch.rand(2, 3, 36, 44, generator=torch.Generator().manual_seed(1)) * 255
    ref = _reference(sd, x255, blocks)
    assert float(ref.std()) > 20 and float((ref - ref.clamp(0, 255)).abs().mean()) < 5
    assert torch.allclose(model.transform(x255), ref, atol=1e-2, rtol=1e-4)
    assert torch.allclose(model.translate(x255 / 127.5 - 1), ref / 127.5 - 1, atol=1e-4)
    # what `stylize` of pytorch/examples saves: the output clamped to 0..255
    image = x255[0] / 255
    expected = ref[0].clamp(0, 255) / 255
    assert float((apply_model(model, image) - expected).abs().max()) < 1e-4

    broken = {k: v for k, v in sd.items() if k != "res3.in2.bias"}
    with pytest.raises(ModelLoadError, match=r"missing: res3\.in2\.bias"):
        from_pytorch_examples(broken)


# ------------------------------------------------------------------- tiling


def _texture() -> torch.Tensor:
    """A 200 x 300 crop of scikit-image's astronaut, 3 x H x W in [0, 1]."""
    from skimage import data as skdata

    pixels = skdata.astronaut()[100:300, 150:450]
    return torch.from_numpy(pixels.copy()).permute(2, 0, 1).float() / 255


@torch.no_grad()
def test_tiled_output_is_close_to_one_pass_with_whole_image_statistics():
    torch.manual_seed(0)
    model = from_pytorch_examples(_examples_state(8, 2, seed=3))
    assert model.uses_instance_norm and model.tile_overlap >= 30
    image = _texture()
    whole = apply_model(model, image, tile=1024)  # one pass
    tiled = apply_model(model, image, tile=96)  # tiles with whole-image statistics

    def fn(t: torch.Tensor, m: torch.Tensor | None) -> torch.Tensor:
        return model.translate(t)

    x = image[None] * 2 - 1
    plain = run_tiled(fn, x, multiple=4, tile=96, overlap=model.tile_overlap)
    plain = ((plain[0] + 1) / 2).clamp(0, 1)  # tiles with their own statistics
    assert tiled.shape == whole.shape == image.shape
    err, err_plain = float((tiled - whole).abs().mean()), float((plain - whole).abs().mean())
    assert err_plain > 0.01  # the test can fail
    assert err < 0.01 and err < 0.3 * err_plain


def test_config_errors():
    with pytest.raises(ConfigError, match="multiple of 4"):
        FastStyleConfig(image_size=30)
    with pytest.raises(ConfigError, match="channels must be 3"):
        FastStyleConfig(channels=1)


@torch.no_grad()
def test_output_layers_tanh_paints_every_photo_alike_residual_starts_from_it():
    from pixelforge.style.gatys import range_penalty

    x = torch.rand(1, 3, 32, 40, generator=torch.Generator().manual_seed(0)) * 1.6 - 0.8
    cast = torch.tensor([0.15, -0.1, 0.05]).view(1, 3, 1, 1)  # a global colour cast
    torch.manual_seed(0)
    kw = {"image_size": 32, "width": 8, "n_blocks": 2}
    tanh = FastStyle(FastStyleConfig(**kw))  # the default for new networks
    residual = FastStyle(FastStyleConfig(**kw, output="residual"))
    plain = FastStyle(FastStyleConfig(**kw, output="linear"))
    # tanh: always in range, and blind to the photo's cast (instance norm removes it), so one
    # network gives every photo the same palette
    assert tanh.config.output == "tanh"
    assert float(tanh.translate(x * 50).abs().max()) <= 1.0
    assert torch.allclose(tanh.translate(x + cast), tanh.translate(x), atol=1e-4)
    # residual: starts at the photo, and keeps its cast
    assert float((residual.translate(x) - x).abs().mean()) < 0.02
    shifted = residual.translate(x + cast) - residual.translate(x)
    assert torch.allclose(shifted, cast.expand_as(shifted), atol=1e-4)
    assert float((plain.translate(x) - x).abs().mean()) > 0.3  # pytorch/examples' plain output
    # configs written before `output` existed still load, as what they were
    assert from_dict(FastStyleConfig, {"residual": True}).output == "residual"
    assert from_dict(FastStyleConfig, {"residual": False}).output == "linear"
    inside = torch.rand(2, 3, 8, 8)
    assert float(range_penalty(inside)) == 0.0
    outside = inside.clone()
    outside[0, 0, 0, 0], outside[1, 2, 3, 4] = 1.5, -0.5
    assert float(range_penalty(outside)) == pytest.approx(0.5 / outside.numel())
