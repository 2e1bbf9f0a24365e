"""StyleGAN: reproducible sampling, truncation, labels, the style-mixing grid and its CLI."""

from __future__ import annotations

import pytest
import torch
from PIL import Image

from pixelforge import hub
from pixelforge.errors import ConfigError
from pixelforge.io.images import read_provenance
from pixelforge.models.stylegan import StyleGAN, StyleGANConfig
from pixelforge.tasks.style_mix import mixed_ws, style_mix_grid
from pixelforge.training.trainer import Trainer

from conftest import tiny_spec

SMALL = {"z_dim": 8, "w_dim": 8, "mapping_layers": 2, "channel_base": 128, "channel_max": 16}


def make(num_classes: int = 0, image_size: int = 16, seed: int = 0) -> StyleGAN:
    """A randomly initialised model with non-zero noise strengths and W averages."""
    torch.manual_seed(seed)
    config = StyleGANConfig(image_size=image_size, channels=1, num_classes=num_classes, **SMALL)
    model = StyleGAN(config)
    with torch.no_grad():
        for conv in model.generator.convs:
            conv.noise_strength.fill_(0.5)  # type: ignore[union-attr,operator]
        model.generator.w_avg.normal_()
    return model.eval()


def test_same_seed_same_pixels_whatever_the_batch_size():
    model = make(num_classes=3)
    a = model.sample(21, seed=4)
    assert a.shape == (21, 1, 16, 16)
    assert torch.equal(a, model.sample(21, seed=4, batch_size=1))
    assert torch.equal(a, model.sample(21, seed=4, batch_size=5))
    assert not torch.equal(a, model.sample(21, seed=5))
    z = model.sample_latents(3, seed=1)  # the lab hooks: from_lab(to_lab(z)) is generate(z)
    labels = torch.tensor([0, 1, 2])
    w = model.to_lab(z, labels)
    assert w.shape == (3, 8) and model.lab_space == "w"
    assert torch.allclose(model.from_lab(w, labels), model.generate(z, labels), atol=1e-6)


def test_truncation_zero_gives_the_class_average_for_every_seed():
    model = make(num_classes=3)
    a = model.sample(4, seed=1, class_label=2, truncation=0.0)
    b = model.sample(4, seed=9, class_label=2, truncation=0.0)
    assert torch.equal(a, b) and torch.equal(a[0], a[3])
    avg = model.generator.w_avg[2:3]
    expected = (model.generator.synthesis(avg) + 1) / 2
    assert torch.allclose(a[:1], expected.clamp(0, 1), atol=1e-6)
    other = model.sample(1, seed=1, class_label=0, truncation=0.0)
    assert not torch.equal(a[:1], other)  # each class has its own average
    half = model.sample(4, seed=1, class_label=2, truncation=0.5)
    assert not torch.equal(half, a) and not torch.equal(
        half, model.sample(4, seed=1, class_label=2)
    )
    with pytest.raises(ConfigError, match="--truncation must be between 0 and 1"):
        model.sample(2, truncation=1.5)


def test_conditional_mapping_follows_labels_and_refuses_unknown_classes():
    model = make(num_classes=3)
    z = model.sample_latents(4, seed=0)
    g = model.generator
    w0, w1 = (
        g.mapping(z, torch.zeros(4, dtype=torch.long)),
        g.mapping(z, torch.ones(4, dtype=torch.long)),
    )
    assert (w0 - w1).abs().mean() > 1e-3
    with pytest.raises(ConfigError, match="--class must be between 0 and 2"):
        model.sample(2, class_label=3)
    with pytest.raises(ConfigError, match="between 0 and 2"):
        g.mapping(z, torch.full((4,), 3))
    with pytest.raises(ConfigError, match="unconditional"):
        make().sample(2, class_label=1)


def test_style_mix_grid_rows_columns_and_cells():
    model = make(num_classes=0)
    n, seed, k = 3, 5, 4
    grid = style_mix_grid(model, n, seed=seed, crossover=k)
    assert grid.shape == ((n + 1) ** 2, 1, 16, 16)
    assert torch.equal(grid[0], torch.ones(1, 16, 16))  # the blank corner
    top = model.sample(n, seed=seed)
    left = model.sample(n, seed=seed + 1)
    assert torch.equal(grid[1 : n + 1], top)  # the images `sample --seed S` gives
    assert torch.equal(grid[n + 1 :: n + 1], left)
    g = model.generator
    wa, wb = g.mapping(model.sample_latents(n, seed)), g.mapping(model.sample_latents(n, seed + 1))
    i, j = 2, 0  # the cell right of B_2 and below A_0
    ws = mixed_ws(wa[j : j + 1], wb[i : i + 1], g.num_ws, k)
    assert torch.equal(ws[0, :k], wa[j].expand(k, -1)) and torch.equal(
        ws[0, k:], wb[i].expand(g.num_ws - k, -1)
    )
    cell = ((g.synthesis(ws) + 1) / 2).clamp(0, 1)
    assert torch.allclose(grid[(i + 1) * (n + 1) + j + 1], cell[0], atol=1e-5)
    assert not torch.allclose(grid[(i + 1) * (n + 1) + j + 1], top[j], atol=1e-3)
    with pytest.raises(ConfigError, match="--mix-layers must be between 1 and 5"):
        style_mix_grid(model, n, crossover=6)


def test_training_updates_w_avg_and_the_saved_model_keeps_it(tmp_path):
    spec = tiny_spec("stylegan", tmp_path, model={"num_classes": None})
    trainer = Trainer(spec, tmp_path, progress=False)
    trainer.fit()
    assert trainer.nonfinite_total == 0
    w_avg = trainer.task.modules["G"].w_avg
    assert w_avg.shape == (10, 8) and bool((w_avg != 0).any())
    loaded = hub.load(tmp_path)
    assert torch.equal(loaded.generator.w_avg, trainer.task.modules["G_ema"].w_avg)
    assert loaded.sample(2, seed=0, class_label=3, truncation=0.7).shape == (2, 1, 8, 8)


@pytest.fixture
def stylegan_dir(tmp_path):
    path = tmp_path / "sg"
    hub.save_model(make(num_classes=2), path)
    return path


def test_cli_style_mix_writes_the_grid_with_provenance(stylegan_dir, tmp_path, cli):
    out = tmp_path / "mix.png"
    code, _, err = cli(
        "sample",
        stylegan_dir,
        "--style-mix",
        "--n",
        "3",
        "--seed",
        "2",
        "--truncation",
        "0.8",
        "--out",
        out,
    )
    assert code == 0, err
    assert Image.open(out).size == (4 * 16 + 5 * 2, 4 * 16 + 5 * 2)  # 4 x 4 cells, 2 px padding
    meta = read_provenance(out)
    assert meta["style_mix"] is True and meta["truncation"] == 0.8
    assert "--style-mix" in meta["command"] and "--truncation 0.8" in meta["command"]
    code, _, err = cli("sample", stylegan_dir, "--n", "2", "--truncation", "2", "--out", out)
    assert code != 0 and "--truncation must be between 0 and 1" in err


def test_cli_style_mix_and_truncation_refuse_other_families(tmp_path, cli):
    for flags in (["--style-mix"], ["--truncation", "0.5"]):
        code, out, err = cli("sample", "dcgan-digits", *flags, "--out", tmp_path / "x.png")
        assert code != 0
        assert "needs a stylegan model" in err and len(err.strip().splitlines()) == 1
        assert "Traceback" not in err + out
