"""Streaming mean and covariance of feature vectors, exact to merge across processes.

The state is (n, mean, M2) with M2 = sum over samples of (x - mean)(x - mean)^T, in float64. Each
batch is centred on its own mean and combined with the running state by the pairwise update of
Chan, Golub & LeVeque, "Algorithms for computing the sample variance" (1983); this avoids the
cancellation of the textbook ``sum(x x^T) - n mean mean^T`` when features have a large mean,
and memory is O(D^2) whatever N is.
"""

from __future__ import annotations

import torch

from pixelforge.metrics._checks import ArrayLike, as_features, check_finite
from pixelforge.metrics.errors import MetricError


class StreamingStats:
    """Mean and unbiased covariance of D-dimensional features, fed in batches.

    >>> stats = StreamingStats(2048)
    >>> for batch in batches:            # doctest: +SKIP
    ...     stats.update(extractor(batch))
    >>> stats.mean, stats.cov, stats.n   # doctest: +SKIP

    ``cov`` divides by N - 1, like pytorch-fid's ``np.cov(features, rowvar=False)``. The state
    lives on the device of the first batch (CPU unless ``device`` is given), always in float64.
    """

    def __init__(self, dim: int, *, device: torch.device | str | None = None) -> None:
        if int(dim) < 1:
            raise MetricError(f"StreamingStats needs a feature dimension >= 1, got {dim}")
        self.dim = int(dim)
        self._device = torch.device(device) if device is not None else None
        self._n = 0
        self._mean = torch.zeros(self.dim, dtype=torch.float64, device=self._device)
        self._m2 = torch.zeros(self.dim, self.dim, dtype=torch.float64, device=self._device)

    # -- feeding -------------------------------------------------------------------------------
    def update(self, features: ArrayLike) -> StreamingStats:
        """Add a batch of features N x D (tensor or array, any float dtype); returns ``self``.

        Raises :class:`MetricError` on NaN/inf values or a wrong D. An empty batch is a no-op.
        """
        x = as_features(features, "features", dim=self.dim, min_rows=0, device=self._device)
        if self._device is None:  # the first batch decides the device
            self._device = x.device
            self._mean, self._m2 = self._mean.to(x.device), self._m2.to(x.device)
        nb = x.shape[0]
        if nb == 0:
            return self
        mean_b = x.mean(dim=0)
        xc = x - mean_b
        self._m2.addmm_(xc.T, xc)  # the batch's own scatter, sum (x - mean_b)(x - mean_b)^T
        self._advance(nb, mean_b)
        return self

    def merge(self, other: StreamingStats) -> StreamingStats:
        """Add another accumulator's samples into this one (exact); returns ``self``.

        Merging the stats of two halves gives the stats of the whole, up to rounding; use it to
        reduce the per-process stats of a distributed evaluation.
        """
        if not isinstance(other, StreamingStats):
            raise MetricError(f"can only merge StreamingStats, got {type(other).__name__}")
        if other.dim != self.dim:
            raise MetricError(
                f"cannot merge stats of {other.dim}-d features into stats of {self.dim}-d "
                "features: both must come from the same extractor"
            )
        if other._n == 0:
            return self
        if self._device is None:
            self._device = other._mean.device
            self._mean, self._m2 = self._mean.to(self._device), self._m2.to(self._device)
        dev = self._mean.device
        self._m2.add_(other._m2.to(dev))
        self._advance(other._n, other._mean.to(dev))
        return self

    def _advance(self, nb: int, mean_b: torch.Tensor) -> None:
        """Fold in the mean of nb new samples whose own scatter M2_b is already added to M2.

        Chan et al.: M2 = M2_a + M2_b + delta delta^T * n_a n_b / n, delta = mean_b - mean_a.
        """
        na, n = self._n, self._n + nb
        delta = mean_b - self._mean
        self._mean.add_(delta, alpha=nb / n)
        if na:
            self._m2.addr_(delta, delta, alpha=na * nb / n)
        self._n = n

    # -- results -------------------------------------------------------------------------------
    @property
    def n(self) -> int:
        """Number of samples seen."""
        return self._n

    @property
    def mean(self) -> torch.Tensor:
        """Mean feature vector (D,), float64."""
        if self._n < 1:
            raise MetricError("no features were added: the mean of an empty set is undefined")
        return self._mean.clone()

    @property
    def cov(self) -> torch.Tensor:
        """Unbiased covariance D x D (divides by N - 1), float64, exactly symmetric."""
        if self._n < 2:
            raise MetricError(
                f"a covariance needs at least 2 samples, {self._n} given; FID needs >= 2 "
                "samples per set (and about 10,000 for a value comparable to others)"
            )
        m2 = self._m2 / (self._n - 1)
        return (m2 + m2.T) / 2  # the rank-1 updates are symmetric only up to rounding

    # -- state ---------------------------------------------------------------------------------
    def to_state(self) -> dict[str, torch.Tensor]:
        """Plain tensors ``{"n", "mean", "m2"}`` (int64 scalar, D, D x D float64) for saving
        with safetensors or gathering across processes; restore with :meth:`from_state`."""
        return {
            "n": torch.tensor(self._n, dtype=torch.int64),
            "mean": self._mean.clone(),
            "m2": self._m2.clone(),
        }

    @classmethod
    def from_state(cls, state: dict[str, ArrayLike]) -> StreamingStats:
        """Rebuild an accumulator from :meth:`to_state` output (tensors or numpy arrays)."""
        missing = {"n", "mean", "m2"} - set(state)
        if missing:
            raise MetricError(f"StreamingStats state lacks {sorted(missing)}; expected n, mean, m2")
        mean, m2 = torch.as_tensor(state["mean"]), torch.as_tensor(state["m2"])
        n = int(torch.as_tensor(state["n"]).item())
        d = mean.shape[0] if mean.ndim == 1 else -1
        if mean.ndim != 1 or tuple(m2.shape) != (d, d) or n < 0:
            raise MetricError(
                f"inconsistent StreamingStats state: n={n}, mean {tuple(mean.shape)}, "
                f"m2 {tuple(m2.shape)}; expected n >= 0, (D,) and (D, D)"
            )
        check_finite(mean, "state mean")
        check_finite(m2, "state m2")
        out = cls(d, device=mean.device)
        out._n = n
        out._mean = mean.to(torch.float64).clone()
        out._m2 = m2.to(device=mean.device, dtype=torch.float64).clone()
        return out

    def __repr__(self) -> str:
        return f"StreamingStats(dim={self.dim}, n={self._n})"
