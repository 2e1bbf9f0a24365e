"""Deep image prior: the three tasks on a 48 x 64 crop of scikit-image's astronaut, and the CLI."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from pixelforge.errors import ConfigError
from pixelforge.io.images import read_image, write_png
from pixelforge.metrics.image_quality import psnr
from pixelforge.restoration.dip import DIPNetConfig, SkipNet, deep_image_prior

# Three scales instead of five: the same network, faster on a 48 x 64 image.
SMALL = DIPNetConfig(down=(16, 32, 64), up=(16, 32, 64), skip=(4, 4, 4))


@pytest.fixture(autouse=True)
def _one_thread() -> None:
    """Small images: one thread is faster than two on a shared machine (conftest restores it)."""
    torch.set_num_threads(1)


@pytest.fixture(scope="module")
def clean() -> np.ndarray:
    from skimage import data

    return data.astronaut()[30:78, 180:244].copy()  # 48 x 64 x 3 uint8: hair, face, helmet


def _t(image: np.ndarray) -> torch.Tensor:
    array = image.astype(np.float32) / 255.0 if image.dtype == np.uint8 else image
    return torch.from_numpy(np.ascontiguousarray(array)).permute(2, 0, 1)[None]


def _psnr(a: np.ndarray, b: np.ndarray, where: np.ndarray | None = None) -> float:
    x, y = _t(a), _t(b)
    if where is not None:  # PSNR over the pixels of `where` only
        sel = torch.from_numpy(where)
        x, y = x[..., sel][..., None], y[..., sel][..., None]
    return float(psnr(x, y))


def test_denoise_beats_the_noisy_input(clean: np.ndarray) -> None:
    rng = np.random.default_rng(0)
    noisy = np.clip(np.rint(clean + rng.normal(0, 25, clean.shape)), 0, 255).astype(np.uint8)
    result = deep_image_prior(noisy, "denoise", iterations=200, config=SMALL, device="cpu")
    assert result.image.shape == clean.shape and result.image.dtype == np.float32
    assert result.image.min() >= 0.0 and result.image.max() <= 1.0
    assert len(result.losses) == 200
    noisy_psnr, restored_psnr = _psnr(noisy, clean), _psnr(result.image, clean)
    assert restored_psnr > noisy_psnr + 2.0, (noisy_psnr, restored_psnr)


def test_inpaint_fills_the_hole(clean: np.ndarray) -> None:
    hole = np.zeros(clean.shape[:2], bool)
    hole[18:30, 24:40] = True
    result = deep_image_prior(clean, "inpaint", mask=hole, iterations=150, config=SMALL)
    grey = np.full(clean.shape, 0.5, np.float32)
    assert _psnr(result.image, clean, hole) > _psnr(grey, clean, hole) + 3.0
    assert _psnr(result.image, clean, ~hole) > 24.0  # known pixels fitted


def test_upscale_size_and_consistency(clean: np.ndarray) -> None:
    low = clean[::2, ::2][:20, :27]  # odd sides: 27 wide, 20 high
    result = deep_image_prior(low, "upscale", scale=3, iterations=150, config=SMALL)
    assert result.image.shape == (60, 81, 3)
    down = F.interpolate(_t(result.image), size=(20, 27), mode="bicubic", antialias=True)
    assert float(psnr(down.clamp(0, 1), _t(low))) > 27.0


def test_same_seed_same_output_and_sizes_not_multiples(clean: np.ndarray) -> None:
    image = clean[:37, :45]  # not a multiple of the network's 32
    a = deep_image_prior(image, "denoise", iterations=4, seed=3, device="cpu")
    b = deep_image_prior(image, "denoise", iterations=4, seed=3, device="cpu")
    c = deep_image_prior(image, "denoise", iterations=4, seed=4, device="cpu")
    assert a.image.shape == (37, 45, 3)
    assert np.array_equal(a.image, b.image) and a.losses == b.losses
    assert not np.array_equal(a.image, c.image)


def test_network_shapes() -> None:
    config = DIPNetConfig()
    net = SkipNet(config, 1)
    assert config.size_multiple == 32
    assert net(torch.rand(1, 32, 64, 96)).shape == (1, 1, 64, 96)


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"task": "deblur"}, "unknown task"),
        ({"task": "inpaint"}, "needs a mask"),
        ({"task": "denoise", "mask": np.ones((48, 64))}, "inpaint only"),
        ({"task": "inpaint", "mask": np.zeros((48, 64))}, "no hole"),
        ({"task": "inpaint", "mask": np.ones((48, 64))}, "all hole"),
        ({"task": "inpaint", "mask": np.ones((40, 64))}, "same size"),
        ({"task": "upscale", "scale": 1}, "scale >= 2"),
    ],
)
def test_bad_inputs(clean: np.ndarray, kwargs: dict, words: str) -> None:
    with pytest.raises(ConfigError, match=words):
        deep_image_prior(clean, iterations=1, **kwargs)


# ---------------------------------------------------------------------------- CLI


@pytest.fixture
def files(tmp_path: Path, clean: np.ndarray) -> dict[str, Path]:
    paths = {k: tmp_path / f"{k}.png" for k in ("image", "mask", "empty", "full", "small")}
    write_png(paths["image"], clean[:24, :32])
    mask = np.zeros((24, 32), np.uint8)
    mask[8:16, 10:20] = 200  # light grey counts as hole
    write_png(paths["mask"], mask)
    write_png(paths["empty"], np.full((24, 32), 100, np.uint8))  # dark grey: no hole
    write_png(paths["full"], np.full((24, 32, 3), 255, np.uint8))
    write_png(paths["small"], mask[:20])
    return paths


@pytest.mark.parametrize(
    ("task", "extra", "size"),
    [
        ("denoise", [], (24, 32)),
        ("inpaint", ["--mask", "mask"], (24, 32)),
        ("upscale", ["--scale", 2], (48, 64)),
    ],
)
def test_cli_writes_png(cli, files, tmp_path: Path, task: str, extra: list, size: tuple) -> None:
    out = tmp_path / "out.png"
    extra = [files.get(a, a) for a in extra]
    args = [files["image"], "--task", task, *extra, "--iterations", 3, "--out", out]
    code, stdout, stderr = cli("dip", *args, "--device", "cpu", "--no-progress")
    assert code == 0, stderr
    assert "wrote" in stdout
    assert read_image(out).shape[:2] == size


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--task", "inpaint", "--mask", "small"], "20 but the image is 32x24"),
        (["--task", "inpaint", "--mask", "empty"], "no hole"),
        (["--task", "inpaint", "--mask", "full"], "all hole"),
        (["--task", "inpaint"], "needs --mask"),
        (["--task", "denoise", "--mask", "mask"], "--mask goes with --task inpaint"),
        (["--task", "upscale", "--mask", "mask"], "--mask goes with --task inpaint"),
        (["--task", "deblur"], "unknown --task"),
        (["--task", "upscale", "--scale", "1"], "--scale must be at least 2"),
        (["--task", "inpaint", "--mask", "missing"], "no such file"),
    ],
)
def test_cli_bad_input(cli, files, tmp_path: Path, args: list, words: str) -> None:
    args = [files.get(a, tmp_path / "nope.png" if a == "missing" else a) for a in args]
    code, _, stderr = cli("dip", files["image"], *args, "--out", tmp_path / "o.png")
    assert code == 2
    assert stderr.startswith("error: ") and words in stderr, stderr
    assert len(stderr.strip().splitlines()) == 1 and "Traceback" not in stderr
    assert not (tmp_path / "o.png").exists()


# ---------------------------------------------------------------- what users give and expect


def _cli_dip(cli, *args: object) -> tuple[int, str, str]:
    return cli("dip", *args, "--device", "cpu", "--no-progress")


def test_cli_keeps_grey_grey_and_transparency(cli, clean: np.ndarray, tmp_path: Path) -> None:
    """As the restoration commands: a grey photo comes back grey (one channel), alpha is kept
    (enlarged with the image by upscale), and inpaint composites over white."""
    from PIL import Image

    grey = tmp_path / "grey.png"
    Image.fromarray(clean[:24, :32]).convert("L").save(grey)
    rgba = clean[:24, :32].copy()
    alpha = np.full((24, 32), 255, np.uint8)
    alpha[:, :10] = 0
    alpha[:, 10:14] = 128
    rgba_path = tmp_path / "rgba.png"
    Image.fromarray(np.dstack([rgba, alpha])).save(rgba_path)
    hole = np.zeros((24, 32), np.uint8)
    hole[8:16, 12:24] = 255
    write_png(tmp_path / "mask.png", hole)
    runs = [
        (grey, ["--task", "denoise"], "L", (24, 32)),
        (grey, ["--task", "inpaint", "--mask", tmp_path / "mask.png"], "L", (24, 32)),
        (rgba_path, ["--task", "denoise"], "RGBA", (24, 32)),
        (rgba_path, ["--task", "upscale", "--scale", "2"], "RGBA", (48, 64)),
        (rgba_path, ["--task", "inpaint", "--mask", tmp_path / "mask.png"], "RGB", (24, 32)),
    ]
    for i, (source, args, mode, size) in enumerate(runs):
        out = tmp_path / f"out{i}.png"
        code, _, err = _cli_dip(cli, source, *args, "--iterations", 2, "--out", out)
        assert code == 0, err
        with Image.open(out) as im:
            assert (im.mode, im.size[::-1]) == (mode, size), args
            result = np.asarray(im)
        if args[1] == "denoise" and mode == "RGBA":
            assert np.array_equal(result[..., 3], alpha)
        if args[1] == "inpaint" and mode == "L":  # the known pixels are the grey input's
            assert np.array_equal(result[hole == 0], read_image(grey, mode="L")[..., 0][hole == 0])


def test_cli_out_folder_gets_the_image_name(cli, files, tmp_path: Path) -> None:
    """--out ending in / or naming a folder writes into it, as the restoration commands."""
    (tmp_path / "results").mkdir()
    for out in (f"{tmp_path / 'results'}/", tmp_path / "results", f"{tmp_path / 'new'}/"):
        code, _, err = _cli_dip(cli, files["image"], "--iterations", 1, "--out", out)
        assert code == 0, err
        assert read_image(Path(out) / "image.png").shape == (24, 32, 3)
    assert not (tmp_path / "results.png").exists() and not (tmp_path / "new.png").exists()


def test_cli_refuses_scale_without_upscale(cli, files, tmp_path: Path) -> None:
    code, _, err = _cli_dip(cli, files["image"], "--scale", 2, "--out", tmp_path / "o.png")
    assert code == 2 and "--scale goes with --task upscale" in err, err


def test_an_image_over_the_cap_is_refused_before_any_work(
    cli, files, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A canvas the network cannot fit in reasonable memory and time is refused at once, with
    its size and what to do (the cap is lowered here so a small image exceeds it)."""
    import pixelforge.restoration.dip as dip

    monkeypatch.setattr(dip, "MAX_PIXELS", 64 * 64, raising=False)  # the smallest canvas
    out = tmp_path / "o.png"
    code, _, err = _cli_dip(cli, files["image"], "--task", "upscale", "--scale", 3, "--out", out)
    assert code == 2 and "the output is 96x72" in err and "smaller --scale" in err, err
    assert len(err.strip().splitlines()) == 1 and not out.exists()
    code, _, err = _cli_dip(cli, files["image"], "--iterations", 1, "--out", out)
    assert code == 0, err  # 24 x 32 fits


def test_ctrl_c_writes_the_result_so_far(
    cli, files, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SIGINT during the third iteration: that iteration ends, the result so far is written
    with how to make it again, and the exit code is 130 with no traceback."""
    import os
    import signal

    from pixelforge.io.images import read_provenance

    calls = 0
    forward = SkipNet.forward

    def interrupted_forward(self: SkipNet, z: torch.Tensor) -> torch.Tensor:
        nonlocal calls
        calls += 1
        if calls == 3:
            os.kill(os.getpid(), signal.SIGINT)
        return forward(self, z)

    monkeypatch.setattr(SkipNet, "forward", interrupted_forward)
    out = tmp_path / "so-far.png"
    code, _, err = _cli_dip(cli, files["image"], "--iterations", 500, "--out", out)
    assert code == 130 and "interrupted after 3 of 500" in err and "Traceback" not in err, err
    meta = read_provenance(out)
    assert meta is not None and meta["iterations"] == 3 and "--iterations 3 " in meta["command"]
    monkeypatch.setattr(SkipNet, "forward", forward)
    code, _, err = _cli_dip(cli, files["image"], "--iterations", 3, "--out", tmp_path / "3.png")
    assert code == 0, err
    assert np.array_equal(read_image(out), read_image(tmp_path / "3.png"))


def test_a_long_run_says_how_long_it_will_take(
    cli, files, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import pixelforge.cli.dip as cli_dip

    monkeypatch.setattr(cli_dip, "LONG_RUN", 0.0, raising=False)
    code, _, err = _cli_dip(cli, files["image"], "--iterations", 3, "--out", tmp_path / "o.png")
    assert code == 0 and "3 iterations will take about" in err and "Ctrl-C" in err, err


def test_python_api(clean: np.ndarray) -> None:
    """pixelforge.dip takes what pixelforge.restore takes (a Pillow image, a boolean mask) and
    returns a C x H x W tensor in [0, 1] whose known pixels are the input's."""
    from PIL import Image

    import pixelforge

    image = Image.fromarray(clean[:24, :32])
    hole = np.zeros((24, 32), bool)
    hole[6:14, 8:20] = True
    out = pixelforge.dip(image, "inpaint", mask=hole, iterations=2, device="cpu")
    assert out.shape == (3, 24, 32) and float(out.min()) >= 0 and float(out.max()) <= 1
    known = torch.from_numpy(~hole)
    assert torch.equal(out[:, known], _t(clean[:24, :32])[0][:, known])
    grey = pixelforge.dip(image.convert("L"), "upscale", scale=2, iterations=1, device="cpu")
    assert grey.shape == (1, 48, 64)


def test_python_api_refuses_a_batch_or_a_list_with_what_to_give(clean: np.ndarray) -> None:
    """A 1 x C x H x W batch ended in a torch error about sparse tensors, a list in a TypeError."""
    import pixelforge

    with pytest.raises(ConfigError, match="pass its images one by one"):
        pixelforge.dip(_t(clean[:24, :32]), iterations=1, device="cpu")
    with pytest.raises(ConfigError, match="give a path, a Pillow image, a numpy array"):
        pixelforge.dip(clean[:24, :32].tolist(), iterations=1, device="cpu")
