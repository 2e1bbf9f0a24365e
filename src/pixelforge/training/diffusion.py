"""The diffusion train step: denoising score matching with an epsilon or v objective.

One step: draw per-sample timesteps t ~ U{0..T-1} and noise eps ~ N(0, I) from the step's
seeded generator, noise the real images with diffusers' scheduler (``add_noise``), and regress
the UNet's output on eps (``epsilon``) or on v = sqrt(a_t) eps - sqrt(1 - a_t) x0
(``v_prediction``, the scheduler's ``get_velocity``). For classifier-free guidance, each label
is replaced by the null class with probability ``train.label_dropout``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from pixelforge.config import check_range
from pixelforge.models.diffusion import DiffusionConfig, DiffusionModel, make_scheduler
from pixelforge.training.config import TINY_TRAIN, TrainConfig
from pixelforge.training.task import StepContext, TrainTask, frozen_copy

TINY: dict[str, Any] = {  # overrides of Family.tiny: a seconds-long test run
    "model": {
        "image_size": 8,
        "block_out_channels": [8, 16],
        "layers_per_block": 1,
        "attention": False,
        "num_train_timesteps": 100,
    },
    "train": dict(TINY_TRAIN),
}


@dataclass(frozen=True)
class DiffusionTrainConfig(TrainConfig):
    lr: float = 2e-4  # peak learning rate
    betas: tuple[float, float] = (0.9, 0.999)  # Adam betas
    label_dropout: float = 0.1  # P(label -> null class) in training, for CF guidance
    sample_steps: int = 20  # DDIM steps of the periodic sample grids

    def __post_init__(self) -> None:
        super().__post_init__()
        check_range("train.label_dropout", self.label_dropout, low=0, high=1)
        check_range("train.sample_steps", self.sample_steps, low=1, high=1000)


class DiffusionTask(TrainTask):
    """Trains ``model.unet`` of a :class:`DiffusionModel`, with an EMA copy."""

    model_cls = DiffusionModel

    def __init__(self, model_config: DiffusionConfig, train_config: DiffusionTrainConfig) -> None:
        super().__init__(model_config, train_config)
        self.model = DiffusionModel(model_config)
        self.modules = {"UNet": self.model.unet, "UNet_ema": frozen_copy(self.model.unet)}
        self.ema = {"UNet_ema": "UNet"}
        self.optimizers = {
            "UNet": torch.optim.Adam(
                self.model.unet.parameters(),
                lr=train_config.lr,
                betas=train_config.betas,
                weight_decay=train_config.weight_decay,
            )
        }
        self.scheduler = make_scheduler(model_config, "ddpm")

    def train_step(
        self, batch: dict[str, torch.Tensor], ctx: StepContext
    ) -> dict[str, torch.Tensor]:
        cfg: DiffusionTrainConfig = self.train_config
        model = self.model
        x0 = batch["image"]
        t = ctx.randint(model.config.num_train_timesteps)
        noise = ctx.randn(*model.latent_shape())
        keep = ctx.rand() >= cfg.label_dropout
        labels = None
        if model.num_classes:
            labels = batch["label"].long()
            labels = torch.where(keep, labels, torch.full_like(labels, model.null_class))
        noisy = self.scheduler.add_noise(x0, noise, t)
        if model.config.prediction == "epsilon":
            target = noise
        else:
            target = self.scheduler.get_velocity(x0, noise, t)
        with ctx.autocast():
            pred = model.predict(noisy, t, labels)
        loss = F.mse_loss(pred.float(), target.float())
        ctx.optimize("UNet", loss)
        return {"loss": loss.detach()}

    def export(self) -> Any:
        model = DiffusionModel(self.model_config)
        model.unet.load_state_dict(self.modules["UNet_ema"].state_dict())
        return model

    def init_from(self, model: Any) -> None:
        self.modules["UNet"].load_state_dict(model.unet.state_dict())
        self.modules["UNet_ema"].load_state_dict(model.unet.state_dict())

    @torch.no_grad()
    def sample_grid(self, n: int, seed: int) -> torch.Tensor:
        model = self.export().to(next(self.modules["UNet_ema"].parameters()).device)
        images: torch.Tensor = model.sample(
            n, seed=seed, sampler="ddim", steps=self.train_config.sample_steps
        )
        return images
