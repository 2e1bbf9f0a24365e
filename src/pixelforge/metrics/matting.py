"""Alpha-matte metrics: predicted and true mattes in, numbers out (no file I/O).

Mattes are tensors or arrays with values in [0, 1], shaped H x W, 1 x H x W or N x 1 x H x W
(N x H x W is read as N mattes). Each metric is computed per matte, in float64; ``reduction``
gives the per-matte values (``"none"``) or their mean (``"mean"``, the default).

- :func:`alpha_iou`: intersection over union of the mattes thresholded at 0.5 (alpha >= 0.5 is
  foreground). Two empty foregrounds count as a perfect match (1.0).
- :func:`alpha_sad`: sum of absolute differences over the matte, divided by 1000, as matting
  papers report it (Rhemann et al. 2009, alphamatting.com; Xu et al. 2017 "Deep Image Matting").
  It grows with the image's size: compare SADs only at the same resolution.
- :func:`alpha_mse`: mean squared error per pixel.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch

from pixelforge.metrics._checks import check_finite
from pixelforge.metrics.errors import MetricError

Reduction = Literal["none", "mean"]


def _mattes(x: torch.Tensor | np.ndarray, what: str) -> torch.Tensor:
    t = torch.from_numpy(np.asarray(x)) if isinstance(x, np.ndarray) else x.detach()
    if not isinstance(t, torch.Tensor):
        raise MetricError(f"{what} must be a torch.Tensor or numpy array")
    t = t.to("cpu", torch.float64)
    if t.ndim == 2:
        t = t[None]
    elif t.ndim == 4:
        if t.shape[1] != 1:
            raise MetricError(f"{what} must have one channel, got shape {tuple(t.shape)}")
        t = t[:, 0]
    elif t.ndim != 3:
        raise MetricError(
            f"{what} must be H x W, N x H x W or N x 1 x H x W, got shape {tuple(t.shape)}"
        )
    check_finite(t, what)
    if t.numel() and (float(t.min()) < 0.0 or float(t.max()) > 1.0):
        raise MetricError(f"{what} must lie in [0, 1], got {float(t.min())}..{float(t.max())}")
    return t


def _pair(pred: torch.Tensor | np.ndarray, target: torch.Tensor | np.ndarray):
    p, t = _mattes(pred, "predicted alpha"), _mattes(target, "true alpha")
    if p.shape != t.shape:
        raise MetricError(
            f"predicted alpha {tuple(p.shape)} and true alpha {tuple(t.shape)} differ in shape"
        )
    return p, t


def _reduce(values: torch.Tensor, reduction: Reduction) -> torch.Tensor | float:
    if reduction == "none":
        return values
    if reduction == "mean":
        return float(values.mean())
    raise ValueError(f"reduction must be 'none' or 'mean', got {reduction!r}")


def alpha_iou(
    pred: torch.Tensor | np.ndarray,
    target: torch.Tensor | np.ndarray,
    *,
    threshold: float = 0.5,
    reduction: Reduction = "mean",
) -> torch.Tensor | float:
    """IoU of ``pred >= threshold`` and ``target >= threshold`` per matte (empty/empty = 1)."""
    p, t = _pair(pred, target)
    a, b = p >= threshold, t >= threshold
    inter = (a & b).sum(dim=(1, 2)).double()
    union = (a | b).sum(dim=(1, 2)).double()
    iou = torch.where(union > 0, inter / union.clamp(min=1), torch.ones_like(union))
    return _reduce(iou, reduction)


def alpha_sad(
    pred: torch.Tensor | np.ndarray,
    target: torch.Tensor | np.ndarray,
    *,
    reduction: Reduction = "mean",
) -> torch.Tensor | float:
    """Sum over the matte of |pred - target|, divided by 1000."""
    p, t = _pair(pred, target)
    return _reduce((p - t).abs().sum(dim=(1, 2)) / 1000.0, reduction)


def alpha_mse(
    pred: torch.Tensor | np.ndarray,
    target: torch.Tensor | np.ndarray,
    *,
    reduction: Reduction = "mean",
) -> torch.Tensor | float:
    """Mean over the matte of (pred - target)^2."""
    p, t = _pair(pred, target)
    return _reduce((p - t).square().mean(dim=(1, 2)), reduction)


def matting_metrics(
    pred: torch.Tensor | np.ndarray, target: torch.Tensor | np.ndarray
) -> dict[str, float]:
    """``{"iou", "sad", "mse"}``: the three metrics, each the mean over the mattes."""
    return {
        "iou": float(alpha_iou(pred, target)),
        "sad": float(alpha_sad(pred, target)),
        "mse": float(alpha_mse(pred, target)),
    }
