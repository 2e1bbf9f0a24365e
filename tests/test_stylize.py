"""Style transfer: Gatys optimisation, colour preservation, strength, built-in styles, the CLI."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from pixelforge import hub
from pixelforge.errors import ConfigError
from pixelforge.features.vgg import RandomWeightsWarning
from pixelforge.io.images import read_provenance, write_png
from pixelforge.restoration.color import rgb_to_lab
from pixelforge.style.builtin import BUILTIN_STYLES, render_style
from pixelforge.style.color import preserve_color
from pixelforge.style.gatys import (
    GatysConfig,
    GatysObjective,
    prepare_style,
    style_transfer,
    style_vgg,
)
from pixelforge.tasks.image2image import apply_model, read_as_tensor
from pixelforge.tasks.stylize import stylize

from conftest import FIXTURES, small_restore_model

BUTTERFLY = FIXTURES / "photos" / "set5-butterfly.png"


@pytest.fixture(scope="module")
def net():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RandomWeightsWarning)
        return style_vgg()


def photo(side: int = 40) -> torch.Tensor:
    x = read_as_tensor(BUTTERFLY)
    return torch.nn.functional.interpolate(x[None], size=(side, side), mode="area")[0]


def builtin(name: str, side: int = 64) -> torch.Tensor:
    return torch.from_numpy(render_style(name, side)).permute(2, 0, 1).float() / 255


def test_gatys_lowers_the_style_loss_and_keeps_the_content(net):
    content, style = photo(64), builtin("strokes", 64)
    cfg = GatysConfig(size=64, iterations=30)  # the default weights
    image, losses = style_transfer(content, style, config=cfg, network=net)
    assert image.shape == (3, 64, 64) and image.min() >= 0 and image.max() <= 1
    objective = GatysObjective(net, content, [prepare_style(style, (64, 64))], config=cfg)
    before = objective.values(content)
    noise = objective.values(torch.rand(3, 64, 64, generator=torch.Generator().manual_seed(0)))
    assert losses["style"] < 0.5 * before["style"]  # the style term really went down ...
    assert losses["content"] < 0.75 * noise["content"]  # ... while the content stayed
    assert losses["total"] < before["total"]
    assert set(losses) >= {"content", "style", "tv", "total"}


def test_preserve_color_keeps_the_contents_chroma_and_takes_the_styles_luminance():
    content = photo(32)
    g = torch.Generator().manual_seed(1)
    styled = (0.25 + 0.5 * torch.rand(3, 32, 32, generator=g)).clamp(0, 1)
    out = preserve_color(styled, content)
    lab_out, lab_c, lab_s = (rgb_to_lab(x[None])[0] for x in (out, content, styled))
    assert (lab_out[1:] - lab_c[1:]).abs().mean() < 2.0  # a/b in [-110, 110]
    assert (lab_out[0] - lab_s[0]).abs().mean() < 2.0  # L in [0, 100]
    assert (lab_out[0] - lab_c[0]).abs().mean() > 5.0


def test_strength_0_is_the_content_and_half_is_the_midpoint(tmp_path):
    model = hub.load(_fast_model(tmp_path / "m"))
    content = photo(36)[:, :, :30]
    full = stylize(content, model=tmp_path / "m", strength=1.0)
    assert torch.allclose(full, apply_model(model, content), atol=1e-6)
    assert torch.equal(stylize(content, model=tmp_path / "m", strength=0.0), content)
    half = stylize(content, model=tmp_path / "m", strength=0.5)
    assert torch.allclose(half, (content + full) / 2, atol=1e-6)
    with pytest.raises(Exception, match="strength must be between 0"):
        stylize(content, model=tmp_path / "m", strength=1.5)


def test_multi_scale_returns_the_requested_size(net):
    content = photo(48)[:, :, :36]  # 48 high, 36 wide
    out = stylize(content, "builtin:mosaic", size=40, scales=(0.5, 1.0), iterations=3, network=net)
    assert out.shape == (3, 40, 30)


def test_grey_content_and_a_tiny_style_image_work(net):
    grey = photo(32).mean(0, keepdim=True)
    tiny = builtin("pointillism", 8)
    with pytest.warns(UserWarning, match="style image is small"):
        out = stylize(grey, tiny, iterations=3, size=32, preserve_color=True, network=net)
    assert out.shape == (3, 32, 32)
    assert (out[0] - out[1]).abs().max() < 0.02 and (out[1] - out[2]).abs().max() < 0.02


def test_pillow_images_and_numpy_arrays_are_taken_as_content_and_style(net):
    # they raised AttributeError; a PIL style was iterated as if it were a list of styles
    content, style = (photo(32) * 255).round() / 255, builtin("mosaic", 32)  # 8-bit values
    as_pil = [
        Image.fromarray((x * 255).round().byte().permute(1, 2, 0).numpy()) for x in (content, style)
    ]
    opts = {"iterations": 2, "size": 32, "network": net}
    expected = stylize(content, style, **opts)
    assert torch.equal(stylize(as_pil[0], as_pil[1], **opts), expected)
    assert torch.equal(stylize(np.asarray(as_pil[0]), np.asarray(as_pil[1]), **opts), expected)


def test_builtin_styles_are_deterministic_and_differ():
    images = {n: render_style(n, (40, 56), seed=3) for n in BUILTIN_STYLES}
    for name, image in images.items():
        assert image.shape == (40, 56, 3) and image.dtype == np.uint8
        assert np.array_equal(image, render_style(name, (40, 56), seed=3))
        assert not np.array_equal(image, render_style(name, (40, 56), seed=4))
        assert image.std() > 20  # strong texture, not a flat colour
    names = list(images)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            assert np.abs(images[a].astype(int) - images[b].astype(int)).mean() > 20


def _folder(root: Path, names: list[str]) -> Path:
    root.mkdir()
    for i, name in enumerate(names):
        write_png(root / name, np.full((20 + i, 24, 3), 60 * i + 40, np.uint8))
    return root


def test_cli_folder_in_folder_out_with_the_same_names(tmp_path, cli):
    src = _folder(tmp_path / "in", ["a.png", "b.png"])
    code, out, err = cli(
        "stylize", src, "--style", "builtin:cubist", "--iterations", "2", "--size", "24",
        "--out", tmp_path / "out", "--no-progress", "--threads", "1",
    )  # fmt: skip
    assert code == 0, err
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.png", "b.png"]
    assert "pixelforge weights fetch vgg19" in err  # the random-VGG note (no weights here)
    assert "2 images" in out
    # a truncated file (its header intact) is skipped and named; the others are still written
    noise = np.random.default_rng(0).integers(0, 256, (60, 72, 3), dtype=np.uint8)
    Image.fromarray(noise).save(src / "c.jpg")
    data = (src / "c.jpg").read_bytes()
    (src / "c.jpg").write_bytes(data[: len(data) // 2])
    code, out, err = cli(
        "stylize", src, "--style", "builtin:cubist", "--iterations", "2", "--size", "24",
        "--out", tmp_path / "out2", "--no-progress", "--threads", "1",
    )  # fmt: skip
    assert code == 2 and "1 of 3" in err and "c.jpg" in err
    assert sorted(p.name for p in (tmp_path / "out2").iterdir()) == ["a.png", "b.png"]


def test_cli_provenance_records_every_gatys_option(tmp_path, cli):
    src = _folder(tmp_path / "in", ["a.png"]) / "a.png"
    common = ["--style", "builtin:cubist", "--iterations", "2", "--size", "24", "--no-progress"]
    docs = []
    for extra in ([], ["--init", "noise", "--tv-weight", "3", "--content-weight", "2"]):
        out = tmp_path / f"o{len(extra)}.png"
        code, _, err = cli("stylize", src, *common, *extra, "--out", out, "--threads", "1")
        assert code == 0, err
        docs.append(read_provenance(out))
    plain, changed = (GatysConfig(**d["gatys"]) for d in docs)
    assert (plain.iterations, plain.size, plain.init, plain.tv_weight) == (2, 24, "content", 10)
    assert (changed.init, changed.tv_weight, changed.content_weight) == ("noise", 3, 2)


def test_a_size_over_the_pixel_cap_is_refused_before_any_work(tmp_path, cli, monkeypatch):
    src = _folder(tmp_path / "in", ["a.png"]) / "a.png"  # 24 x 20: under the cap below
    monkeypatch.setenv("PIXELFORGE_MAX_PIXELS", "2000")
    code, out, err = cli(
        "stylize", src, "--style", "builtin:strokes", "--size", "64", "--out", tmp_path / "o.png"
    )
    assert code == 2 and err.startswith("error: size 64") and "64x53 = 3,392 pixels" in err
    assert "Traceback" not in err + out and not (tmp_path / "o.png").exists()


def _fast_model(path: Path) -> Path:
    from pixelforge.models.fast_style import FastStyle, FastStyleConfig

    torch.manual_seed(0)
    hub.save_model(FastStyle(FastStyleConfig(image_size=16, width=4, n_blocks=1)).eval(), path)
    return path


def test_cli_folder_with_an_unreadable_or_oversized_image_writes_the_others(
    tmp_path, cli, monkeypatch
):
    src = _folder(tmp_path / "in", ["a.png", "b.png"])
    (src / "c.png").write_bytes(b"GIF89a not a png")  # its header is refused at once
    big = np.zeros((60, 60, 3), np.uint8)  # over the pixel cap set below
    Image.fromarray(big).save(src / "d.png")
    monkeypatch.setenv("PIXELFORGE_MAX_PIXELS", "1000")
    for args in (["--style", "builtin:cubist", "--iterations", "2", "--size", "24"], []):
        out_dir = tmp_path / f"out{len(args)}"
        if not args:  # a fast-style model
            args = ["--model", _fast_model(tmp_path / "fast")]
        code, _, err = cli(
            "stylize", src, *args, "--out", out_dir, "--no-progress", "--threads", "1"
        )
        assert code == 2 and "2 of 4" in err and "c.png" in err and "d.png" in err
        assert "PIXELFORGE_MAX_PIXELS" in err and "Traceback" not in err
        assert sorted(p.name for p in out_dir.iterdir()) == ["a.png", "b.png"]
    doc = read_provenance(out_dir / "a.png")  # the fast-style model's
    assert (doc["family"], doc["model_sha256"]) == ("fast-style", hub.load(args[1]).model_sha256)


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--style", "/no/such/style.png"], "style image not found"),
        (["--style", "BAD"], "is not a PNG, JPEG"),  # an unreadable style file (see below)
        (["CONTENT_BAD", "--style", "builtin:mosaic"], "is not a PNG, JPEG"),
        (["--style", "builtin:monet"], "unknown built-in style 'monet'"),
        (["--style", "builtin:mosaic", "--strength", "1.5"], "strength must be between 0"),
        ([], "exactly one of --style"),
        (["--style", "builtin:mosaic", "--model", "x"], "exactly one of --style"),
    ],
)
def test_cli_mistakes_end_with_one_clear_line(args, needle, tmp_path, cli):
    src = _folder(tmp_path / "in", ["a.png"])
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not an image at all")
    content = bad if args[:1] == ["CONTENT_BAD"] else src / "a.png"
    args = [str(bad) if a == "BAD" else a for a in args if a != "CONTENT_BAD"]
    code, out, err = cli("stylize", content, *args, "--out", tmp_path / "o.png")
    assert code != 0
    assert needle in err and "Traceback" not in err + out
    assert err.startswith("error: ") and not (tmp_path / "o.png").exists()


def test_a_model_that_does_not_stylize_is_refused_with_the_command_that_runs_it(tmp_path, cli):
    """A denoiser, an upscaler or a pix2pix model runs image to image too: stylize --model ran it
    and wrote its output as a style transfer."""
    denoiser = hub.save_model(small_restore_model("denoise"), tmp_path / "d")
    with pytest.raises(ConfigError, match="restore model; stylize --model needs a fast-style"):
        stylize(photo(32), model=hub.load(denoiser))
    src = _folder(tmp_path / "in", ["a.png"])
    code, _, err = cli("stylize", src / "a.png", "--model", denoiser, "--out", tmp_path / "o.png")
    assert code == 2 and f"run this one with `pixelforge denoise` --model {denoiser}" in err
    assert not (tmp_path / "o.png").exists()


def test_python_stylize_takes_the_command_s_device_names(tmp_path):
    """device="auto" (the command's default, --device auto) was a torch error."""
    fast = hub.load(_fast_model(tmp_path / "fast"))
    assert torch.equal(
        stylize(photo(24), model=fast, device="auto"), stylize(photo(24), model=fast)
    )
    with pytest.raises(ConfigError, match="unknown device 'gpu'"):
        stylize(photo(24), model=fast, device="gpu")


def test_a_strip_too_thin_to_stylize_is_one_clear_line(tmp_path, cli):
    """A 1-pixel-wide strip ended in a torch traceback: in a fast-style model's reflection
    padding, and in the VGG's pooling for Gatys (64 x 1 at --size 64)."""
    write_png(tmp_path / "strip.png", np.full((40, 1, 3), 90, np.uint8))
    write_png(tmp_path / "style.png", np.full((40, 40, 3), 200, np.uint8))
    fast = _fast_model(tmp_path / "fast")
    for args, needle in (
        (["--model", fast], "the image is 1x40 pixels, too small for a fast-style model"),
        (["--style", tmp_path / "style.png", "--size", "64", "--iterations", "1"],
         "stylized at 2x64 pixels (--size 64); style transfer needs at least 16 pixels"),
    ):  # fmt: skip
        code, _, err = cli("stylize", tmp_path / "strip.png", *args, "--no-progress",
                             "--out", tmp_path / "o.png")  # fmt: skip
        assert code == 2 and needle in err and "Traceback" not in err, err
        assert not (tmp_path / "o.png").exists()
