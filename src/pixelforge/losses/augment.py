"""Differentiable augmentation of the discriminator's inputs (math only, no networks).

DiffAugment (Zhao et al. 2020): colour (brightness, saturation, contrast), translation (by up to
1/8 of the side, zero fill) and cutout (a square of half the side set to zero), applied to real
and generated images alike before the discriminator, in both its and the generator's update.
Every transform is differentiable with respect to the images, so the generator learns through it.

ADA (Karras et al. 2020): the same transforms, each applied to each image with probability ``p``,
where ``p`` follows the overfitting heuristic r_t = E[sign(D(real))]: every few steps ``p`` moves
up when r_t is above the target (0.6) and down when below, fast enough to go from 0 to 1 in
``ada_kimg`` thousand real images (:func:`ada_update`).

Random draws come from ``rand(*shape)``, a callable returning uniform [0, 1) draws of shape
N x *shape (a train step's ``ctx.rand``), so augmentation is seeded like every other draw. The
same number of draws is made whatever ``p`` is.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F

POLICIES = ("color", "translation", "cutout")

Rand = Callable[..., torch.Tensor]


def parse_policy(policy: str) -> tuple[str, ...]:
    """``"color,translation,cutout"`` -> its names; ValueError naming an unknown one."""
    names = tuple(p.strip() for p in policy.split(",") if p.strip())
    for name in names:
        if name not in POLICIES:
            raise ValueError(f"unknown augmentation '{name}' (known: {', '.join(POLICIES)})")
    return names


def _gate(x: torch.Tensor, aug: torch.Tensor, u: torch.Tensor, p: float) -> torch.Tensor:
    """``aug`` for images whose draw ``u`` < p, ``x`` (unchanged) for the others."""
    if p >= 1.0:
        return aug
    return torch.where((u < p).view(-1, 1, 1, 1), aug, x)


def _randint(u: torch.Tensor, low: int, high: int) -> torch.Tensor:
    """Integers in [low, high] from uniform draws ``u``."""
    return (u * (high - low + 1)).floor().long().clamp(max=high - low) + low


def brightness(x: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """Add an offset in [-0.5, 0.5) per image."""
    return x + (u - 0.5).view(-1, 1, 1, 1).to(x.dtype)


def saturation(x: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """Scale the distance to the per-pixel channel mean by [0, 2) (identity for gray)."""
    mean = x.mean(dim=1, keepdim=True)
    return (x - mean) * (2 * u).view(-1, 1, 1, 1).to(x.dtype) + mean


def contrast(x: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """Scale the distance to the image mean by [0.5, 1.5)."""
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return (x - mean) * (u + 0.5).view(-1, 1, 1, 1).to(x.dtype) + mean


def translation(x: torch.Tensor, u: torch.Tensor, ratio: float = 0.125) -> torch.Tensor:
    """Shift by whole pixels, up to ``ratio`` of the side each way, filling with zeros.

    ``u``: N x 2 uniform draws (rows, columns).
    """
    n, _, h, w = x.shape
    sh, sw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    dy, dx = _randint(u[:, 0], -sh, sh), _randint(u[:, 1], -sw, sw)
    rows = torch.arange(h, device=x.device)[None, :] + dy[:, None].to(x.device) + 1  # N x H
    cols = torch.arange(w, device=x.device)[None, :] + dx[:, None].to(x.device) + 1  # N x W
    padded = F.pad(x, [1, 1, 1, 1])  # a zero border to read from when shifted out
    rows, cols = rows.clamp(0, h + 1), cols.clamp(0, w + 1)
    b = torch.arange(n, device=x.device)[:, None, None]
    out = padded.permute(0, 2, 3, 1)[b, rows[:, :, None], cols[:, None, :]]  # N x H x W x C
    return out.permute(0, 3, 1, 2)


def cutout(x: torch.Tensor, u: torch.Tensor, ratio: float = 0.5) -> torch.Tensor:
    """Zero a ``ratio``-sized square centred anywhere in the image (clipped at the border).

    ``u``: N x 2 uniform draws (centre row, centre column).
    """
    _, _, h, w = x.shape
    ch, cw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    oy = _randint(u[:, 0], 0, h - ch % 2).to(x.device)
    ox = _randint(u[:, 1], 0, w - cw % 2).to(x.device)
    r = torch.arange(h, device=x.device)[None, :] - (oy - ch // 2)[:, None]  # N x H
    c = torch.arange(w, device=x.device)[None, :] - (ox - cw // 2)[:, None]  # N x W
    inside = ((r >= 0) & (r < ch))[:, :, None] & ((c >= 0) & (c < cw))[:, None, :]
    return x * (~inside)[:, None].to(x.dtype)


def augment(x: torch.Tensor, policy: Sequence[str], rand: Rand, p: float = 1.0) -> torch.Tensor:
    """Apply ``policy`` (names from :data:`POLICIES`) to images ``x`` (N x C x H x W).

    DiffAugment: ``p = 1`` (every transform on every image). ADA: each transform on each image
    with probability ``p``; ``p = 0`` returns ``x`` unchanged.
    """
    if not policy:
        return x
    out = x
    for name in policy:
        if name == "color":
            for op in (brightness, saturation, contrast):
                gate, u = rand(), rand()
                out = _gate(out, op(out, u), gate, p)
        elif name == "translation":
            gate, u = rand(), rand(2)
            out = _gate(out, translation(out, u), gate, p)
        elif name == "cutout":
            gate, u = rand(), rand(2)
            out = _gate(out, cutout(out, u), gate, p)
        else:
            raise ValueError(f"unknown augmentation '{name}' (known: {', '.join(POLICIES)})")
    return out


def ada_update(
    p: float,
    sign_mean: float,
    *,
    target: float = 0.6,
    batch_size: int,
    interval: int,
    kimg: int,
) -> float:
    """ADA's new probability after ``interval`` steps whose mean of sign(D(real)) was ``sign_mean``.

    The step size lets ``p`` cross [0, 1] in ``kimg`` thousand real images (Karras et al. 2020).
    """
    step = batch_size * interval / (kimg * 1000)
    direction = (sign_mean > target) - (sign_mean < target)
    return float(min(1.0, max(0.0, p + direction * step)))
