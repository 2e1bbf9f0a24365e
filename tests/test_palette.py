"""Palette (image-to-image diffusion): conditions per task, seeded sampling, known pixels, the
restoration commands. Training, saving and exact resume are in test_families.py."""

from __future__ import annotations

import pytest
import torch
from PIL import Image

from pixelforge import hub
from pixelforge.errors import ConfigError
from pixelforge.models.palette import PaletteConfig, PaletteModel
from pixelforge.tasks.image2image import apply_model
from pixelforge.tasks.restore import load_for
from pixelforge.training.palette import PaletteTrainConfig, palette_example


def tiny(task: str = "inpaint", **kw) -> PaletteModel:
    torch.manual_seed(0)
    cfg = PaletteConfig(
        task=task, image_size=8, block_out_channels=(8, 16), num_train_timesteps=100, steps=3,
        **kw,
    )  # fmt: skip
    return PaletteModel(cfg).eval()


def image_and_mask(h: int = 12, w: int = 20) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    x = torch.rand(1, 3, h, w, generator=g) * 2 - 1
    mask = torch.zeros(1, 1, h, w)
    mask[..., 3:9, 5:14] = 1
    return x, mask


@pytest.mark.parametrize(
    ("task", "channels", "takes_mask"),
    [("inpaint", 4, True), ("uncrop", 4, True), ("colorize", 3, False), ("jpeg", 3, False),
     ("multi", 4, True)],
)  # fmt: skip
def test_condition_and_examples_fit_each_task(task, channels, takes_mask):
    model = tiny(task)
    x, mask = image_and_mask(8, 8)
    assert model.takes_mask == takes_mask and model.size_multiple == 2
    cond = model.condition(x, mask if takes_mask else None)
    assert cond.shape == (1, channels, 8, 8)
    assert model.unet.config.in_channels == 3 + channels
    if task == "colorize":  # the grey image, replicated
        assert torch.allclose(cond[:, 0], cond[:, 1]) and torch.allclose(cond[:, 1], cond[:, 2])
    if takes_mask:  # the hole is unknown to the model; the mask is the last channel
        assert cond[:, :3][mask.expand(-1, 3, -1, -1) > 0].abs().max() == 0
        assert torch.equal(cond[:, 3:], mask * 2 - 1)
    clean = (x + 1) / 2
    for seed in range(4):
        t, inp, target, m = palette_example(
            model.config, PaletteTrainConfig(), clean, torch.Generator().manual_seed(seed)
        )
        assert t == task or (task == "multi" and t in ("inpaint", "uncrop", "colorize", "jpeg"))
        assert inp.shape == target.shape == (1, 3, 8, 8) and (m is not None) == (
            t in ("inpaint", "uncrop")
        )
        assert model.condition(inp, m, t).shape == cond.shape


def test_multi_task_model_reads_a_zero_mask_and_a_task_embedding():
    model = tiny("multi")
    x, _ = image_and_mask(8, 8)
    for task in ("colorize", "jpeg"):
        model.task = task
        assert not model.takes_mask
        cond = model.condition(x, None)
        assert cond.shape[1] == 4 and bool((cond[:, 3] == -1).all())
    labels = model.task_labels(["inpaint", "jpeg"], torch.device("cpu"))
    assert labels is not None and labels.tolist() == [0, 3]
    with pytest.raises(ConfigError, match="does inpaint"):
        tiny("inpaint").task = "colorize"


def test_same_seed_same_output_and_another_seed_differs():
    model = tiny("jpeg")
    x, _ = image_and_mask()
    a = model.translate(x)
    assert a.shape == x.shape and float(a.abs().max()) <= 1
    assert torch.equal(a, model.translate(x))
    model.seed = 1
    assert not torch.equal(a, model.translate(x))
    model.seed, model.sampler = 0, "ddpm"  # stochastic steps draw from the seeded generator too
    b = model.translate(x)
    assert torch.equal(b, model.translate(x)) and not torch.equal(a, b)


def test_inpainting_keeps_known_pixels_at_any_size():
    model = tiny("inpaint")
    image = (image_and_mask(13, 21)[0][0] + 1) / 2
    mask = torch.zeros(1, 13, 21)
    mask[:, 4:9, 6:15] = 1
    out = apply_model(model, image, mask=mask)
    assert out.shape == image.shape
    known = mask.expand(3, -1, -1) == 0
    assert torch.equal(out[known], image[known])
    assert not torch.equal(out[~known], image[~known])
    x, m = image_and_mask()
    direct = model.translate(x, m)
    assert torch.equal(direct[m.expand(-1, 3, -1, -1) == 0], x[m.expand(-1, 3, -1, -1) == 0])


def test_the_inpaint_command_takes_a_palette_model(cli, tmp_path):
    saved = hub.save_model(tiny("inpaint"), tmp_path / "palette")
    multi = hub.save_model(tiny("multi"), tmp_path / "multi")
    g = torch.Generator().manual_seed(0)
    pixels = (torch.rand(19, 26, 3, generator=g) * 255).byte().numpy()
    Image.fromarray(pixels).save(tmp_path / "in.png")
    hole = torch.zeros(19, 26, dtype=torch.uint8)
    hole[5:12, 6:18] = 255
    Image.fromarray(hole.numpy()).save(tmp_path / "mask.png")
    for model in (saved, multi):
        code, _, err = cli(
            "inpaint", tmp_path / "in.png", "--mask", tmp_path / "mask.png", "--model", model,
            "--out", tmp_path / "out.png",
        )  # fmt: skip
        assert code == 0, err
        with Image.open(tmp_path / "out.png") as im:
            assert im.size == (26, 19) and im.mode == "RGB"
    assert isinstance(load_for("colorize", str(multi)), PaletteModel)
    code, _, err = cli("colorize", tmp_path / "in.png", "--model", saved, "--out", tmp_path / "o")
    assert code == 2 and "needs a colorize" in err


def test_a_resumed_multi_task_run_is_bit_identical_and_previews(tmp_path):
    from pixelforge import runs
    from pixelforge.hub import read_safetensors
    from pixelforge.training.run import prepare_run
    from pixelforge.training.trainer import Trainer

    from conftest import tiny_spec

    def state(run):
        _, folder = runs.latest_checkpoint(run)
        return read_safetensors(folder / runs.STATE_TENSORS)

    multi = {"model": {"task": "multi"}, "train": {"steps": 4}}
    ref = Trainer(tiny_spec("palette", tmp_path / "ref", **multi), tmp_path / "ref", progress=False)
    ref.fit()
    grid = ref.task.sample_grid(9, seed=0)  # rows of condition | sample | clean
    assert grid.shape == (9, 3, 8, 8) and torch.equal(grid, ref.task.sample_grid(9, seed=0))
    half = {"model": {"task": "multi"}, "train": {"steps": 2}}
    run = tmp_path / "half"
    Trainer(tiny_spec("palette", run, **half), run, progress=False).fit()
    more, resumed = prepare_run(None, None, run, overrides={"train": {"steps": 4}})
    Trainer(more, run, progress=False).fit()
    a, b = state(tmp_path / "ref"), state(run)
    assert resumed and a.keys() == b.keys() and any("unet_ema" in k for k in a)
    for key in a:
        assert torch.equal(a[key], b[key]), key


def test_restoration_commands_take_the_sampling_options_of_a_palette_model(cli, tmp_path):
    """A diffusion user's --seed, --steps and --sampler: the same seed gives the same pixels,
    another seed others; they are recorded in the PNG; bad values and models that do not sample
    are refused before anything is written; an API call leaves the model's own settings."""
    import pixelforge
    from pixelforge.io.images import read_provenance

    model = tiny("inpaint")
    saved = hub.save_model(model, tmp_path / "palette")
    g = torch.Generator().manual_seed(0)
    Image.fromarray((torch.rand(21, 27, 3, generator=g) * 255).byte().numpy()).save(
        tmp_path / "in.png"
    )
    hole = torch.zeros(21, 27, dtype=torch.uint8)
    hole[5:14, 6:20] = 255
    Image.fromarray(hole.numpy()).save(tmp_path / "mask.png")
    base = ["inpaint", tmp_path / "in.png", "--mask", tmp_path / "mask.png", "--model", saved]

    def run(name: str, *options: object) -> bytes:
        code, _, err = cli(*base, *options, "--out", tmp_path / name)
        assert code == 0, err
        return (tmp_path / name).read_bytes()

    a = run("a.png", "--seed", 1, "--steps", 2, "--sampler", "ddpm")
    assert a == run("b.png", "--seed", 1, "--steps", 2, "--sampler", "ddpm")
    assert a != run("c.png", "--seed", 2, "--steps", 2, "--sampler", "ddpm")
    meta = read_provenance(tmp_path / "a.png")
    assert meta is not None and (meta["seed"], meta["sampler"], meta["steps"]) == (1, "ddpm", 2)
    run("d.png")
    meta = read_provenance(tmp_path / "d.png")
    assert meta is not None and (meta["seed"], meta["sampler"], meta["steps"]) == (0, "ddim", 3)
    for options, words in [
        (["--steps", 0], "steps"),
        (["--steps", 101], "100 diffusion steps"),
        (["--sampler", "euler"], "unknown sampler"),
        (["--model", "inpaint", "--steps", 2], "does not sample: --steps is for palette"),
    ]:
        code, _, err = cli(*base, *options, "--out", tmp_path / "bad.png")
        assert code == 2 and err.startswith("error: ") and words in err, err
        assert not (tmp_path / "bad.png").exists()
    image, mask = tmp_path / "in.png", tmp_path / "mask.png"
    out = pixelforge.restore("inpaint", image, model=model, mask=mask, seed=1, steps=2)
    assert out.shape == (3, 21, 27) and (model.seed, model.steps) == (0, 3)


def test_sample_points_a_palette_model_to_the_restoration_commands(cli, tmp_path):
    saved = hub.save_model(tiny("colorize"), tmp_path / "palette")
    code, _, err = cli("sample", saved, "--out", tmp_path / "grid.png")
    assert code == 2 and "`pixelforge colorize`" in err and "--model" in err, err


def test_a_palette_model_refused_by_a_command_names_the_commands_that_run_it(cli, tmp_path):
    Image.fromarray((torch.rand(12, 16, 3) * 255).byte().numpy()).save(tmp_path / "in.png")
    multi = hub.save_model(tiny("multi"), tmp_path / "multi")
    inpaint = hub.save_model(tiny("inpaint"), tmp_path / "inpaint")
    for command, model, runs in [
        ("upscale", multi, "`pixelforge restore-jpeg` or `pixelforge colorize` or "
         "`pixelforge inpaint` or `pixelforge uncrop`"),
        ("denoise", multi, "`pixelforge restore-jpeg` or `pixelforge colorize` or "
         "`pixelforge inpaint` or `pixelforge uncrop`"),
        ("colorize", inpaint, "`pixelforge inpaint` or `pixelforge uncrop`"),
    ]:  # fmt: skip
        code, _, err = cli(command, tmp_path / "in.png", "--model", model, "--out", tmp_path / "o")
        assert code == 2 and err.count("\n") <= 1 and err.startswith("error: "), err
        assert f"run this one with {runs}" in err and f"--model {model}" in err, err


def test_a_seed_torch_cannot_take_is_refused_before_anything_is_written(cli, tmp_path):
    saved = hub.save_model(tiny("jpeg"), tmp_path / "palette")
    Image.fromarray((torch.rand(12, 16, 3) * 255).byte().numpy()).save(tmp_path / "in.png")
    for seed in (2**64, -1):
        out = tmp_path / "out.png"
        code, _, err = cli("restore-jpeg", tmp_path / "in.png", "--model", saved, "--seed", seed,
                           "--out", out)  # fmt: skip
        assert code == 2 and err.startswith("error: ") and "seed must be" in err, err
        assert not out.exists()
    code, _, err = cli("restore-jpeg", tmp_path / "in.png", "--model", saved, "--seed", 2**64 - 1,
                       "--out", tmp_path / "out.png")  # fmt: skip
    assert code == 0, err
