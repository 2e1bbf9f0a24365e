"""The GAN train step shared by every GAN family (generator + discriminator models).

One step: a discriminator update on real and generated images (with R1 or the WGAN gradient
penalty when asked), then a generator update. Latents, labels for generated images and penalty
interpolation weights are drawn from the step's seeded generator.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import torch

from pixelforge.config import check_range
from pixelforge.errors import ConfigError
from pixelforge.losses.adversarial import d_loss, g_loss, gradient_penalty, r1_penalty
from pixelforge.training.config import TrainConfig
from pixelforge.training.task import StepContext, TrainTask, frozen_copy


@dataclass(frozen=True)
class GANTrainConfig(TrainConfig):
    loss: Literal["non-saturating", "hinge", "lsgan", "wgan-gp"] = (
        "non-saturating"  # adversarial loss
    )
    r1_gamma: float = (
        0.0  # weight of the R1 penalty on real images (0: off); the loss adds gamma/2 * R1
    )
    r1_every: int = 1  # lazy R1: apply every N steps, scaled by N (StyleGAN2)
    gp_weight: float = 10.0  # WGAN-GP gradient-penalty weight (only with loss=wgan-gp)
    d_lr_mult: float = 1.0  # discriminator learning rate = lr * d_lr_mult (TTUR)
    d_steps: int = 1  # discriminator updates per step (the same real batch each time)

    def __post_init__(self) -> None:
        super().__post_init__()
        check_range("train.r1_gamma", self.r1_gamma, low=0)
        check_range("train.r1_every", self.r1_every, low=1)
        check_range("train.gp_weight", self.gp_weight, low=0)
        check_range("train.d_lr_mult", self.d_lr_mult, low=0, low_inclusive=False)
        check_range("train.d_steps", self.d_steps, low=1, high=10)


class GANTask(TrainTask):
    """Trains ``model.generator`` and ``model.discriminator`` of an ImageGenerator family model."""

    model_cls: type

    def __init__(self, model_config: Any, train_config: GANTrainConfig) -> None:
        super().__init__(model_config, train_config)
        if train_config.loss == "wgan-gp" and getattr(model_config, "d_norm", "none") == "batch":
            raise ConfigError(
                "train.loss=wgan-gp needs a discriminator without batch norm "
                "(its penalty is per sample): set model.d_norm=none."
            )
        self.model: Any = self.model_cls(model_config)
        ema = frozen_copy(self.model.generator)
        self.modules = {"G": self.model.generator, "D": self.model.discriminator, "G_ema": ema}
        self.ema = {"G_ema": "G"}
        cfg = train_config
        self.optimizers = {
            "D": torch.optim.Adam(
                self.model.discriminator.parameters(),
                lr=cfg.lr * cfg.d_lr_mult,
                betas=cfg.betas,
                weight_decay=cfg.weight_decay,
            ),
            "G": torch.optim.Adam(
                self.model.generator.parameters(),
                lr=cfg.lr,
                betas=cfg.betas,
                weight_decay=cfg.weight_decay,
            ),
        }

    def _fake(self, ctx: StepContext, labels: torch.Tensor | None) -> torch.Tensor:
        z = ctx.randn(*self.model.latent_shape())
        return self.model.generator(z, labels)

    def train_step(
        self, batch: dict[str, torch.Tensor], ctx: StepContext
    ) -> dict[str, torch.Tensor]:
        cfg: GANTrainConfig = self.train_config
        D = self.model.discriminator
        real = batch["image"]
        labels = batch.get("label") if self.model.num_classes else None
        fake_labels = ctx.randint(self.model.num_classes) if labels is not None else None

        # One generated batch serves the first discriminator update and the generator update,
        # as in the reference DCGAN loop; extra discriminator updates draw fresh latents.
        with ctx.autocast():
            fake = self._fake(ctx, fake_labels)
        D.requires_grad_(True)
        for i in range(cfg.d_steps):
            if i > 0:
                with torch.no_grad(), ctx.autocast():
                    fake_i = self._fake(ctx, fake_labels)
            else:
                fake_i = fake.detach()
            r1_now = cfg.r1_gamma > 0 and ctx.step % cfg.r1_every == 0
            with ctx.autocast():
                real_in = real.detach().requires_grad_(r1_now)
                real_logits = D(real_in, labels).float()
                fake_logits = D(fake_i, fake_labels).float()
                loss_d = d_loss(cfg.loss, real_logits, fake_logits)
            total_d = loss_d
            if r1_now:
                total_d = total_d + 0.5 * cfg.r1_gamma * cfg.r1_every * r1_penalty(
                    real_logits, real_in
                )
            if cfg.loss == "wgan-gp":
                eps = ctx.rand(1, 1, 1)
                penalty = gradient_penalty(
                    lambda x: D(x, labels).float(), real, fake_i.float(), eps
                )
                total_d = total_d + cfg.gp_weight * penalty
            ctx.optimize("D", total_d)

        # Generator (the discriminator's weights need no gradient here)
        D.requires_grad_(False)
        with ctx.autocast():
            loss_g = g_loss(cfg.loss, D(fake, fake_labels).float())
        ctx.optimize("G", loss_g)
        D.requires_grad_(True)
        return {"loss_D": loss_d.detach(), "loss_G": loss_g.detach()}

    def export(self) -> Any:
        model = self.model_cls(self.model_config)
        model.generator.load_state_dict(self.modules["G_ema"].state_dict())
        model.discriminator.load_state_dict(self.modules["D"].state_dict())
        return model

    def init_from(self, model: Any) -> None:
        self.modules["G"].load_state_dict(model.generator.state_dict())
        self.modules["G_ema"].load_state_dict(model.generator.state_dict())
        self.modules["D"].load_state_dict(model.discriminator.state_dict())

    @torch.no_grad()
    def sample_grid(self, n: int, seed: int) -> torch.Tensor:
        model = self.export().to(next(self.modules["G_ema"].parameters()).device)
        images: torch.Tensor = model.sample(n, seed=seed)
        return images
