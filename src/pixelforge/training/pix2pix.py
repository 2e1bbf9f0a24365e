"""The pix2pix train step: conditional GAN + L1 (Isola et al. 2017).

One step: G translates A; the PatchGAN D, which sees concat(A, B), is updated on real pairs
against generated ones with the loss averaged over both (as in the reference); then G is updated
on ``gan(D(A, G(A)), real) + lambda_l1 * |G(A) - B|``. Dropout draws come from the trainer's
per-step seeding, so a resumed run is bit-identical to an uninterrupted one.

The periodic sample grid shows ``A | G(A) | B`` for the first training pairs, which the task
keeps as uint8 buffers of its ``examples`` module (so checkpoints hold them too): taken from the
dataset when the trainer attaches it, else from the first batches.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn

from pixelforge.config import check_range
from pixelforge.data.transforms import to_model_range
from pixelforge.errors import DataError
from pixelforge.models.pix2pix import Pix2Pix, Pix2PixConfig, to_channels
from pixelforge.training.config import TINY_TRAIN, TrainConfig
from pixelforge.training.task import StepContext, TrainTask, frozen_copy

TINY: dict[str, Any] = {
    "model": {"image_size": 16, "ngf": 8, "ndf": 8, "depth": 3, "d_layers": 2},
    "train": dict(TINY_TRAIN),
}  # the family's seconds-long test configuration (Family.tiny)

#: Training pairs kept for the sample grid.
MAX_EXAMPLES = 16


@dataclass(frozen=True)
class Pix2PixTrainConfig(TrainConfig):
    batch_size: int = 1  # global batch size (the paper trains on single images)
    ema_decay: float = 0.0  # EMA of the generator (0: none, as in the paper)
    gan_loss: Literal["vanilla", "lsgan"] = "vanilla"  # vanilla: cross-entropy; lsgan: squares
    lambda_l1: float = 100.0  # weight of the L1 distance between G(A) and B

    def __post_init__(self) -> None:
        super().__post_init__()
        check_range("train.lambda_l1", self.lambda_l1, low=0)


def gan_loss(kind: str, logits: torch.Tensor, real: bool) -> torch.Tensor:
    """Mean over patches: cross-entropy against 1/0 (``vanilla``) or squared error (``lsgan``)."""
    target = torch.full_like(logits, 1.0 if real else 0.0)
    if kind == "lsgan":
        return F.mse_loss(logits, target)
    return F.binary_cross_entropy_with_logits(logits, target)


def _needs_two_sides(family: str, kind: str, what: str) -> DataError:
    return DataError(
        f"{family} trains on {kind} images, and {what}: use --data {kind}:PATH "
        + (
            "(A/ and B/ with matching names, or A|B side by side)."
            if kind == "paired"
            else "(trainA/ and trainB/)."
        )
    )


def check_sides(dataset: Any, family: str, kind: str) -> None:
    """Refuse, before the run is written, data that does not have the two sides ``family``
    trains on (``kind``: "paired" or "unpaired"; paired data serves either)."""
    info = getattr(dataset, "info", None)
    if info is not None and getattr(info, "kind", None) not in ("paired", kind):
        raise _needs_two_sides(family, kind, f"{info.spec} is one set of images")


def paired_batch(
    batch: dict[str, torch.Tensor], family: str, kind: str
) -> tuple[torch.Tensor, torch.Tensor]:
    """(A, B) of a batch, or a DataError saying which data the family needs."""
    if "A" not in batch or "B" not in batch:
        raise _needs_two_sides(family, kind, "the batch holds one set of images")
    return batch["A"], batch["B"]


class Examples(nn.Module):
    """The first training images of each side, kept as uint8 buffers for the sample grid."""

    a: torch.Tensor
    b: torch.Tensor
    count: torch.Tensor
    limit: torch.Tensor

    def __init__(self, channels_a: int, channels_b: int, size: int, n: int = MAX_EXAMPLES) -> None:
        super().__init__()
        self.register_buffer("a", torch.zeros(n, channels_a, size, size, dtype=torch.uint8))
        self.register_buffer("b", torch.zeros(n, channels_b, size, size, dtype=torch.uint8))
        self.register_buffer("count", torch.zeros((), dtype=torch.int64))
        self.register_buffer("limit", torch.tensor(n, dtype=torch.int64))  # images to keep

    @torch.no_grad()
    def keep(self, a: torch.Tensor, b: torch.Tensor) -> None:
        """Store images of a batch (in [-1, 1]) until the buffers are full."""
        have = int(self.count)
        take = min(int(self.limit) - have, a.shape[0])
        if take <= 0:
            return

        def u8(x: torch.Tensor) -> torch.Tensor:
            return ((x[:take].float() + 1) * 127.5).round().clamp(0, 255).to(torch.uint8)

        self.a[have : have + take] = u8(a)
        self.b[have : have + take] = u8(b)
        self.count.fill_(have + take)

    def keep_dataset(self, dataset: Any) -> None:
        """Fill the buffers with the first images of each side of a paired/unpaired dataset."""
        images_b = getattr(dataset, "images_b", None)
        if images_b is None or int(self.count) > 0:
            return
        k = self.a.shape[0]
        a = to_channels(to_model_range(dataset.images[:k]), self.a.shape[1])
        b = to_channels(to_model_range(images_b[:k]), self.b.shape[1])
        n = min(a.shape[0], b.shape[0])
        self.keep(a[:n].to(self.a.device), b[:n].to(self.b.device))
        self.limit.fill_(n)  # a small dataset: no repeats from the batches

    def images(self, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Up to ``n`` kept (A, B) pairs in [-1, 1]."""
        k = min(n, int(self.count))
        return self.a[:k].float() / 127.5 - 1.0, self.b[:k].float() / 127.5 - 1.0


def triptychs(panels: list[torch.Tensor]) -> torch.Tensor:
    """Images in [-1, 1] (each N x C x H x W) side by side, as N images in [0, 1]."""
    channels = max(p.shape[1] for p in panels)
    row = torch.cat([to_channels(p.float(), channels) for p in panels], dim=3)
    return ((row + 1) / 2).clamp(0, 1).cpu()


class KeepsExamples(TrainTask):
    """A task with an :class:`Examples` module ("examples") filled from the training set."""

    def attach_data(self, dataset: Any) -> None:
        """Keep the first training images for the sample grid (also before the first step)."""
        examples = self.modules["examples"]
        assert isinstance(examples, Examples)
        examples.keep_dataset(dataset)


class Pix2PixTask(KeepsExamples):
    """Trains the generator (module ``G``, EMA copy ``G_ema`` when ``train.ema_decay > 0``) and
    the conditional PatchGAN (module ``D``)."""

    def __init__(self, model_config: Pix2PixConfig, train_config: Pix2PixTrainConfig) -> None:
        super().__init__(model_config, train_config)
        cfg = train_config
        self.model = Pix2Pix(model_config)
        self.discriminator = self.model.make_discriminator()
        ca, cb = self.model.in_channels, self.model.out_channels
        self.modules = {
            "G": self.model.generator,
            "D": self.discriminator,
            "examples": Examples(ca, cb, model_config.image_size),
        }
        if cfg.ema_decay > 0:
            self.modules["G_ema"] = frozen_copy(self.model.generator)
            self.ema = {"G_ema": "G"}

        def adam(module: nn.Module) -> torch.optim.Optimizer:
            return torch.optim.Adam(
                module.parameters(), lr=cfg.lr, betas=cfg.betas, weight_decay=cfg.weight_decay
            )

        self.optimizers = {"D": adam(self.discriminator), "G": adam(self.model.generator)}

    def attach_data(self, dataset: Any) -> None:
        """Refuse unpaired data before any step: its A and B images are not aligned, and the L1
        loss would pull G(A) towards an unrelated B."""
        info = getattr(dataset, "info", None)
        if info is not None and getattr(info, "kind", None) == "unpaired":
            raise DataError(
                f"pix2pix learns from aligned pairs, but {info.spec} holds two unaligned sets: use "
                "paired:PATH (A/ and B/ with matching names, or A|B side by side), or train "
                "cyclegan on unpaired data."
            )
        check_sides(dataset, "pix2pix", "paired")
        super().attach_data(dataset)

    def train_step(
        self, batch: dict[str, torch.Tensor], ctx: StepContext
    ) -> dict[str, torch.Tensor]:
        cfg: Pix2PixTrainConfig = self.train_config
        a, b = paired_batch(batch, "pix2pix", "paired")
        a, b = to_channels(a, self.model.in_channels), to_channels(b, self.model.out_channels)
        examples = self.modules["examples"]
        assert isinstance(examples, Examples)
        examples.keep(a, b)
        G, D = self.model.generator, self.discriminator
        with ctx.autocast():
            fake = G(a)
        D.requires_grad_(True)
        with ctx.autocast():
            real_logits = D(torch.cat([a, b], dim=1)).float()
            fake_logits = D(torch.cat([a, fake.detach()], dim=1)).float()
        loss_d = 0.5 * (
            gan_loss(cfg.gan_loss, real_logits, True) + gan_loss(cfg.gan_loss, fake_logits, False)
        )
        ctx.optimize("D", loss_d)
        D.requires_grad_(False)
        with ctx.autocast():
            logits = D(torch.cat([a, fake], dim=1)).float()
        loss_gan = gan_loss(cfg.gan_loss, logits, True)
        loss_l1 = (fake.float() - b).abs().mean()
        ctx.optimize("G", loss_gan + cfg.lambda_l1 * loss_l1)
        D.requires_grad_(True)
        return {
            "loss_D": loss_d.detach(),
            "loss_G_gan": loss_gan.detach(),
            "loss_G_l1": loss_l1.detach(),
        }

    def export(self) -> Pix2Pix:
        model = Pix2Pix(self.model_config)
        source = self.modules.get("G_ema", self.modules["G"])
        model.generator.load_state_dict(source.state_dict())
        return model.eval()

    def init_from(self, model: nn.Module) -> None:
        assert isinstance(model, Pix2Pix)
        for name in ("G", "G_ema"):
            if name in self.modules:
                self.modules[name].load_state_dict(model.generator.state_dict())

    @torch.no_grad()
    def sample_grid(self, n: int, seed: int) -> torch.Tensor:
        """``A | G(A) | B`` for up to ``n`` kept training pairs (grey before the first step)."""
        examples = self.modules["examples"]
        assert isinstance(examples, Examples)
        device = examples.a.device
        a, b = examples.images(n)
        if a.shape[0] == 0:
            s = self.model_config.image_size
            return torch.full((1, max(a.shape[1], b.shape[1]), s, 3 * s), 0.5)
        model = self.export().to(device)
        return triptychs([a, model.translate(a), b])
