"""Input checks shared by the metrics: features are a finite N x D array."""

from __future__ import annotations

import numpy as np
import torch

from pixelforge.metrics.errors import MetricError

ArrayLike = torch.Tensor | np.ndarray


def as_features(
    x: ArrayLike,
    what: str,
    *,
    dtype: torch.dtype = torch.float64,
    dim: int | None = None,
    min_rows: int = 1,
    device: torch.device | None = None,
) -> torch.Tensor:
    """``x`` as a finite ``dtype`` tensor N x D; a clear :class:`MetricError` otherwise.

    ``what`` names the argument in messages ("real features"); ``dim`` is the required D.
    """
    if isinstance(x, np.ndarray):
        t = torch.from_numpy(x)
    elif isinstance(x, torch.Tensor):
        t = x.detach()
    else:
        raise MetricError(f"{what} must be a torch.Tensor or numpy array, got {type(x).__name__}")
    if t.ndim != 2:
        raise MetricError(
            f"{what} must be a 2-D array of shape N x D (one feature vector per row), "
            f"got shape {tuple(t.shape)}"
        )
    if dim is not None and t.shape[1] != dim:
        raise MetricError(
            f"{what} have {t.shape[1]} dimensions but {dim} were expected: "
            "both sets must come from the same feature extractor and layer"
        )
    if t.shape[0] < min_rows:
        raise MetricError(
            f"{what}: {t.shape[0]} sample(s) given, at least {min_rows} needed"
            + ("; the set is empty" if t.shape[0] == 0 else "")
        )
    if t.is_complex() or t.dtype == torch.bool:
        raise MetricError(f"{what} must be real numbers, got dtype {t.dtype}")
    t = t.to(device=device if device is not None else t.device, dtype=dtype)
    check_finite(t, what)
    return t


def check_finite(t: ArrayLike, what: str) -> None:
    """Refuse NaN or infinite entries, naming how many and the first bad rows."""
    if isinstance(t, np.ndarray):
        if np.isfinite(t).all():  # numpy's check is much cheaper than torch's on the CPU
            return
        t = torch.from_numpy(t)
    finite = torch.isfinite(t)
    if not bool(finite.all()):
        bad = (~finite).reshape(len(t), -1).any(dim=1) if t.ndim > 0 else (~finite).reshape(1)
        rows = torch.nonzero(bad).flatten()[:5].tolist()
        count = int((~finite).sum())
        raise MetricError(
            f"{what} contain {count} NaN or infinite value(s) (first bad rows or entries: "
            f"{rows}); the images or the feature extractor produced them - fix the input, "
            "metrics on non-finite features are meaningless"
        )
