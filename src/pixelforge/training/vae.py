"""The train step of the autoencoder / VAE family (optionally VAE-GAN).

One step: encode the real batch, draw the latent with the reparameterisation trick (noise from the
step's seeded generator, so runs resume exactly and split across processes like one), decode, and
update the encoder and decoder together (optimizer ``VAE``) on

    recon + beta * KL / (C*H*W)  [+ adv_weight * generator loss]

where ``recon`` is the per-pixel mean L2 or L1 distance (``perceptual``: L1 plus
``perceptual_weight`` times the VGG perceptual loss). Dividing the per-sample KL by the number of
pixel values puts it on the per-pixel scale of the reconstruction term, so ``beta = 1`` is the
usual ELBO of a summed reconstruction loss. A plain autoencoder (``model.variational=false``) has
no KL term and no noise. With ``adv_weight > 0`` (VAE-GAN, Larsen et al. 2016) a discriminator
sees real images against reconstructions and decoded prior samples, with the non-saturating loss,
and is updated after the autoencoder (optimizer ``D``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn

from pixelforge.config import check_range
from pixelforge.errors import ConfigError
from pixelforge.losses.adversarial import d_loss, g_loss
from pixelforge.metrics.kl import kl_diag_gaussian_standard
from pixelforge.models.vae import VAE, VAEConfig
from pixelforge.training.config import TINY_TRAIN, TrainConfig
from pixelforge.training.task import StepContext, TrainTask, frozen_copy

TINY: dict[str, Any] = {
    "model": {"image_size": 8, "latent_dim": 4, "width": 8, "d_width": 8},
    "train": dict(TINY_TRAIN),
}  # the family's seconds-long test configuration (Family.tiny)


@dataclass(frozen=True)
class VAETrainConfig(TrainConfig):
    recon_loss: Literal["l2", "l1", "perceptual"] = (
        "l2"  # reconstruction loss; perceptual = L1 + perceptual_weight * VGG feature distance
    )
    beta: float = 1.0  # weight of the KL term (beta-VAE); unused by a plain autoencoder
    perceptual_weight: float = 1.0  # weight of the VGG perceptual term (recon_loss=perceptual)
    adv_weight: float = 0.0  # weight of the adversarial term (0: off; > 0: VAE-GAN)
    d_lr_mult: float = 1.0  # discriminator learning rate = lr * d_lr_mult (VAE-GAN only)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.recon_loss not in ("l2", "l1", "perceptual"):
            raise ConfigError(
                f"train.recon_loss must be l2, l1 or perceptual, got '{self.recon_loss}'."
            )
        check_range("train.beta", self.beta, low=0)
        check_range("train.perceptual_weight", self.perceptual_weight, low=0)
        check_range("train.adv_weight", self.adv_weight, low=0)
        check_range("train.d_lr_mult", self.d_lr_mult, low=0, low_inclusive=False)


class VAETask(TrainTask):
    """Trains ``encoder`` + ``decoder`` (modules ``E``, ``G``; EMA copies ``E_ema``, ``G_ema``) and,
    for VAE-GAN, ``discriminator`` (module ``D``, kept in checkpoints whenever the model has one)."""

    model_cls: type = VAE

    def __init__(self, model_config: VAEConfig, train_config: VAETrainConfig) -> None:
        super().__init__(model_config, train_config)
        cfg = train_config
        self.adversarial = cfg.adv_weight > 0
        if self.adversarial and model_config.d_width == 0:
            raise ConfigError(
                "train.adv_weight > 0 (VAE-GAN) needs a discriminator: set model.d_width > 0 "
                "(e.g. 32), or train.adv_weight=0."
            )
        self.model: VAE = self.model_cls(model_config)
        self.modules = {
            "E": self.model.encoder,
            "G": self.model.decoder,
            "E_ema": frozen_copy(self.model.encoder),
            "G_ema": frozen_copy(self.model.decoder),
        }
        self.ema = {"E_ema": "E", "G_ema": "G"}
        if self.model.discriminator is not None:
            self.modules["D"] = self.model.discriminator
        params = [*self.model.encoder.parameters(), *self.model.decoder.parameters()]
        self.optimizers = {
            "VAE": torch.optim.Adam(
                params, lr=cfg.lr, betas=cfg.betas, weight_decay=cfg.weight_decay
            )
        }
        if self.adversarial:
            assert self.model.discriminator is not None
            self.optimizers["D"] = torch.optim.Adam(
                self.model.discriminator.parameters(),
                lr=cfg.lr * cfg.d_lr_mult,
                betas=cfg.betas,
                weight_decay=cfg.weight_decay,
            )
        self.perceptual: nn.Module | None = None
        if cfg.recon_loss == "perceptual":
            from pixelforge.losses.perceptual import PerceptualLoss

            self.perceptual = PerceptualLoss(value_range=(-1.0, 1.0))

    def _perceptual(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        assert self.perceptual is not None
        self.perceptual.to(pred.device)
        if pred.shape[1] == 1:  # the VGG takes RGB
            pred, target = pred.expand(-1, 3, -1, -1), target.expand(-1, 3, -1, -1)
        loss: torch.Tensor = self.perceptual(pred, target)
        return loss

    def recon_loss(self, recon: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
        """The reconstruction term (per-pixel mean; float32)."""
        cfg: VAETrainConfig = self.train_config
        recon, real = recon.float(), real.float()
        if cfg.recon_loss == "l2":
            return F.mse_loss(recon, real)
        loss = F.l1_loss(recon, real)
        if cfg.recon_loss == "perceptual":
            loss = loss + cfg.perceptual_weight * self._perceptual(recon, real)
        return loss

    def train_step(
        self, batch: dict[str, torch.Tensor], ctx: StepContext
    ) -> dict[str, torch.Tensor]:
        cfg: VAETrainConfig = self.train_config
        model = self.model
        real = batch["image"]
        latent = model.config.latent_dim
        D = model.discriminator if self.adversarial else None

        with ctx.autocast():
            mu, logvar = model.encode(real)
        if logvar is not None:
            mu, logvar = mu.float(), logvar.float()
            eps = ctx.randn(latent)
            z = mu + eps * torch.exp(0.5 * logvar)
            kl = kl_diag_gaussian_standard(mu, logvar).mean()
        else:
            z = mu
            kl = torch.zeros((), device=real.device)
        with ctx.autocast():
            recon = model.decode(z)
        loss_recon = self.recon_loss(recon, real)
        loss = loss_recon + cfg.beta * kl / real[0].numel() if logvar is not None else loss_recon
        out = {"loss": loss.detach(), "recon": loss_recon.detach(), "kl": kl.detach()}

        fake: torch.Tensor | None = None
        if D is not None:
            z_prior = ctx.randn(latent)
            with ctx.autocast():
                fake = torch.cat([recon, model.decode(z_prior)])
            D.requires_grad_(False)
            with ctx.autocast():
                loss_adv = g_loss("non-saturating", D(fake).float())
            D.requires_grad_(True)
            loss = loss + cfg.adv_weight * loss_adv
            out["loss"] = loss.detach()
            out["adv_G"] = loss_adv.detach()
        ctx.optimize("VAE", loss)

        if D is not None and fake is not None:
            with ctx.autocast():
                loss_d = d_loss("non-saturating", D(real).float(), D(fake.detach()).float())
            ctx.optimize("D", loss_d)
            out["adv_D"] = loss_d.detach()
        return out

    def export(self) -> Any:
        model = self.model_cls(self.model_config)
        model.encoder.load_state_dict(self.modules["E_ema"].state_dict())
        model.decoder.load_state_dict(self.modules["G_ema"].state_dict())
        if "D" in self.modules:
            model.discriminator.load_state_dict(self.modules["D"].state_dict())
        return model

    def init_from(self, model: Any) -> None:
        for name in ("E", "E_ema"):
            self.modules[name].load_state_dict(model.encoder.state_dict())
        for name in ("G", "G_ema"):
            self.modules[name].load_state_dict(model.decoder.state_dict())
        if "D" in self.modules and model.discriminator is not None:
            self.modules["D"].load_state_dict(model.discriminator.state_dict())

    @torch.no_grad()
    def sample_grid(self, n: int, seed: int) -> torch.Tensor:
        model = self.export().to(next(self.modules["G_ema"].parameters()).device)
        images: torch.Tensor = model.sample(n, seed=seed)
        return images
