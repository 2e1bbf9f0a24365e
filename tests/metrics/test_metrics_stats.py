"""StreamingStats: batched and merged statistics equal the statistics of the whole array."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pixelforge.errors import PixelforgeError
from pixelforge.metrics import MetricError, StreamingStats


def _features(n: int, d: int, seed: int = 0, offset: float = 5.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    mix = rng.standard_normal((d, d)) / np.sqrt(d)
    return rng.standard_normal((n, d)) @ mix * 3.0 + offset + rng.standard_normal(d)


def _rel(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a - b).max() / np.abs(b).max())


def test_random_batch_sizes_match_numpy_on_the_whole_array() -> None:
    x = _features(1000, 24)
    rng = np.random.default_rng(1)
    stats, start = StreamingStats(24), 0
    while start < len(x):
        stop = start + int(rng.integers(1, 97))  # includes batches of a single sample
        stats.update(x[start:stop])
        start = stop
    assert stats.n == 1000
    assert _rel(stats.mean.numpy(), x.mean(axis=0)) < 1e-10
    assert _rel(stats.cov.numpy(), np.cov(x, rowvar=False)) < 1e-10  # unbiased, like pytorch-fid


def test_merge_of_two_halves_equals_the_whole() -> None:
    x = _features(801, 16, seed=2)
    whole = StreamingStats(16).update(x)
    a = StreamingStats(16).update(x[:300])
    b = StreamingStats(16).update(x[300:])
    merged = a.merge(b)
    assert merged.n == whole.n
    assert _rel(merged.mean.numpy(), whole.mean.numpy()) < 1e-12
    assert _rel(merged.cov.numpy(), whole.cov.numpy()) < 1e-12
    assert StreamingStats(16).merge(whole).n == 801  # merging into an empty accumulator


def test_numerically_sound_with_a_large_mean() -> None:
    # Features with mean 1e6 and unit spread: sum(x x^T) - n mean mean^T would lose every digit.
    x = _features(2000, 8, seed=3, offset=1e6)
    stats = StreamingStats(8)
    for chunk in np.array_split(x, 7):
        stats.update(chunk)
    assert _rel(stats.cov.numpy(), np.cov(x, rowvar=False)) < 1e-8


def test_state_round_trip_and_memory_independent_of_n() -> None:
    x = _features(500, 12, seed=4)
    stats = StreamingStats(12).update(torch.from_numpy(x).float())  # float32 input is accepted
    state = stats.to_state()
    assert set(state) == {"n", "mean", "m2"}
    assert all(isinstance(v, torch.Tensor) for v in state.values())
    assert state["m2"].shape == (12, 12) and state["m2"].dtype == torch.float64
    again = StreamingStats.from_state({k: v.numpy() for k, v in state.items()})
    assert again.n == 500
    assert torch.equal(again.cov, stats.cov)
    assert torch.equal(again.mean, stats.mean)


def test_covariance_is_symmetric_float64() -> None:
    stats = StreamingStats(5).update(_features(50, 5))
    cov = stats.cov
    assert cov.dtype == torch.float64
    assert torch.equal(cov, cov.T)


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_non_finite_features_are_refused(bad: float) -> None:
    x = _features(10, 4)
    x[7, 2] = bad
    stats = StreamingStats(4)
    with pytest.raises(MetricError, match=r"NaN or infinite.*\[7\]") as info:
        stats.update(x)
    assert isinstance(info.value, PixelforgeError)
    assert stats.n == 0  # nothing of the bad batch was added


def test_wrong_shapes_and_too_few_samples_are_clear_errors() -> None:
    stats = StreamingStats(4)
    with pytest.raises(MetricError, match="3 dimensions but 4 were expected"):
        stats.update(np.zeros((5, 3)))
    with pytest.raises(MetricError, match="2-D"):
        stats.update(np.zeros(4))
    with pytest.raises(MetricError, match="empty set"):
        _ = stats.mean
    stats.update(np.zeros((0, 4)))  # an empty batch is a no-op
    stats.update(np.ones((1, 4)))
    with pytest.raises(MetricError, match="at least 2 samples"):
        _ = stats.cov
    with pytest.raises(MetricError, match="cannot merge"):
        stats.merge(StreamingStats(5).update(np.ones((2, 5))))
