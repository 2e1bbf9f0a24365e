"""Denoising diffusion (Ho et al. 2020) on a diffusers ``UNet2DModel``.

The network and the samplers (DDPM, DDIM, DPM-Solver++) come from diffusers; pixelforge owns
training (see :mod:`pixelforge.training.diffusion`), seeding and classifier-free guidance
(Ho and Salimans 2022). A class-conditional model has ``num_classes + 1`` class embeddings: the
last one is the "null" class the network learns when labels are dropped during training.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import nn

from pixelforge.config import check_range
from pixelforge.errors import ConfigError
from pixelforge.models.base import ImageGenerator, check_image_fields

SAMPLERS = ("ddpm", "ddim", "dpm-solver++")


@dataclass(frozen=True)
class DiffusionConfig:
    image_size: int = 32  # output side in pixels: a power of two from 8 to 256
    channels: int | None = None  # image channels (1 gray, 3 RGB); null: taken from the dataset
    num_classes: int | None = 0  # 0: unconditional; K: K classes (+ null class); null: data
    block_out_channels: tuple[int, ...] = (64, 128, 256)  # UNet widths, one per resolution
    layers_per_block: int = 2  # ResNet layers in each UNet down block (up blocks have one more)
    attention: bool = True  # self-attention at the lowest resolution (and in the mid block)
    prediction: Literal["epsilon", "v_prediction"] = "epsilon"  # what the UNet predicts
    num_train_timesteps: int = 1000  # diffusion steps T of the forward (noising) process
    beta_schedule: Literal["linear", "squaredcos_cap_v2"] = "linear"  # betas: linear or cosine

    def __post_init__(self) -> None:
        check_image_fields(self.image_size, self.channels, self.num_classes)
        s = self.image_size
        if not 1 <= len(self.block_out_channels) <= 6:
            raise ConfigError(
                "model.block_out_channels must list 1 to 6 widths, "
                f"got {list(self.block_out_channels)}."
            )
        for i, c in enumerate(self.block_out_channels):
            check_range(f"model.block_out_channels[{i}]", c, low=1)
        if s >> (len(self.block_out_channels) - 1) < 1:
            raise ConfigError(
                f"model.block_out_channels has {len(self.block_out_channels)} levels: too many "
                f"halvings for model.image_size={s}."
            )
        check_range("model.layers_per_block", self.layers_per_block, low=1, high=8)
        if self.prediction not in ("epsilon", "v_prediction"):
            raise ConfigError(
                f"model.prediction must be epsilon or v_prediction, got '{self.prediction}'."
            )
        check_range("model.num_train_timesteps", self.num_train_timesteps, low=2, high=10000)
        if self.beta_schedule not in ("linear", "squaredcos_cap_v2"):
            raise ConfigError(
                "model.beta_schedule must be linear or squaredcos_cap_v2, "
                f"got '{self.beta_schedule}'."
            )


def _resolved(config: DiffusionConfig) -> tuple[int, int]:
    if config.channels is None or config.num_classes is None:
        raise ConfigError(
            "model.channels and model.num_classes must be set before building a model."
        )
    return config.channels, config.num_classes


def unet_kwargs(config: DiffusionConfig) -> dict[str, Any]:
    """Arguments of diffusers' ``UNet2DModel`` for ``config`` (no hub access)."""
    channels, num_classes = _resolved(config)
    widths = tuple(config.block_out_channels)
    n = len(widths)
    groups = math.gcd(*widths, 32)  # GroupNorm groups must divide every width
    bottom = widths[-1]
    down = ["DownBlock2D"] * n
    up = ["UpBlock2D"] * n
    if config.attention:
        down[-1] = "AttnDownBlock2D"
        up[0] = "AttnUpBlock2D"
    return {
        "sample_size": config.image_size,
        "in_channels": channels,
        "out_channels": channels,
        "down_block_types": tuple(down),
        "up_block_types": tuple(up),
        "block_out_channels": widths,
        "layers_per_block": config.layers_per_block,
        "norm_num_groups": groups,
        "attention_head_dim": 8 if bottom % 8 == 0 else bottom,
        "add_attention": config.attention,
        "num_class_embeds": num_classes + 1 if num_classes else None,
    }


def build_unet(config: DiffusionConfig) -> nn.Module:
    from diffusers import UNet2DModel

    unet: Any = UNet2DModel(**unet_kwargs(config))
    return unet


def scheduler_kwargs(config: DiffusionConfig) -> dict[str, Any]:
    return {
        "num_train_timesteps": config.num_train_timesteps,
        "beta_schedule": config.beta_schedule,
        "prediction_type": config.prediction,
    }


def make_scheduler(config: DiffusionConfig, sampler: str) -> Any:
    """A fresh diffusers scheduler for ``sampler`` (ddpm, ddim or dpm-solver++)."""
    from diffusers import DDIMScheduler, DDPMScheduler, DPMSolverMultistepScheduler

    kw = scheduler_kwargs(config)
    if sampler == "ddpm":
        return DDPMScheduler(**kw)
    if sampler == "ddim":
        return DDIMScheduler(**kw)
    if sampler == "dpm-solver++":
        return DPMSolverMultistepScheduler(**kw, algorithm_type="dpmsolver++")
    raise ConfigError(f"unknown sampler '{sampler}': choose one of {', '.join(SAMPLERS)}.")


class DiffusionModel(ImageGenerator):
    """A diffusion model: ``unet`` (EMA weights in a saved model) predicting noise or v."""

    family = "diffusion"

    def __init__(self, config: DiffusionConfig) -> None:
        super().__init__()
        self.config: DiffusionConfig = config
        self.unet = build_unet(config)

    @property
    def null_class(self) -> int:
        """Class index of the unconditional ("null") embedding of a conditional model."""
        return self.num_classes

    def latent_shape(self) -> tuple[int, ...]:
        channels, _ = _resolved(self.config)
        return (channels, self.config.image_size, self.config.image_size)

    def predict(
        self, x: torch.Tensor, t: torch.Tensor | int, labels: torch.Tensor | None
    ) -> torch.Tensor:
        """The UNet's output (epsilon or v) for noisy images ``x`` at timesteps ``t``."""
        if self.num_classes and labels is None:
            raise ValueError("a conditional diffusion model needs labels")
        out: torch.Tensor = self.unet(
            x, t, class_labels=labels if self.num_classes else None
        ).sample
        return out

    def _guided(
        self, x: torch.Tensor, t: torch.Tensor, labels: torch.Tensor | None, guidance: float
    ) -> torch.Tensor:
        if labels is None or guidance == 1.0:
            return self.predict(x, t, labels)
        null = torch.full_like(labels, self.null_class)
        both = self.predict(torch.cat([x, x]), t, torch.cat([labels, null]))
        cond, uncond = both.chunk(2)
        return uncond + guidance * (cond - uncond)

    def denoise(
        self,
        z: torch.Tensor,
        labels: torch.Tensor | None,
        *,
        sampler: str = "ddim",
        steps: int = 50,
        guidance: float = 1.0,
        noise_seeds: list[int] | None = None,
    ) -> torch.Tensor:
        """Images in [-1, 1] from initial noise ``z`` by ``steps`` of ``sampler``.

        ``noise_seeds`` (one per sample) seed the per-sample step noise of stochastic samplers
        (DDPM), so that a sample does not depend on the batch it is drawn in.
        """
        scheduler = make_scheduler(self.config, sampler)
        scheduler.set_timesteps(steps, device=z.device)
        gens = None
        if noise_seeds is not None:
            gens = [torch.Generator().manual_seed(int(s)) for s in noise_seeds]
        x = z * scheduler.init_noise_sigma
        for t in scheduler.timesteps:
            inp = scheduler.scale_model_input(x, t)
            out = self._guided(inp, t, labels, guidance)
            kw: dict[str, Any] = {"generator": gens} if sampler == "ddpm" and gens else {}
            if sampler == "ddim":
                # The noise estimate re-derived from the clipped x0 (as GLIDE does). diffusers'
                # default steps with the unclipped one, a mismatch that builds up with the step
                # count (digits, 2,000 samples: domain FID 0.30 -> 0.57 -> 5.8 at 50 -> 100 ->
                # 250 steps; with this, 0.24 at 50; docs/benchmarks.md).
                kw["use_clipped_model_output"] = True
            x = scheduler.step(out, t, x, **kw).prev_sample
        return x.clamp(-1, 1)

    def generate(self, z: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        """Images in [-1, 1] from noise ``z`` with 50 deterministic DDIM steps."""
        return self.denoise(z, labels)

    @torch.no_grad()
    def sample(
        self,
        n: int,
        *,
        seed: int = 0,
        class_label: int | None = None,
        labels: torch.Tensor | None = None,
        batch_size: int = 256,
        sampler: str = "ddim",
        steps: int = 50,
        guidance: float = 1.0,
    ) -> torch.Tensor:
        """``n`` images N x C x H x W in [0, 1] on the CPU.

        ``guidance`` is the classifier-free guidance scale (1: none; needs a conditional model).
        Same model, seed and options: same images, whatever ``batch_size`` or device.
        """
        if n < 1:
            raise ConfigError(f"--n must be at least 1, got {n}.")
        if sampler not in SAMPLERS:
            raise ConfigError(f"unknown sampler '{sampler}': choose one of {', '.join(SAMPLERS)}.")
        check_range("--steps", steps, low=1, high=self.config.num_train_timesteps)
        check_range("--batch-size", batch_size, low=1)
        if guidance != 1.0 and not self.num_classes:
            raise ConfigError(
                "classifier-free guidance needs a class-conditional model: this model is "
                f"unconditional, so --guidance must be 1 (got {guidance})."
            )
        check_range("--guidance", guidance, low=0)
        if labels is None:
            labels = self.default_labels(n, class_label)
        elif self.num_classes == 0:
            raise ConfigError("this model is unconditional: it takes no labels.")
        else:
            labels = labels.long()
            if labels.shape != (n,) or not bool(
                ((labels >= 0) & (labels < self.num_classes)).all()
            ):
                raise ConfigError(
                    f"labels must be {n} class indices between 0 and {self.num_classes - 1}."
                )
        g = torch.Generator().manual_seed(int(seed))
        z = torch.randn((n, *self.latent_shape()), generator=g)
        noise_seeds = torch.randint(2**62, (n,), generator=g).tolist()
        was_training = self.training
        self.eval()
        device = next(self.parameters()).device
        out = []
        try:
            for i in range(0, n, batch_size):
                zb = z[i : i + batch_size].to(device)
                lb = None if labels is None else labels[i : i + batch_size].to(device)
                x = self.denoise(
                    zb,
                    lb,
                    sampler=sampler,
                    steps=steps,
                    guidance=guidance,
                    noise_seeds=noise_seeds[i : i + batch_size],
                )
                out.append(x.float().cpu())
        finally:
            self.train(was_training)
        return ((torch.cat(out) + 1) / 2).clamp(0, 1)
