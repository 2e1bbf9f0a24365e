"""The diffusion family trains, matches diffusers' UNet, and samples reproducibly."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import dataclasses
from typing import Any

import pytest
import torch

from pixelforge import hub
from pixelforge.errors import ConfigError
from pixelforge.models.diffusion import DiffusionConfig, DiffusionModel, unet_kwargs
from pixelforge.training.diffusion import DiffusionTrainConfig
from pixelforge.training.trainer import Trainer

from conftest import tiny_spec


def tiny_model(num_classes: int = 0, **changes: Any) -> DiffusionModel:
    torch.manual_seed(0)
    config = DiffusionConfig(
        image_size=8,
        channels=1,
        num_classes=num_classes,
        block_out_channels=(8, 16),
        layers_per_block=1,
        attention=True,
        num_train_timesteps=100,
    )
    return DiffusionModel(dataclasses.replace(config, **changes))


@pytest.mark.parametrize("prediction", ["epsilon", "v_prediction"])
def test_loss_decreases_on_digits(prediction, tmp_path):
    spec = tiny_spec(
        "diffusion",
        tmp_path,
        model={"num_classes": None, "prediction": prediction},
        train={"steps": 30, "lr": 2e-3, "label_dropout": 0.2},
    )
    trainer = Trainer(spec, tmp_path, progress=False)
    losses = [trainer.run_step(step)["loss"] for step in range(30)]
    assert trainer.nonfinite_total == 0
    assert sum(losses[-5:]) / 5 < 0.8 * sum(losses[:5]) / 5, losses


def test_unet_matches_diffusers_for_the_same_weights():
    from diffusers import UNet2DModel

    model = tiny_model(num_classes=10).eval()
    ref = UNet2DModel(**unet_kwargs(model.config)).eval()
    ref.load_state_dict(model.unet.state_dict())
    g = torch.Generator().manual_seed(1)
    x = torch.randn(3, 1, 8, 8, generator=g)
    t = torch.tensor([0, 37, 99])
    labels = torch.tensor([0, 9, 10])  # 10: the null class
    with torch.no_grad():
        ours = model.predict(x, t, labels)
        theirs = ref(x, t, class_labels=labels).sample
    assert ours.shape == x.shape
    assert (ours - theirs).abs().max() <= 1e-6
    assert ref.class_embedding.num_embeddings == 11  # K classes + the null class


def test_samples_depend_on_the_seed_only():
    model = tiny_model(num_classes=3)
    for sampler in ("ddpm", "ddim"):
        a = model.sample(5, seed=7, sampler=sampler, steps=4, guidance=2.0, batch_size=5)
        b = model.sample(5, seed=7, sampler=sampler, steps=4, guidance=2.0, batch_size=2)
        c = model.sample(5, seed=8, sampler=sampler, steps=4, guidance=2.0, batch_size=5)
        assert a.shape == (5, 1, 8, 8)
        assert torch.allclose(a, b, atol=1e-5), sampler
        assert not torch.allclose(a, c), sampler


@pytest.mark.parametrize("sampler", ["ddpm", "ddim", "dpm-solver++"])
@pytest.mark.parametrize("prediction", ["epsilon", "v_prediction"])
def test_every_sampler_runs(sampler, prediction):
    model = tiny_model(num_classes=2, prediction=prediction, beta_schedule="squaredcos_cap_v2")
    images = model.sample(3, seed=0, sampler=sampler, steps=3, class_label=1, guidance=3.0)
    assert images.shape == (3, 1, 8, 8)
    assert torch.isfinite(images).all() and images.min() >= 0 and images.max() <= 1


def test_ddim_steps_with_the_noise_of_its_clipped_estimate(monkeypatch):
    """DDIM clips its x0 estimate and re-derives the noise from it. Stepping with the unclipped
    noise instead (diffusers' default) made samples worse the more steps they took (domain FID
    0.30 at 50 steps, 5.8 at 250)."""
    model = tiny_model()
    z = torch.randn(2, *model.latent_shape(), generator=torch.Generator().manual_seed(0))

    def noise_of(x: torch.Tensor) -> torch.Tensor:  # a stand-in UNet whose x0 leaves [-1, 1]
        return -0.5 * x

    monkeypatch.setattr(model, "_guided", lambda x, t, labels, guidance: noise_of(x))
    got = model.denoise(z, None, sampler="ddim", steps=5)

    from pixelforge.models.diffusion import make_scheduler

    sched = make_scheduler(model.config, "ddim")
    sched.set_timesteps(5)
    ts, abar = sched.timesteps.tolist(), sched.alphas_cumprod
    consistent, default = z.clone(), z.clone()
    for i, t in enumerate(ts):
        a, a_prev = abar[t], (abar[ts[i + 1]] if i + 1 < len(ts) else torch.tensor(1.0))
        for x, rederive in ((consistent, True), (default, False)):
            eps = noise_of(x)
            x0 = ((x - (1 - a).sqrt() * eps) / a.sqrt()).clamp(-1, 1)
            e = (x - a.sqrt() * x0) / (1 - a).sqrt() if rederive else eps
            x.copy_(a_prev.sqrt() * x0 + (1 - a_prev).sqrt() * e)
    assert torch.allclose(got, consistent.clamp(-1, 1), atol=1e-5)
    assert not torch.allclose(got, default.clamp(-1, 1), atol=1e-2)  # the test can tell them apart


def test_bad_sampling_options_are_clear_errors():
    unconditional = tiny_model()
    with pytest.raises(ConfigError, match="guidance"):
        unconditional.sample(2, guidance=2.0, steps=2)
    with pytest.raises(ConfigError, match="unknown sampler"):
        unconditional.sample(2, sampler="euler", steps=2)
    with pytest.raises(ConfigError, match="--class"):
        tiny_model(num_classes=3).sample(2, class_label=3, steps=2)
    with pytest.raises(ConfigError, match=r"model\.block_out_channels"):
        DiffusionConfig(block_out_channels=())
    with pytest.raises(ConfigError, match=r"model\.num_train_timesteps"):
        DiffusionConfig(num_train_timesteps=1)


def test_save_and_load_give_the_same_model(tmp_path):
    model = tiny_model(num_classes=3, prediction="v_prediction")
    hub.save_model(model, tmp_path / "m")
    loaded = hub.load(tmp_path / "m")
    assert isinstance(loaded, DiffusionModel) and loaded.config == model.config
    for key, value in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value)
    a = model.sample(2, seed=3, steps=3, class_label=2)
    assert torch.equal(a, loaded.sample(2, seed=3, steps=3, class_label=2))


def test_trained_run_exports_the_ema_unet(tmp_path):
    spec = tiny_spec("diffusion", tmp_path, model={"num_classes": None})
    trainer = Trainer(spec, tmp_path, progress=False)
    trainer.fit()
    exported = trainer.task.export()
    ema = trainer.task.modules["UNet_ema"].state_dict()
    for key, value in exported.unet.state_dict().items():
        assert torch.equal(value, ema[key])
    loaded = hub.load(tmp_path)
    assert loaded.sample(2, seed=0, steps=2, class_label=4, guidance=1.5).shape == (2, 1, 8, 8)


def test_every_config_field_has_a_help_line():
    from pixelforge.config import field_help

    for cls in (DiffusionConfig, DiffusionTrainConfig):
        own = [f.name for f in dataclasses.fields(cls) if f.name in cls.__annotations__]
        assert set(own) <= set(field_help(cls)), cls


def test_cli_samples_with_sampler_options_and_records_them(tmp_path, cli) -> None:
    from pixelforge.io.images import read_provenance

    run = tmp_path / "run"
    spec = tiny_spec("diffusion", run, model={"num_classes": None})
    Trainer(spec, run, progress=False).fit()
    out = tmp_path / "g.png"
    code, _, err = cli(
        "sample",
        run,
        "--n",
        "4",
        "--class",
        "2",
        "--sampler",
        "dpm-solver++",
        "--steps",
        "5",
        "--guidance",
        "2.0",
        "--out",
        out,
    )
    assert code == 0, err
    meta = read_provenance(out)
    assert meta["sampler"] == "dpm-solver++" and meta["steps"] == 5 and meta["guidance"] == 2.0
    assert "--sampler dpm-solver++" in meta["command"]
    code, _, err = cli("sample", "dcgan-digits", "--steps", "5", "--out", tmp_path / "x.png")
    assert code == 2 and "--steps" in err and not (tmp_path / "x.png").exists()
