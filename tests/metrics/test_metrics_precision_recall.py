"""Improved precision and recall: the values of clear-cut cases, independent of block size."""

from __future__ import annotations

import importlib

import numpy as np
import pytest
import torch

from pixelforge.metrics import MetricError, knn_radii, precision_recall

# The package re-exports the function under the module's name, so reach the module itself.
pr_module = importlib.import_module("pixelforge.metrics.precision_recall")


def _clusters(n_per: int, centres: list[float], d: int = 16, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.concatenate([rng.standard_normal((n_per, d)) + c for c in centres])


def test_identical_sets_give_one_and_one() -> None:
    x = _clusters(150, [0.0, 5.0])
    precision, recall = precision_recall(x, x.copy())
    assert (precision.value, recall.value) == (1.0, 1.0)
    assert (precision.name, recall.name) == ("precision", "recall")
    assert precision.protocol["pr_k"] == 3


def test_far_apart_sets_give_zero_and_zero() -> None:
    real, fake = _clusters(100, [0.0]), _clusters(100, [1000.0], seed=1)
    precision, recall = precision_recall(real, fake)
    assert (precision.value, recall.value) == (0.0, 0.0)


def test_partial_coverage_gives_the_covered_share() -> None:
    # Real data has 4 far-apart modes; the generator reproduces 2 of them (mode dropping).
    real = _clusters(60, [0.0, 100.0, 200.0, 300.0])
    fake = real[:120]  # the first two modes
    precision, recall = precision_recall(real, fake)
    assert precision.value == 1.0  # everything generated is realistic
    assert recall.value == pytest.approx(0.5)  # half of the real data is covered


def test_distances_are_computed_in_bounded_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    real, fake = _clusters(100, [0.0, 3.0]), _clusters(100, [1.0, 3.0], seed=2)
    big = precision_recall(real, fake)
    sizes: list[int] = []
    original = pr_module._sq_dist

    def recording(*args: torch.Tensor) -> torch.Tensor:
        out = original(*args)
        sizes.append(out.numel())
        return out

    monkeypatch.setattr(pr_module, "_sq_dist", recording)
    small = precision_recall(real, fake, max_block_elements=7 * 200)  # 7-row blocks
    assert max(sizes) <= 7 * 200  # never a 200 x 200 matrix
    assert [r.value for r in big] == [r.value for r in small]  # and the same result
    assert 0.0 < big[0].value < 1.0 and 0.0 < big[1].value < 1.0


def test_radii_are_the_kth_neighbour_distance_excluding_self() -> None:
    x = np.random.default_rng(3).standard_normal((50, 6))
    d2 = ((x[:, None] - x[None]) ** 2).sum(-1)
    np.fill_diagonal(d2, np.inf)
    expected = np.sort(d2, axis=1)[:, 2]  # 3rd nearest other sample
    got = knn_radii(torch.from_numpy(x), 3, max_block_elements=64).numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-10)


def test_bad_inputs_are_clear_errors() -> None:
    x = _clusters(10, [0.0])
    with pytest.raises(MetricError, match="at least 4"):
        precision_recall(x, x[:3])
    with pytest.raises(MetricError, match="dimensions"):
        precision_recall(x, x[:, :4])
    with pytest.raises(MetricError, match="k must be"):
        precision_recall(x, x, k=0)
