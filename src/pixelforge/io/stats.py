"""Reference statistics files (.npz): ``mu`` and ``sigma`` plus the protocol that made them.

The arrays ``mu`` and ``sigma`` are what pytorch-fid reads, so a pixelforge file works there too.
pixelforge adds protocol keys (``pf_extractor``, ``pf_weights_sha256``, ``pf_resize``, ``pf_n``,
``pf_source``, ``pf_content_sha256``, ``pf_version``) so that an FID against a cached file knows how
the real side was computed, and two files made differently are never compared. A file from
pytorch-fid or clean-fid, without protocol keys, is accepted with a warning.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from pixelforge.errors import PixelforgeError
from pixelforge.io.atomic import atomic_write_bytes

PROTOCOL_KEYS = ("extractor", "weights_sha256", "resize", "feature_dim")


class StatsFileError(PixelforgeError):
    """A statistics file is missing keys, malformed, or made with another protocol."""


@dataclass
class ReferenceStats:
    """Mean and covariance of one image set's features, with the protocol that made them."""

    mu: np.ndarray  # feature mean, D
    sigma: np.ndarray  # feature covariance, D x D (unbiased)
    n: int  # number of images
    protocol: dict[str, Any] = field(default_factory=dict)  # extractor, weights hash, resize, ...
    source: str = ""  # what the images were (a dataset spec or folder)
    content_sha256: str = ""  # hash of the images' content, when known

    @property
    def protocol_known(self) -> bool:
        return bool(self.protocol)


def save_stats(path: str | Path, stats: ReferenceStats) -> None:
    """Write ``stats`` to an .npz atomically."""
    buf = io.BytesIO()
    np.savez(
        buf,
        mu=stats.mu.astype(np.float64),
        sigma=stats.sigma.astype(np.float64),
        pf_n=np.array(stats.n),
        pf_protocol=np.array(json.dumps(stats.protocol, sort_keys=True)),
        pf_source=np.array(stats.source),
        pf_content_sha256=np.array(stats.content_sha256),
    )
    atomic_write_bytes(path, buf.getvalue())


def load_stats(path: str | Path) -> tuple[ReferenceStats, list[str]]:
    """Read an .npz of statistics; returns the stats and any warnings about it."""
    p = Path(path)
    if not p.is_file():
        raise StatsFileError(f"statistics file not found: {p}")
    try:
        with np.load(p, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
    except (OSError, ValueError) as exc:
        raise StatsFileError(f"{p} is not a readable .npz file ({exc}).") from None
    missing = [k for k in ("mu", "sigma") if k not in arrays]
    if missing:
        raise StatsFileError(
            f"{p} lacks {' and '.join(missing)}: a statistics file needs 'mu' and 'sigma'."
        )
    mu, sigma = arrays["mu"].astype(np.float64), arrays["sigma"].astype(np.float64)
    if mu.ndim != 1 or sigma.shape != (mu.shape[0], mu.shape[0]):
        raise StatsFileError(
            f"{p}: 'mu' must be D and 'sigma' D x D, got {mu.shape} and {sigma.shape}."
        )
    if not (np.isfinite(mu).all() and np.isfinite(sigma).all()):
        raise StatsFileError(f"{p} holds non-finite values.")
    warnings: list[str] = []
    if "pf_protocol" in arrays:
        protocol = json.loads(str(arrays["pf_protocol"]))
        n = int(arrays["pf_n"])
        source = str(arrays.get("pf_source", ""))
        content = str(arrays.get("pf_content_sha256", ""))
    else:
        protocol, n, source, content = {}, 0, "", ""
        warnings.append(
            f"{p.name} has no protocol keys (made by pytorch-fid or clean-fid?): pixelforge cannot check "
            "that it used the same feature extractor, weights and resizing; the FID may not be comparable."
        )
    return ReferenceStats(mu, sigma, n, protocol, source, content), warnings


def check_same_protocol(a: dict[str, Any], b: dict[str, Any], what: str) -> None:
    """Refuse to compare statistics made with different extractors, weights or resizing."""
    if not a or not b:
        return
    diffs = [f"{k}: {a.get(k)!r} vs {b.get(k)!r}" for k in PROTOCOL_KEYS if a.get(k) != b.get(k)]
    if diffs:
        raise StatsFileError(
            f"{what} were computed with different protocols ({'; '.join(diffs)}); "
            "recompute one side with the other's settings."
        )
