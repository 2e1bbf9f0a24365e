"""GAN losses and regularisers compute what their papers define; every DCGAN variant trains."""

from __future__ import annotations

import dataclasses

import pytest
import torch
import torch.nn.functional as F

from pixelforge import hub
from pixelforge.losses.adversarial import d_loss, g_loss, gradient_penalty, r1_penalty
from pixelforge.training.run import prepare_run
from pixelforge.training.trainer import Trainer

from conftest import tiny_spec


def test_losses_match_their_definitions():
    real, fake = torch.tensor([2.0, -1.0]), torch.tensor([-3.0, 0.5])
    ones, zeros = torch.ones(2), torch.zeros(2)
    bce = F.binary_cross_entropy_with_logits
    assert torch.allclose(d_loss("non-saturating", real, fake), bce(real, ones) + bce(fake, zeros))
    assert torch.allclose(g_loss("non-saturating", fake), bce(fake, ones))
    assert torch.allclose(d_loss("hinge", real, fake), torch.tensor((0 + 2) / 2 + (0 + 1.5) / 2))
    assert torch.allclose(g_loss("hinge", fake), torch.tensor(1.25))
    assert torch.allclose(
        d_loss("lsgan", real, fake), 0.5 * torch.tensor((1 + 4) / 2 + (9 + 0.25) / 2)
    )
    assert torch.allclose(d_loss("wgan-gp", real, fake), fake.mean() - real.mean())
    # A discriminator that separates perfectly by the hinge margin has zero hinge loss.
    assert d_loss("hinge", torch.full((4,), 1.5), torch.full((4,), -1.5)) == 0


def test_r1_and_gradient_penalty_on_a_linear_critic():
    w = torch.tensor([3.0, 4.0])  # ||w|| = 5

    def critic(x):
        return x.flatten(1) @ w

    x = torch.randn(6, 2, requires_grad=True)
    assert torch.allclose(r1_penalty(critic(x), x), torch.tensor(25.0))
    real, fake, eps = torch.randn(6, 2), torch.randn(6, 2), torch.rand(6, 1)
    assert torch.allclose(
        gradient_penalty(critic, real, fake, eps), torch.tensor(16.0)
    )  # (5 - 1)^2
    unit = w / 5
    assert torch.allclose(
        gradient_penalty(lambda v: v @ unit, real, fake, eps), torch.tensor(0.0), atol=1e-6
    )


@pytest.mark.parametrize(
    ("loss", "model"),
    [
        ("non-saturating", {"num_classes": None, "conditioning": "projection"}),
        ("hinge", {"num_classes": None, "conditioning": "concat", "spectral_norm": True}),
        ("lsgan", {"num_classes": 0}),
        ("wgan-gp", {"num_classes": 0, "d_norm": "none"}),
    ],
)
def test_every_loss_and_conditioning_trains_with_finite_weights(loss, model, tmp_path):
    spec = tiny_spec(
        "dcgan", tmp_path, model=model, train={"loss": loss, "steps": 3, "r1_gamma": 0.1}
    )
    trainer = Trainer(spec, tmp_path, progress=False)
    trainer.fit()
    assert trainer.nonfinite_total == 0
    g = trainer.task.modules["G"]
    assert all(torch.isfinite(p).all() for p in g.parameters())
    sample = hub.load(tmp_path).sample(4, seed=0, class_label=1 if spec.model.num_classes else None)
    assert sample.shape == (4, 1, 8, 8)


def test_wgan_gp_with_batch_norm_is_refused(tmp_path):
    from pixelforge.errors import ConfigError

    spec = tiny_spec("dcgan", tmp_path, train={"loss": "wgan-gp"})
    with pytest.raises(ConfigError, match="d_norm=none"):
        Trainer(spec, tmp_path, progress=False)


def test_conditional_generator_follows_its_label():
    model = hub.load("dcgan-digits")
    z = model.sample_latents(4, seed=0)
    a = model.generate(z, torch.full((4,), 1))
    b = model.generate(z, torch.full((4,), 8))
    assert (a - b).abs().mean() > 0.1  # same latents, another class: another image


def test_init_starts_a_new_run_from_a_model(tmp_path):
    first = tmp_path / "first"
    Trainer(tiny_spec("dcgan", first), first, progress=False).fit()
    spec, resumed = prepare_run(
        "dcgan",
        "digits",
        tmp_path / "second",
        init=str(first),
        overrides={"train": {"steps": 1, "device": "cpu", "tensorboard": False}},
    )
    assert not resumed and spec.model == hub.load(first).config
    trainer = Trainer(spec, tmp_path / "second", progress=False)
    trainer._init_from(spec.init)
    start = hub.load(first)
    for key, value in start.generator.state_dict().items():
        assert torch.equal(trainer.task.modules["G"].state_dict()[key], value)
        assert torch.equal(trainer.task.modules["G_ema"].state_dict()[key], value)
    with pytest.raises(Exception, match="--init fixes the architecture"):
        prepare_run(
            "dcgan",
            "digits",
            tmp_path / "third",
            init=str(first),
            overrides={"model": {"image_size": 16}},
        )


def test_a_fully_convolutional_model_continues_on_another_crop_size(tmp_path):
    from conftest import make_image_folder

    data = make_image_folder(tmp_path / "photos")
    first = tmp_path / "first"
    spec = tiny_spec("restore", first, dataset=data)
    Trainer(spec, first, progress=False).fit()
    crop = spec.model.image_size * 2
    spec2, _ = prepare_run(
        "restore",
        data,
        tmp_path / "second",
        init=str(first),
        overrides={
            "model": {"image_size": crop, "fill": "smooth"},  # neither shapes the weights
            "train": {"steps": 1, "device": "cpu", "batch_size": 2},
        },
    )
    stored = hub.load(first).config
    assert stored.fill == "harmonic"
    assert spec2.model == dataclasses.replace(stored, image_size=crop, fill="smooth")
    trainer = Trainer(spec2, tmp_path / "second", progress=False)
    trainer._init_from(spec2.init)
    start = hub.load(first)
    for key, value in start.net.state_dict().items():
        assert torch.equal(trainer.task.modules["net"].state_dict()[key], value)
    with pytest.raises(Exception, match="--init fixes the architecture"):  # still fixed: width
        prepare_run(
            "restore",
            data,
            tmp_path / "third",
            init=str(first),
            overrides={"model": {"width": spec.model.width + 1}},
        )
