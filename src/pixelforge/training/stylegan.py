"""The StyleGAN train step: the shared GAN step, with StyleGAN's generated batch.

Only the generated batch differs from :class:`~pixelforge.training.gan.GANTask`: latents, the
style-mixing crossover and the per-pixel noise all come from the step's seeded generator. With
probability ``model.style_mixing_prob`` an image's layers from a crossover point on (uniform in
1..num_ws-1) take the W of a second latent (Karras et al. 2019, "mixing regularisation").
The generator's W average (the truncation centre) is updated from the first latent's W.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist

from pixelforge.models.stylegan import StyleGAN
from pixelforge.training.config import TINY_TRAIN
from pixelforge.training.gan import GANTask, GANTrainConfig
from pixelforge.training.task import StepContext

TINY: dict[str, Any] = {
    "model": {
        "image_size": 8,
        "z_dim": 8,
        "w_dim": 8,
        "mapping_layers": 2,
        "channel_base": 64,
        "channel_max": 8,
    },
    "train": dict(TINY_TRAIN),
}  # the family's seconds-long test configuration (Family.tiny)


@dataclass(frozen=True)
class StyleGANTrainConfig(GANTrainConfig):
    """GANTrainConfig with StyleGAN2's defaults: lr 2.5e-3, betas (0, 0.99), lazy R1."""

    lr: float = 2.5e-3  # peak learning rate (StyleGAN2-ADA's small-resolution setting)
    betas: tuple[float, float] = (0.0, 0.99)  # Adam betas
    r1_gamma: float = 0.05  # weight of the R1 penalty on real images; the loss adds gamma/2 * R1
    r1_every: int = 4  # lazy R1: apply every N steps, scaled by N (StyleGAN2)
    ema_decay: float = 0.998  # decay of the EMA copy of the generator


class StyleGANTask(GANTask):
    model_cls = StyleGAN

    def _fake(self, ctx: StepContext, labels: torch.Tensor | None) -> torch.Tensor:
        G = self.model.generator
        num_ws = G.num_ws
        z = ctx.randn(*self.model.latent_shape())
        z2 = ctx.randn(*self.model.latent_shape())
        mix = ctx.rand() < self.model_config.style_mixing_prob
        cut = (ctx.rand() * (num_ws - 1)).floor().long().clamp(max=num_ws - 2) + 1
        noise = [ctx.randn(1, r, r) for r in G.noise_shapes]
        w = G.mapping(z, labels, update_w_avg=True)
        if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
            # the average is linear in the batch means: averaging the processes' copies gives
            # the update of the global batch
            dist.all_reduce(G.w_avg)
            G.w_avg /= dist.get_world_size()
        ws = w[:, None].expand(-1, num_ws, -1)
        if self.model_config.style_mixing_prob > 0 and num_ws > 1:
            w2 = G.mapping(z2, labels)
            cutoff = torch.where(mix, cut, torch.full_like(cut, num_ws))
            layer = torch.arange(num_ws, device=w.device)
            ws = torch.where(layer[None, :, None] < cutoff[:, None, None], ws, w2[:, None])
        images: torch.Tensor = G.synthesis(ws, noise=noise)
        return images
