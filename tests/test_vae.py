"""The autoencoder / VAE family: shapes, the KL term, training, VAE-GAN and save/load."""

from __future__ import annotations

import warnings

import pytest
import torch

from pixelforge import hub
from pixelforge.errors import ConfigError
from pixelforge.models.vae import VAE, VAEConfig
from pixelforge.training.logging import read_metrics
from pixelforge.training.run import prepare_run
from pixelforge.training.task import StepContext
from pixelforge.training.trainer import Trainer
from pixelforge.training.vae import VAETask, VAETrainConfig

from conftest import tiny_spec


def _cfg(**kw) -> VAEConfig:
    base = {"image_size": 8, "channels": 1, "latent_dim": 4, "width": 8, "d_width": 8}
    return VAEConfig(**{**base, **kw})


def _one_step(task: VAETask, images: torch.Tensor, seed: int = 0) -> dict[str, torch.Tensor]:
    def optimize(name: str, loss: torch.Tensor) -> bool:
        opt = task.optimizers[name]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return True

    n = images.shape[0]
    ctx = StepContext(
        step=0,
        generator=torch.Generator().manual_seed(seed),
        global_batch=n,
        offset=0,
        local_batch=n,
        device=torch.device("cpu"),
        autocast_dtype=None,
        optimize=optimize,
    )
    return task.train_step({"image": images}, ctx)


def _images(n: int = 8, channels: int = 1, size: int = 8) -> torch.Tensor:
    g = torch.Generator().manual_seed(1)
    return torch.rand(n, channels, size, size, generator=g) * 2 - 1


def test_config_checks_name_the_field():
    with pytest.raises(ConfigError, match=r"model\.image_size"):
        VAEConfig(image_size=12)
    with pytest.raises(ConfigError, match=r"model\.latent_dim"):
        VAEConfig(latent_dim=0)
    with pytest.raises(ConfigError, match=r"model\.num_classes"):
        VAEConfig(num_classes=10)
    with pytest.raises(ConfigError, match=r"train\.beta"):
        VAETrainConfig(beta=-1.0)
    with pytest.raises(ConfigError, match=r"model\.d_width"):
        VAETask(_cfg(d_width=0), VAETrainConfig(adv_weight=0.1))


@pytest.mark.parametrize("variational", [True, False])
def test_shapes_range_and_reconstruction(variational):
    torch.manual_seed(0)
    model = VAE(_cfg(image_size=16, channels=3, latent_dim=5, variational=variational))
    x = _images(4, 3, 16)
    mu, logvar = model.encode(x)
    assert mu.shape == (4, 5)
    assert (logvar is not None) == variational
    if logvar is not None:
        assert logvar.shape == (4, 5)
    assert model.latent_shape() == (5,)
    rec = model.reconstruct(x)
    assert rec.shape == x.shape and rec.abs().max() <= 1
    s = model.sample(6, seed=3)
    assert s.shape == (6, 3, 16, 16)
    assert float(s.min()) >= 0 and float(s.max()) <= 1
    # the same images whatever the batch size (to float rounding: kernels vary with the batch)
    assert torch.allclose(s, model.sample(6, seed=3, batch_size=4), atol=1e-6)


def test_kl_is_zero_for_the_autoencoder_and_positive_for_the_vae():
    torch.manual_seed(0)
    x = _images()
    ae = _one_step(VAETask(_cfg(variational=False), VAETrainConfig()), x)
    vae = _one_step(VAETask(_cfg(variational=True), VAETrainConfig()), x)
    assert float(ae["kl"]) == 0.0
    assert float(ae["loss"]) == pytest.approx(float(ae["recon"]))
    assert float(vae["kl"]) > 0.0
    assert float(vae["loss"]) > float(vae["recon"])


def test_reparameterisation_noise_comes_from_the_step_generator():
    x = _images()
    losses = []
    for seed in (0, 0, 1):
        torch.manual_seed(0)
        task = VAETask(_cfg(), VAETrainConfig())
        torch.manual_seed(123 + len(losses))  # the global RNG must not matter
        losses.append(float(_one_step(task, x, seed=seed)["recon"]))
    assert losses[0] == losses[1]
    assert losses[0] != losses[2]


@pytest.mark.parametrize("recon_loss", ["l1", "perceptual"])
def test_other_reconstruction_losses_give_finite_updates(recon_loss):
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a random-weight VGG when offline
        task = VAETask(_cfg(), VAETrainConfig(recon_loss=recon_loss, perceptual_weight=0.5))
        out = _one_step(task, _images())
    assert all(torch.isfinite(v) for v in out.values())
    assert all(torch.isfinite(p).all() for p in task.modules["G"].parameters())


@pytest.mark.parametrize("variational", [False, True])
def test_reconstruction_loss_drops_on_digits(variational, tmp_path):
    spec = tiny_spec(
        "vae",
        tmp_path,
        model={"variational": variational},
        train={"steps": 20, "log_every": 1, "checkpoint_every": 20, "lr": 5e-3},
    )
    trainer = Trainer(spec, tmp_path, progress=False)
    trainer.fit()
    assert trainer.nonfinite_total == 0
    recon = [r["recon"] for r in read_metrics(tmp_path) if "recon" in r]
    assert len(recon) == 20
    assert sum(recon[-5:]) / 5 < 0.8 * sum(recon[:5]) / 5


def test_vae_gan_steps_a_discriminator(tmp_path):
    spec = tiny_spec("vae", tmp_path, train={"adv_weight": 0.1, "steps": 2})
    trainer = Trainer(spec, tmp_path, progress=False)
    d0 = {k: v.clone() for k, v in trainer.task.modules["D"].state_dict().items()}
    trainer.fit()
    assert set(trainer.task.optimizers) == {"VAE", "D"}
    d_state = trainer.task.optimizers["D"].state
    assert d_state and all(int(s["step"]) == 2 for s in d_state.values())
    d1 = trainer.task.modules["D"].state_dict()
    assert any(not torch.equal(d0[k], d1[k]) for k in d0)
    rows = [r for r in read_metrics(tmp_path) if "adv_D" in r]
    assert rows and all("adv_G" in r for r in rows)


def test_vae_gan_resumes_exactly(tmp_path):
    straight, split = tmp_path / "straight", tmp_path / "split"
    spec = tiny_spec("vae", straight, train={"adv_weight": 0.1, "steps": 4})
    four = Trainer(spec, straight, progress=False)
    four.fit()
    Trainer(tiny_spec("vae", split, train={"adv_weight": 0.1}), split, progress=False).fit()
    more, resumed = prepare_run(None, None, split, overrides={"train": {"steps": 4}})
    again = Trainer(more, split, progress=False)
    again.fit()
    assert resumed
    for name, module in four.task.modules.items():
        a, b = module.state_dict(), again.task.modules[name].state_dict()
        assert all(torch.equal(a[k], b[k]) for k in a), name


def test_without_adv_weight_there_is_no_discriminator_optimizer():
    task = VAETask(_cfg(), VAETrainConfig())
    assert set(task.optimizers) == {"VAE"}


def test_saved_model_reloads_with_identical_samples_and_reconstructions(tmp_path):
    spec = tiny_spec("vae", tmp_path)
    trainer = Trainer(spec, tmp_path, progress=False)
    trainer.fit()
    model = trainer.task.export()
    # export() carries the EMA weights of encoder and decoder
    for key, value in trainer.task.modules["G_ema"].state_dict().items():
        assert torch.equal(model.decoder.state_dict()[key], value)
    hub.save_model(model, tmp_path / "model")
    loaded = hub.load(tmp_path / "model")
    assert isinstance(loaded, VAE) and loaded.config == model.config
    a = loaded.sample(3, seed=7)
    assert a.shape == (3, 1, 8, 8)
    assert torch.equal(a, model.sample(3, seed=7))
    assert not torch.equal(a, loaded.sample(3, seed=8))
    x = _images(3)
    assert torch.equal(loaded.reconstruct(x), model.reconstruct(x))
    grid = trainer.task.sample_grid(4, seed=7)
    assert torch.equal(grid, loaded.sample(4, seed=7))


def test_configs_round_trip_through_json():
    import json

    from pixelforge.config import from_dict, to_dict

    for cfg in (VAEConfig(variational=False), VAETrainConfig(recon_loss="l1", adv_weight=0.5)):
        again = from_dict(type(cfg), json.loads(json.dumps(to_dict(cfg))))
        assert again == cfg
    with pytest.raises(ConfigError, match=r"train\.recon_loss"):
        from_dict(VAETrainConfig, {"recon_loss": "ssim"}, where="train")
