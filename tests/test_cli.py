"""The command line, in-process: the commands a user types, their files and their errors."""

from __future__ import annotations

import json

import pytest
import torch

from pixelforge.io.images import read_image, read_provenance

from conftest import FIXTURES

TINY = [
    "--set",
    "model.image_size=8",
    "--set",
    "model.z_dim=8",
    "--set",
    "model.g_width=8",
    "--set",
    "model.d_width=8",
    "--set",
    "train.batch_size=8",
    "--set",
    "train.sample_every=0",
    "--set",
    "train.tensorboard=false",
    "--device",
    "cpu",
    "--no-progress",
]


@pytest.fixture
def trained(tmp_path, cli):
    run = tmp_path / "run"
    code, _out, err = cli(
        "train",
        "dcgan",
        "--data",
        "digits",
        "--steps",
        "2",
        "--out",
        run,
        "--set",
        "model.num_classes=null",
        *TINY,
    )
    assert code == 0, err
    return run


def test_train_sample_info_round_trip(trained, tmp_path, cli):
    a, b = tmp_path / "a.png", tmp_path / "elsewhere" / "b.png"
    for path in (a, b):
        code, _, err = cli(
            "sample", trained, "--n", "12", "--seed", "3", "--class", "4", "--out", path
        )
        assert code == 0, err
    assert a.read_bytes() == b.read_bytes()  # same seed, same bytes, whatever the output path
    meta = read_provenance(a)
    assert meta["seed"] == 3 and meta["class_label"] == 4 and meta["family"] == "dcgan"
    assert len(meta["model_sha256"]) == 64 and "a.png" not in meta["command"]
    code, out, _ = cli("info", a, "--json")
    assert code == 0 and json.loads(out)["command"] == meta["command"]
    code, out, _ = cli("info", trained, "--json")
    assert code == 0 and json.loads(out)["model"]["config"]["num_classes"] == 10

    other = tmp_path / "c.png"
    cli("sample", trained, "--n", "12", "--seed", "4", "--class", "4", "--out", other)
    assert other.read_bytes() != a.read_bytes()


def test_sample_to_a_folder_writes_one_png_each(trained, tmp_path, cli):
    code, _, err = cli("sample", trained, "--n", "5", "--out", tmp_path / "many")
    assert code == 0, err
    files = sorted((tmp_path / "many").glob("*.png"))
    assert len(files) == 5
    assert read_image(files[0], mode="L").shape == (8, 8, 1)
    assert read_provenance(files[2])["index"] == 2


def test_print_config_shows_resolved_fields_and_writes_nothing(tmp_path, cli):
    code, out, _ = cli(
        "train",
        "dcgan",
        "--data",
        "digits",
        "--out",
        tmp_path / "r",
        "--print-config",
        "--set",
        "model.num_classes=null",
    )
    assert code == 0
    doc = json.loads(out)
    assert doc["config"]["model"]["channels"] == 1 and doc["config"]["model"]["num_classes"] == 10
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["train", "dcgan", "--data", "digts"], "Did you mean 'digits'"),
        (["train", "dcgna", "--data", "digits"], "Did you mean 'dcgan'"),
        (["train", "dcgan", "--data", "folder:/no/such/folder"], "no such folder"),
        (
            ["train", "dcgan", "--data", "digits", "--set", "model.image_sise=32"],
            "model.image_sise",
        ),
        (["train", "dcgan", "--data", "digits", "--set", "train.lr=-1"], "train.lr"),
        (
            ["train", "dcgan", "--data", "digits", "--config", "/no/such.json"],
            "config file not found",
        ),
        (["sample", "/no/such/model", "--out", "x.png"], "no such model"),
        (["info", "/no/such/file.png"], "no such file"),
    ],
)
def test_user_mistakes_end_with_one_clear_line_and_exit_2(args, needle, tmp_path, cli, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, out, err = cli(*args)
    assert code == 2
    assert needle in err and "Traceback" not in err + out
    assert err.startswith("error: ")
    assert not any(tmp_path.iterdir())  # nothing half-written


def test_bad_class_and_tampered_model_are_refused(trained, tmp_path, cli):
    code, _, err = cli("sample", trained, "--class", "10", "--out", tmp_path / "x.png")
    assert code == 2 and "between 0 and 9" in err
    assert not (tmp_path / "x.png").exists()
    weights = next(trained.glob("checkpoints/*/model/model.safetensors"))
    data = bytearray(weights.read_bytes())
    data[-5] ^= 0x01
    weights.write_bytes(bytes(data))
    code, _, err = cli("sample", trained, "--out", tmp_path / "x.png")
    assert code == 2 and "SHA-256" in err


def test_resume_by_run_dir_and_conflicting_architecture(trained, cli):
    code, _, err = cli(
        "train", "--out", trained, "--steps", "3", "--device", "cpu", "--no-progress"
    )
    assert code == 0, err
    code, _, err = cli("train", "--out", trained, "--set", "model.image_size=16", "--no-progress")
    assert code == 2 and "model.image_size=16 (run has 8)" in err


def test_models_and_data_listings(cli, tmp_path):
    code, out, _ = cli("models", "list")
    assert code == 0 and "dcgan" in out
    code, out, _ = cli("data", "list")
    assert code == 0 and all(
        name in out for name in ("digits", "faces", "photos", "shapes", "emoji")
    )
    code, out, _ = cli("data", "show", "digits:test", "--out", tmp_path / "d.png", "--n", "16")
    assert code == 0 and "360" in out and (tmp_path / "d.png").is_file()


def test_data_show_of_paired_data_draws_each_a_beside_its_b(tmp_path, cli):
    from pixelforge.io.images import write_png

    for i in range(4):  # A red, B blue, brightness by pair
        level = 0.4 + 0.2 * i
        write_png(
            tmp_path / "p" / "A" / f"{i}.png",
            torch.tensor([level, 0, 0])[:, None, None].expand(3, 8, 8),
        )
        write_png(
            tmp_path / "p" / "B" / f"{i}.png",
            torch.tensor([0, 0, level])[:, None, None].expand(3, 8, 8),
        )
    code, _, err = cli(
        "data", "show", f"paired:{tmp_path / 'p'}", "--out", tmp_path / "g.png", "--size", "8"
    )
    assert code == 0, err
    grid = read_image(tmp_path / "g.png").astype(int)
    # cells of 8 px after 2 px of padding, pairs in reading order: A, B, A, B, ...
    rows, cols = (grid.shape[0] - 2) // 10, (grid.shape[1] - 2) // 10
    assert cols % 2 == 0 and rows * cols >= 8
    cells = [
        grid[2 + 10 * r : 10 + 10 * r, 2 + 10 * c : 10 + 10 * c].reshape(-1, 3).mean(0)
        for r in range(rows)
        for c in range(cols)
    ][:8]
    assert [int(c.argmax()) for c in cells] == [0, 2] * 4
    for k in range(4):  # each A beside its own B
        assert abs(cells[2 * k][0] - cells[2 * k + 1][2]) < 2


def test_training_names_the_unreadable_images_it_skipped(tmp_path, cli):
    from pixelforge.io.images import write_png

    folder = tmp_path / "imgs"
    for i in range(25):
        write_png(folder / f"{i}.png", torch.rand(3, 8, 8))
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")  # 1 of 26: within 5%
    code, _, err = cli(
        "train", "dcgan", "--data", f"folder:{folder}", "--steps", "1", "--out", tmp_path / "run",
        "--set", "model.num_classes=null", *TINY,
    )  # fmt: skip
    assert code == 0, err
    assert "skipped 1 unreadable image: " in err and "broken.png" in err


def test_ctrl_c_in_a_command_says_interrupted_and_exits_130(tmp_path, cli, monkeypatch):
    import pixelforge.tasks.restore
    from pixelforge.io.images import write_png

    def ctrl_c(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(pixelforge.tasks.restore, "run_command", ctrl_c)
    write_png(tmp_path / "a.png", torch.rand(3, 8, 8))
    code, _, err = cli("denoise", tmp_path / "a.png", "--out", tmp_path / "b.png")
    assert code == 130 and err.strip().splitlines()[-1] == "interrupted"


def test_a_folder_named_as_a_default_model_does_not_replace_it(tmp_path, cli, monkeypatch):
    # `pixelforge denoise photos/ --out denoise` makes ./denoise; the next run must still use
    # the shipped model, not take that folder for the model
    from pixelforge.io.images import write_png

    write_png(tmp_path / "a.png", torch.rand(3, 16, 16))
    monkeypatch.chdir(tmp_path)
    for command, extra in (("denoise", []), ("remove-bg", []), ("upscale", ["--scale", "2"])):
        default = {"upscale": "sr-x2"}.get(command, command.replace("remove-bg", "matting"))
        (tmp_path / default).mkdir()
        code, _, err = cli(command, "a.png", *extra, "--out", f"{command}.png")
        assert code == 0, err
        assert read_provenance(tmp_path / f"{command}.png")["model_sha256"]


def test_outputs_that_cannot_be_written_say_what_to_do(tmp_path, cli):
    code, _, err = cli("sample", "dcgan-digits", "--out", tmp_path / "x.jpg")
    assert code == 2 and f"use {tmp_path / 'x.png'}" in err
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    code, _, err = cli("denoise", tmp_path / "in", "--out", tmp_path / "out")
    assert code == 2 and "1 of 1 images were skipped (none was written)" in err, err


@pytest.mark.parametrize("command", ["denoise", "translate", "sample"])
def test_inference_commands_take_threads(tmp_path, cli, command):
    from pixelforge.io.images import write_png

    write_png(tmp_path / "a.png", torch.rand(3, 16, 16))
    args = {
        "denoise": ["denoise", tmp_path / "a.png"],
        "translate": ["translate", "dcgan-digits", tmp_path / "a.png"],  # refused: not pix2pix
        "sample": ["sample", "dcgan-digits", "--n", "1"],
    }[command]
    code, _, err = cli(*args, "--threads", "0", "--out", tmp_path / "o.png")
    assert code == 2 and "--threads must be at least 1" in err
    before = torch.get_num_threads()
    target = 1 if before != 1 else 2
    cli(*args, "--threads", str(target), "--out", tmp_path / "o.png")
    assert torch.get_num_threads() == target  # applied (the fixture restores it after the test)


def test_info_of_a_video_says_videos_carry_no_provenance(tmp_path, cli):
    from PIL import Image

    Image.new("RGB", (8, 8)).save(tmp_path / "orbit.gif")  # as nerf render writes orbits
    code, _, err = cli("info", tmp_path / "orbit.gif")
    assert code == 2 and "is a video" in err and "Convert it" not in err


def test_data_check_lists_unreadable_files(tmp_path, cli):
    folder = tmp_path / "imgs"
    folder.mkdir()
    from pixelforge.io.images import write_png

    for i in range(3):
        write_png(folder / f"{i}.png", torch.rand(3, 8, 8))
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    code, out, _ = cli("data", "check", f"folder:{folder}")
    assert code == 1 and "3 of 4" in out and out.count("broken.png") == 1  # named once


def test_weights_import_needs_allow_pickle(tmp_path, cli):
    src = tmp_path / "w.pth"
    torch.save({"w": torch.ones(2)}, src)
    code, _, err = cli("weights", "import", src, "--out", tmp_path / "w.safetensors")
    assert code == 2 and "--allow-pickle" in err
    code, _, err = cli(
        "weights", "import", src, "--out", tmp_path / "w.safetensors", "--allow-pickle"
    )
    assert code == 0 and (tmp_path / "w.safetensors").is_file()


def test_old_format_model_samples_from_the_cli(tmp_path, cli):
    code, _, err = cli("sample", FIXTURES / "model_v0", "--n", "4", "--out", tmp_path / "g.png")
    assert code == 0, err


def test_python_api_trains_loads_and_samples(tmp_path):
    import pixelforge

    run = pixelforge.train(
        "dcgan",
        "digits",
        tmp_path / "run",
        steps=2,
        overrides=[a for a in TINY if "=" in a and a.startswith(("model", "train"))],
    )
    model = pixelforge.load(run)
    images = model.sample(4, seed=0)
    assert images.shape == (4, 1, 8, 8)
    assert torch.equal(images, pixelforge.load(run).sample(4, seed=0))
    assert "dcgan" in pixelforge.list_models()


def test_one_sample_to_a_png_is_the_image_itself_not_a_padded_grid(cli, tmp_path):
    from PIL import Image

    code, _, err = cli(
        "sample", "dcgan-digits", "--n", 1, "--class", 5, "--out", tmp_path / "a.png"
    )
    assert code == 0, err
    with Image.open(tmp_path / "a.png") as im:
        assert im.size == (32, 32)


def test_unknown_option_and_missing_argument_are_usage_errors_without_traceback(cli):
    code, out, err = cli("sample", "dcgan-digits", "--bogus", "x", "--out", "x.png")
    assert code == 2 and "No such option: --bogus" in out + err
    assert "Traceback" not in out + err
    code, out, err = cli("sample")
    assert code == 2 and "Missing argument" in out + err
    # one line, as every other mistake, and where to look
    assert err.startswith("error: ") and len(err.strip().splitlines()) == 1 and not out
    assert "`pixelforge sample --help`" in err


def test_resuming_says_the_step_it_resumes_from(cli, tmp_path):
    tiny = ["--set", "model.image_size=8", "--set", "model.z_dim=4", "--set", "model.g_width=4",
            "--set", "model.d_width=4", "--set", "train.batch_size=8", "--set",
            "train.sample_every=0", "--set", "train.tensorboard=false", "--no-progress"]  # fmt: skip
    run = tmp_path / "run"
    code, _, err = cli("train", "dcgan", "--data", "digits", "--steps", 2, "--out", run, *tiny)
    assert code == 0, err
    code, _, err = cli("train", "--out", run, "--steps", 3, "--no-progress")
    assert code == 0, err
    assert "resuming at step 2" in err


def test_a_warning_is_one_line_for_the_user_without_python_source_lines(cli, tmp_path):
    from PIL import Image

    Image.new("RGB", (16, 12), (90, 30, 200)).save(tmp_path / "a.png", icc_profile=b"broken")
    code, _, err = cli("denoise", tmp_path / "a.png", "--out", tmp_path / "b.png")
    assert code == 0, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("warning: ") and "a.png" in lines[0]
    assert "ICC" in err and ".py:" not in err and "UserWarning" not in err


@pytest.mark.parametrize(
    "args",
    [
        ["sample", "dcgan-digits", "--n", "1"],
        ["eval", "fid", "digits", "digits:test", "--extractor", "digits-cnn"],
        ["latent", "interpolate", "dcgan-digits", "--seeds", "1", "2"],
    ],
)
def test_an_unknown_device_is_one_line_in_every_command(cli, tmp_path, args):
    out = [] if args[0] == "eval" else ["--out", tmp_path / "out.png"]
    code, _, err = cli(*args, "--device", "gpu", *out)
    assert code == 2 and "unknown device 'gpu'" in err, err
    assert len(err.strip().splitlines()) == 1
