"""A small CNN classifier, trained on a fixed budget: the measuring stick of the studies.

The budget is a number of optimisation steps at a fixed batch size, so two runs that differ only
in their training images see exactly ``steps * batch_size`` images each. A batch may be drawn
from several pools in fixed shares (``sources``): each pool is walked through in a seeded random
order, reshuffled each time it is used up, so every image of a pool is seen equally often.

Inputs are ``uint8`` ``N x C x H x W`` tensors, as :class:`pixelforge.data.ImageDataset` holds
them; the network sees them through :func:`pixelforge.data.to_model_range` (``[-1, 1]``), like the
generative models do.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from pixelforge.data.config import DataConfig
from pixelforge.data.transforms import augment_batch, prepare_image, stack_images, to_model_range
from pixelforge.errors import ConfigError


@dataclass(frozen=True)
class ClassifierBudget:
    """How a classifier is trained: the same budget for every arm of a study."""

    steps: int = 300  # optimisation steps
    batch_size: int = 64  # images per step (split between pools by their shares)
    lr: float = 2e-3  # Adam learning rate, cosine-decayed to zero over the steps
    weight_decay: float = 1e-4  # AdamW weight decay
    width: int = 16  # channels of the first convolution (doubled twice)
    translate: float = 0.0  # augmentation: random shift up to this fraction of the size (0-0.5)

    def validate(self) -> None:
        """Raise :class:`ConfigError` naming the field when a value is out of range."""
        for name in ("steps", "batch_size", "width"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ConfigError(f"{name} must be a whole number >= 1, got {value!r}.")
        if not self.lr > 0:
            raise ConfigError(f"lr must be > 0, got {self.lr}.")
        if self.weight_decay < 0:
            raise ConfigError(f"weight_decay must be >= 0, got {self.weight_decay}.")
        DataConfig(translate=self.translate).validate()


class SmallCNN(nn.Module):
    """Three conv blocks (conv-BN-ReLU, max-pool) and a linear head; any input size >= 8."""

    def __init__(self, channels: int, num_classes: int, width: int = 32) -> None:
        super().__init__()
        self.channels = channels  # input channels (1 grey, 3 RGB)
        self.num_classes = num_classes  # output logits
        self.width = width  # channels of the first block; the next two have 2x and 4x
        layers: list[nn.Module] = []
        c_in = channels
        for c_out in (width, 2 * width, 4 * width):
            layers += [
                nn.Conv2d(c_in, c_out, 3, padding=1, bias=False),
                nn.BatchNorm2d(c_out),
                nn.ReLU(inplace=True),
                nn.MaxPool2d(2),
            ]
            c_in = c_out
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(2)
        self.head = nn.Sequential(nn.Flatten(), nn.Dropout(0.2), nn.Linear(4 * c_in, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``N x num_classes`` of images ``x`` in ``[-1, 1]``."""
        return self.head(self.pool(self.features(x)))


class _Pool:
    """One source of training images, walked in seeded random order, reshuffled when used up."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, rng: np.random.Generator):
        self.images = images
        self.labels = labels
        self.rng = rng
        self.order = rng.permutation(len(labels))
        self.pos = 0

    def take(self, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        picked: list[np.ndarray] = []
        while n > 0:
            if self.pos == len(self.order):
                self.order = self.rng.permutation(len(self.labels))
                self.pos = 0
            k = min(n, len(self.order) - self.pos)
            picked.append(self.order[self.pos : self.pos + k])
            self.pos += k
            n -= k
        idx = torch.from_numpy(np.concatenate(picked))
        return self.images[idx], self.labels[idx]


def _check_images(images: torch.Tensor, labels: torch.Tensor, what: str) -> None:
    if images.dtype != torch.uint8 or images.ndim != 4:
        raise ValueError(f"{what}: images must be a uint8 N x C x H x W tensor")
    if labels.shape != (images.shape[0],):
        raise ValueError(f"{what}: labels must hold one entry per image")
    if images.shape[0] == 0:
        raise ConfigError(f"{what}: no training images.")


def batch_shares(batch_size: int, n_sources: int) -> list[int]:
    """Images per batch from each of ``n_sources`` equal-share pools (the first take the rest)."""
    base, rest = divmod(batch_size, n_sources)
    return [base + (1 if i < rest else 0) for i in range(n_sources)]


def train_classifier(
    sources: Sequence[tuple[torch.Tensor, torch.Tensor]],
    *,
    num_classes: int,
    budget: ClassifierBudget,
    seed: int,
) -> SmallCNN:
    """Train a :class:`SmallCNN` for ``budget.steps`` steps of ``budget.batch_size`` images.

    ``sources`` are ``(uint8 images, int64 labels)`` pools sharing size and channels; each batch
    takes an equal share of its images from each pool (:func:`batch_shares`). The initial weights
    depend only on ``seed`` (and the architecture), so arms of a study trained with the same seed
    start from the same network. Runs on the CPU.
    """
    budget.validate()
    if not sources:
        raise ConfigError("train_classifier needs at least one pool of images.")
    shapes = {tuple(images.shape[1:]) for images, _ in sources}
    if len(shapes) != 1:
        raise ValueError(f"all pools must share image size and channels, got {sorted(shapes)}")
    for i, (images, labels) in enumerate(sources):
        _check_images(images, labels, f"pool {i}")
    shares = batch_shares(budget.batch_size, len(sources))
    if min(shares) < 1:
        raise ConfigError(
            f"batch size {budget.batch_size} is too small for {len(sources)} pools of images."
        )
    channels = sources[0][0].shape[1]
    torch.manual_seed(seed)
    model = SmallCNN(channels, num_classes, budget.width)
    rngs = np.random.default_rng(seed).spawn(len(sources) + 1)
    pools = [_Pool(x, y.long(), rng) for (x, y), rng in zip(sources, rngs, strict=False)]
    shift = DataConfig(translate=budget.translate)
    aug_gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.AdamW(model.parameters(), lr=budget.lr, weight_decay=budget.weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=budget.steps)
    model.train()
    for _ in range(budget.steps):
        parts = [pool.take(k) for pool, k in zip(pools, shares, strict=True)]
        x = to_model_range(torch.cat([p[0] for p in parts]))
        y = torch.cat([p[1] for p in parts])
        x = augment_batch(x, aug_gen, shift, global_batch=x.shape[0], offset=0)
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
    model.eval()
    return model


@torch.no_grad()
def predict(model: SmallCNN, images: torch.Tensor, *, batch_size: int = 512) -> torch.Tensor:
    """Predicted classes (``int64 N``) of ``uint8`` images ``N x C x H x W``."""
    was_training = model.training
    model.eval()
    out = [
        model(to_model_range(images[i : i + batch_size])).argmax(1)
        for i in range(0, images.shape[0], batch_size)
    ]
    model.train(was_training)
    return torch.cat(out) if out else torch.zeros(0, dtype=torch.int64)


def accuracy(model: SmallCNN, images: torch.Tensor, labels: torch.Tensor) -> float:
    """Fraction of ``images`` whose predicted class equals ``labels``."""
    if images.shape[0] == 0:
        raise ConfigError("accuracy of an empty set of images.")
    return float((predict(model, images) == labels.long()).float().mean())


def to_uint8_images(images: torch.Tensor) -> torch.Tensor:
    """Float images in ``[0, 1]`` (what ``model.sample`` returns) -> ``uint8`` (rounded, clipped).

    ``uint8`` input is returned as it is.
    """
    if images.dtype == torch.uint8:
        return images
    return (images.detach().float().cpu() * 255.0).round().clamp(0, 255).to(torch.uint8)


def prepare_images(
    images: torch.Tensor, *, image_size: int, channels: int, config: DataConfig | None = None
) -> torch.Tensor:
    """Generated images (float in ``[0, 1]`` or ``uint8``, ``N x C x H x W``) as the data
    pipeline would hold them: quantised to ``uint8``, then channel conversion and resize with
    ``config.resize_mode`` and ``config.resize_filter``
    (:func:`pixelforge.data.transforms.prepare_image`), like real images."""
    if images.ndim != 4 or images.shape[0] == 0:
        raise ConfigError(
            f"expected a non-empty N x C x H x W batch, got shape {tuple(images.shape)}."
        )
    cfg = config or DataConfig()
    arrays = to_uint8_images(images).permute(0, 2, 3, 1).numpy()
    return stack_images(
        [prepare_image(a, image_size=image_size, channels=channels, config=cfg) for a in arrays]
    )
