"""The GAN train step shared by every GAN family (generator + discriminator models).

One step: a discriminator update on real and generated images (with R1 or the WGAN gradient
penalty when asked), then a generator update. Latents, labels for generated images and penalty
interpolation weights are drawn from the step's seeded generator.

With ``train.augment`` the discriminator sees real and generated images through the same kind
of differentiable augmentation (:mod:`pixelforge.losses.augment`) in both updates: DiffAugment
always, ADA with a probability ``p`` adapted from sign(D(real)). ADA's ``p`` and its running sign
statistics live in the buffers of the task's ``augment`` module, so checkpoints save and resume
them like any weight; ``p`` is logged as ``ada_p``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, cast

import torch
import torch.distributed as dist
from torch import nn

from pixelforge.config import check_range
from pixelforge.errors import ConfigError
from pixelforge.losses.adversarial import d_loss, g_loss, gradient_penalty, r1_penalty
from pixelforge.losses.augment import ada_update, augment, parse_policy
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
    augment: Literal["none", "diffaugment", "ada"] = (
        "none"  # augmentation of D's inputs: none, DiffAugment (always) or ADA (probability p)
    )
    augment_policy: str = "color,translation,cutout"  # comma-separated transforms to apply
    ada_target: float = 0.6  # ADA: target of r_t = E[sign(D(real))]; p rises above it
    ada_interval: int = 4  # ADA: steps between adjustments of p
    ada_kimg: int = 100  # ADA: thousands of real images for p to move from 0 to 1

    def __post_init__(self) -> None:
        super().__post_init__()
        check_range("train.r1_gamma", self.r1_gamma, low=0)
        check_range("train.r1_every", self.r1_every, low=1)
        check_range("train.gp_weight", self.gp_weight, low=0)
        check_range("train.d_lr_mult", self.d_lr_mult, low=0, low_inclusive=False)
        check_range("train.d_steps", self.d_steps, low=1, high=10)
        try:
            parse_policy(self.augment_policy)
        except ValueError as exc:
            raise ConfigError(f"train.augment_policy: {exc}.") from None
        check_range("train.ada_target", self.ada_target, low=0, high=1, low_inclusive=False)
        check_range("train.ada_interval", self.ada_interval, low=1)
        check_range("train.ada_kimg", self.ada_kimg, low=1)


class AdaState(nn.Module):
    """ADA's training state as buffers (saved in checkpoints): ``p`` and the sign statistics
    of D's outputs on real images since the last adjustment."""

    p: torch.Tensor
    sign_sum: torch.Tensor
    count: torch.Tensor

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("p", torch.zeros((), dtype=torch.float64))
        self.register_buffer("sign_sum", torch.zeros((), dtype=torch.float64))
        self.register_buffer("count", torch.zeros((), dtype=torch.float64))


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
        self.augment_policy = parse_policy(cfg.augment_policy) if cfg.augment != "none" else ()
        if cfg.augment == "ada":
            self.modules["augment"] = AdaState()

    def _augment(self, x: torch.Tensor, ctx: StepContext, p: float) -> torch.Tensor:
        """The same kind of augmentation for real and generated images (identity when off)."""
        if not self.augment_policy:
            return x
        return augment(x, self.augment_policy, ctx.rand, p)

    @torch.no_grad()
    def _ada_observe(self, real_logits: torch.Tensor, ctx: StepContext) -> None:
        """Accumulate sign(D(real)); every ``ada_interval`` steps move ``p`` toward the target."""
        cfg: GANTrainConfig = self.train_config
        state = cast(AdaState, self.modules["augment"])
        stats = torch.stack([real_logits.sign().sum(), torch.tensor(float(len(real_logits)))])
        stats = stats.double().to(state.p.device)
        if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
            dist.all_reduce(stats)  # r_t over the global batch, so N processes equal one
        state.sign_sum += stats[0]
        state.count += stats[1]
        if (ctx.step + 1) % cfg.ada_interval == 0:
            r_t = float(state.sign_sum / state.count.clamp(min=1))
            new_p = ada_update(
                float(state.p),
                r_t,
                target=cfg.ada_target,
                batch_size=ctx.global_batch,
                interval=cfg.ada_interval,
                kimg=cfg.ada_kimg,
            )
            state.p.fill_(new_p)
            state.sign_sum.zero_()
            state.count.zero_()

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
        ada = cast(AdaState | None, self.modules.get("augment"))
        p = 1.0 if ada is None else float(ada.p)  # ADA's p is fixed for the whole step

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
                real_logits = D(self._augment(real_in, ctx, p), labels).float()
                fake_logits = D(self._augment(fake_i, ctx, p), fake_labels).float()
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
            if ada is not None and i == 0:
                self._ada_observe(real_logits.detach(), ctx)

        # Generator (the discriminator's weights need no gradient here)
        D.requires_grad_(False)
        with ctx.autocast():
            loss_g = g_loss(cfg.loss, D(self._augment(fake, ctx, p), fake_labels).float())
        ctx.optimize("G", loss_g)
        D.requires_grad_(True)
        out = {"loss_D": loss_d.detach(), "loss_G": loss_g.detach()}
        if ada is not None:
            out["ada_p"] = ada.p.detach().float()
        return out

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
