"""The CycleGAN train step (Zhu et al. 2017): LSGAN, cycle consistency, identity, image pools.

One step, in the reference's order: both generators translate and reconstruct; the generators
(optimizer ``G``) are updated on

    lsgan(D_B(G_ab(A)), 1) + lsgan(D_A(G_ba(B)), 1)
    + lambda_cycle * (|G_ba(G_ab(A)) - A| + |G_ab(G_ba(B)) - B|)
    + lambda_identity * lambda_cycle * (|G_ab(B) - B| + |G_ba(A) - A|);

then the discriminators (optimizer ``D``; ``D_A`` judges domain A, ``D_B`` domain B) on real
images against generated ones drawn through a history pool of ``pool_size`` images each
(Shrivastava et al. 2017), each loss halved.

The pools are buffers of the modules ``pool_A`` and ``pool_B``, so checkpoints hold them; their
random choices come from the step's seeded generator, drawn for the whole global batch. With
several processes the generated images are gathered first and every process keeps the same
global pool, so a run resumes bit-identically and N processes train like one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from pixelforge.config import check_range
from pixelforge.errors import ConfigError
from pixelforge.models.cyclegan import CycleGAN, CycleGANConfig
from pixelforge.models.pix2pix import to_channels
from pixelforge.training.config import TINY_TRAIN, TrainConfig
from pixelforge.training.pix2pix import (
    Examples,
    KeepsExamples,
    check_sides,
    gan_loss,
    paired_batch,
    triptychs,
)
from pixelforge.training.task import StepContext, frozen_copy

TINY: dict[str, Any] = {
    "model": {"image_size": 16, "ngf": 4, "ndf": 8, "n_blocks": 1, "d_layers": 2},
    "train": {**TINY_TRAIN, "pool_size": 4},
}  # the family's seconds-long test configuration (Family.tiny); a pool that fills in one step


@dataclass(frozen=True)
class CycleGANTrainConfig(TrainConfig):
    batch_size: int = 1  # global batch size (the paper trains on single images)
    ema_decay: float = 0.0  # EMA of the generators (0: none, as in the paper)
    lambda_cycle: float = 10.0  # weight of each cycle-consistency L1 term
    lambda_identity: float = 0.5  # identity L1 weight, as a fraction of lambda_cycle (0: off)
    pool_size: int = 50  # generated images kept per discriminator's history pool (0: no pool)

    def __post_init__(self) -> None:
        super().__post_init__()
        check_range("train.lambda_cycle", self.lambda_cycle, low=0)
        check_range("train.lambda_identity", self.lambda_identity, low=0)
        check_range("train.pool_size", self.pool_size, low=0, high=10_000)


class ImagePool(nn.Module):
    """A history of generated images (Shrivastava et al. 2017), as in CycleGAN's reference.

    While the pool is not full, each image is stored and returned. Then, with probability 1/2,
    an image is returned as is; otherwise a stored image chosen uniformly is returned and the new
    one takes its place. ``images`` and ``count`` are buffers, saved in checkpoints.
    """

    images: torch.Tensor
    count: torch.Tensor

    def __init__(self, size: int, channels: int, side: int) -> None:
        super().__init__()
        self.size = size
        self.register_buffer("images", torch.zeros(size, channels, side, side))
        self.register_buffer("count", torch.zeros((), dtype=torch.int64))

    @torch.no_grad()
    def query(self, fakes: torch.Tensor, ctx: StepContext) -> torch.Tensor:
        """This process's images for the discriminator, given its generated ``fakes``."""
        # Draws for the whole global batch, made whatever the pool's state (a fixed stream).
        coin = torch.rand(ctx.global_batch, generator=ctx.generator)
        slot = torch.randint(max(1, self.size), (ctx.global_batch,), generator=ctx.generator)
        fakes = fakes.detach().float()
        if self.size == 0:
            return fakes
        everyone = _gather(fakes)
        out = everyone.clone()
        have = int(self.count)
        for i in range(everyone.shape[0]):
            if have < self.size:
                self.images[have] = everyone[i]
                have += 1
            elif float(coin[i]) > 0.5:
                j = int(slot[i])
                out[i] = self.images[j]
                self.images[j] = everyone[i]
        self.count.fill_(have)
        return out[ctx.offset : ctx.offset + ctx.local_batch]


def _gather(x: torch.Tensor) -> torch.Tensor:
    """``x`` of every process, concatenated in rank order (``x`` itself with one process)."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return x
    parts = [torch.empty_like(x) for _ in range(dist.get_world_size())]
    dist.all_gather(parts, x.contiguous())
    return torch.cat(parts)


class CycleGANTask(KeepsExamples):
    """Trains ``G_AB``, ``G_BA`` (optimizer ``G``) and ``D_A``, ``D_B`` (optimizer ``D``)."""

    def __init__(self, model_config: CycleGANConfig, train_config: CycleGANTrainConfig) -> None:
        super().__init__(model_config, train_config)
        cfg = train_config
        if model_config.generators != "both":
            raise ConfigError(
                f"model.generators={model_config.generators}: training needs both generators; "
                "set model.generators=both."
            )
        self.model = CycleGAN(model_config)
        m = self.model
        assert m.g_ab is not None and m.g_ba is not None
        self.g_ab, self.g_ba = m.g_ab, m.g_ba
        ca, cb = m.channels_a, m.channels_b
        if cfg.lambda_identity > 0 and ca != cb:
            raise ConfigError(
                f"the identity loss needs domains with the same channels (A has {ca}, B {cb}); "
                "set train.lambda_identity=0."
            )
        self.d_a, self.d_b = m.make_discriminator("A"), m.make_discriminator("B")
        side = model_config.image_size
        self.modules = {
            "G_AB": self.g_ab,
            "G_BA": self.g_ba,
            "D_A": self.d_a,
            "D_B": self.d_b,
            "pool_A": ImagePool(cfg.pool_size, ca, side),
            "pool_B": ImagePool(cfg.pool_size, cb, side),
            "examples": Examples(ca, cb, side),
        }
        if cfg.ema_decay > 0:
            self.modules["G_AB_ema"] = frozen_copy(self.g_ab)
            self.modules["G_BA_ema"] = frozen_copy(self.g_ba)
            self.ema = {"G_AB_ema": "G_AB", "G_BA_ema": "G_BA"}

        def adam(params: list[nn.Parameter]) -> torch.optim.Optimizer:
            return torch.optim.Adam(
                params, lr=cfg.lr, betas=cfg.betas, weight_decay=cfg.weight_decay
            )

        self.optimizers = {
            "G": adam([*self.g_ab.parameters(), *self.g_ba.parameters()]),
            "D": adam([*self.d_a.parameters(), *self.d_b.parameters()]),
        }

    def attach_data(self, dataset: Any) -> None:
        """Refuse one set of images (it has no B side) before the run is written."""
        check_sides(dataset, "cyclegan", "unpaired")
        super().attach_data(dataset)

    def train_step(
        self, batch: dict[str, torch.Tensor], ctx: StepContext
    ) -> dict[str, torch.Tensor]:
        cfg: CycleGANTrainConfig = self.train_config
        a, b = paired_batch(batch, "cyclegan", "unpaired")
        a, b = to_channels(a, self.model.channels_a), to_channels(b, self.model.channels_b)
        examples = self.modules["examples"]
        assert isinstance(examples, Examples)
        examples.keep(a, b)
        ds = (self.d_a, self.d_b)
        for d in ds:
            d.requires_grad_(False)
        with ctx.autocast():
            fake_b = self.g_ab(a)
            fake_a = self.g_ba(b)
            rec_a = self.g_ba(fake_b)
            rec_b = self.g_ab(fake_a)
            adv = gan_loss("lsgan", self.d_b(fake_b).float(), True) + gan_loss(
                "lsgan", self.d_a(fake_a).float(), True
            )
        cycle = (rec_a.float() - a).abs().mean() + (rec_b.float() - b).abs().mean()
        loss_g = adv + cfg.lambda_cycle * cycle
        identity = torch.zeros((), device=a.device)
        if cfg.lambda_identity > 0:
            with ctx.autocast():
                idt_b, idt_a = self.g_ab(b), self.g_ba(a)
            identity = (idt_b.float() - b).abs().mean() + (idt_a.float() - a).abs().mean()
            loss_g = loss_g + cfg.lambda_identity * cfg.lambda_cycle * identity
        ctx.optimize("G", loss_g)

        for d in ds:
            d.requires_grad_(True)
        pool_a, pool_b = self.modules["pool_A"], self.modules["pool_B"]
        assert isinstance(pool_a, ImagePool) and isinstance(pool_b, ImagePool)
        old_b = pool_b.query(fake_b, ctx)
        old_a = pool_a.query(fake_a, ctx)
        with ctx.autocast():
            loss_d_b = 0.5 * (
                gan_loss("lsgan", self.d_b(b).float(), True)
                + gan_loss("lsgan", self.d_b(old_b).float(), False)
            )
            loss_d_a = 0.5 * (
                gan_loss("lsgan", self.d_a(a).float(), True)
                + gan_loss("lsgan", self.d_a(old_a).float(), False)
            )
        ctx.optimize("D", loss_d_a + loss_d_b)
        return {
            "loss_G_adv": adv.detach(),
            "loss_cycle": cycle.detach(),
            "loss_identity": identity.detach(),
            "loss_D_A": loss_d_a.detach(),
            "loss_D_B": loss_d_b.detach(),
        }

    def export(self) -> CycleGAN:
        model = CycleGAN(self.model_config)
        assert model.g_ab is not None and model.g_ba is not None
        model.g_ab.load_state_dict(self.modules.get("G_AB_ema", self.g_ab).state_dict())
        model.g_ba.load_state_dict(self.modules.get("G_BA_ema", self.g_ba).state_dict())
        return model.eval()

    def init_from(self, model: nn.Module) -> None:
        assert isinstance(model, CycleGAN)
        if model.g_ab is None or model.g_ba is None:
            raise ConfigError(
                "--init needs a cyclegan model with both generators; this one holds only "
                f"{model.config.generators}."
            )
        for name, source in (("G_AB", model.g_ab), ("G_BA", model.g_ba)):
            for key in (name, f"{name}_ema"):
                if key in self.modules:
                    self.modules[key].load_state_dict(source.state_dict())

    @torch.no_grad()
    def sample_grid(self, n: int, seed: int) -> torch.Tensor:
        """``A | G_ab(A) | B | G_ba(B)`` for up to ``n`` kept training images."""
        examples = self.modules["examples"]
        assert isinstance(examples, Examples)
        a, b = examples.images(n)
        if a.shape[0] == 0:
            s = self.model_config.image_size
            return torch.full((1, max(a.shape[1], b.shape[1]), s, 4 * s), 0.5)
        model = self.export().to(examples.a.device)
        assert model.g_ab is not None and model.g_ba is not None
        return triptychs([a, model.g_ab(a), b, model.g_ba(b)])
