"""One metric value with everything needed to judge whether two values are comparable."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

# Below this many samples FID is visibly biased and KID has a large variance.
SMALL_N = 10_000


@dataclass(frozen=True)
class MetricResult:
    """A metric value that describes how it was measured.

    Attributes:
        name: metric name, e.g. ``"fid"``, ``"kid"``, ``"precision"``, ``"psnr"``.
        value: the value (the mean over subsets or splits for KID and IS).
        std: spread over subsets/splits/images where the metric defines one, else ``None``.
        n_real: number of real (reference) samples, or ``None`` if the metric has none (IS).
        n_fake: number of generated (evaluated) samples.
        protocol: how the inputs were produced, e.g. ``extractor``, ``weights_sha256``,
            ``resize``, ``feature_dim``, ``comparable_to_published``, plus the metric's own
            settings (subset size, splits, k, ...). Two values are comparable only when their
            protocols agree.
        warnings: reasons to be careful with the value (small N, non-standard weights, ...).
    """

    name: str
    value: float
    std: float | None = None
    n_real: int | None = None
    n_fake: int | None = None
    protocol: Mapping[str, Any] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        # Copies, so the caller's dict or list cannot change a frozen result afterwards.
        object.__setattr__(self, "value", float(self.value))
        if self.std is not None:
            object.__setattr__(self, "std", float(self.std))
        object.__setattr__(self, "protocol", {str(k): _plain(v) for k, v in self.protocol.items()})
        object.__setattr__(self, "warnings", tuple(str(w) for w in self.warnings))

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (plain Python types; a non-finite value such as an infinite PSNR of
        identical images is kept as a float, which :func:`json.dumps` writes as ``Infinity``)."""
        return {
            "metric": self.name,
            "value": self.value,
            "std": self.std,
            "n_real": self.n_real,
            "n_fake": self.n_fake,
            "protocol": dict(self.protocol),
            "warnings": list(self.warnings),
        }

    def __str__(self) -> str:
        text = f"{self.name} = {_fmt(self.value)}"
        if self.std is not None:
            text += f" ± {_fmt(self.std)}"
        counts = [
            f"{k}={v}"
            for k, v in (("n_real", self.n_real), ("n_fake", self.n_fake))
            if v is not None
        ]
        extractor = self.protocol.get("extractor")
        if extractor:
            counts.append(f"extractor={extractor}")
        if counts:
            text += f" ({', '.join(counts)})"
        if self.warnings:
            text += f" [{len(self.warnings)} warning{'s' if len(self.warnings) > 1 else ''}]"
        return text


def small_n_warnings(name: str, n_real: int, n_fake: int) -> list[str]:
    """The standard caution for FID/KID computed from fewer than 10,000 samples per set."""
    if min(n_real, n_fake) >= SMALL_N:
        return []
    if name == "fid":
        return [
            f"FID from N < {SMALL_N:,} samples (n_real={n_real}, n_fake={n_fake}): FID is biased "
            "at small N (Chong & Forsyth 2020); compare only at equal N"
        ]
    return [
        f"{name.upper()} from N < {SMALL_N:,} samples (n_real={n_real}, n_fake={n_fake}) has a "
        "large variance (see std); compare only at equal N and subset size"
    ]


def protocol_warnings(protocol: Mapping[str, Any]) -> list[str]:
    """A caution when the features do not come from the standard published-metric weights."""
    if protocol.get("comparable_to_published") is False:
        extractor = protocol.get("extractor", "this extractor")
        return [
            f"features from {extractor}, not the standard Inception weights of published values: compare only "
            "with values measured under the same protocol, never with published numbers"
        ]
    return []


def _fmt(x: float) -> str:
    return f"{x:.6g}" if math.isfinite(x) else str(x)


def _plain(v: Any) -> Any:
    """numpy scalars/arrays and tuples -> plain Python values, so ``json.dumps`` accepts them."""
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, np.ndarray):
        return v.tolist()
    if isinstance(v, Mapping):
        return {str(k): _plain(x) for k, x in v.items()}
    if isinstance(v, Sequence) and not isinstance(v, str | bytes):
        return [_plain(x) for x in v]
    return v
