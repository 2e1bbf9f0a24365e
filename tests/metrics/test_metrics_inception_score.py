"""Inception Score: its known extremes, and the original code's value."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pixelforge.metrics import MetricError, inception_score


def _original_is(probs: np.ndarray, splits: int) -> tuple[float, float]:
    """Salimans et al.'s inception_score.py loop (no shuffling), on probabilities."""
    scores = []
    n = probs.shape[0]
    for i in range(splits):
        part = probs[(i * n // splits) : ((i + 1) * n // splits), :]
        kl = part * (np.log(part) - np.log(np.expand_dims(np.mean(part, 0), 0)))
        scores.append(np.exp(np.mean(np.sum(kl, 1))))
    return float(np.mean(scores)), float(np.std(scores))


def test_uniform_predictions_score_one() -> None:
    result = inception_score(torch.zeros(100, 7))  # equal logits: uniform p(y|x)
    assert result.value == pytest.approx(1.0, abs=1e-12)
    assert result.std == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize("k", [2, 10, 37])
def test_one_hot_predictions_spread_evenly_score_k(k: int) -> None:
    probs = np.eye(k)[np.arange(20 * k) % k]  # every split of 2k rows holds each class twice
    result = inception_score(probs, from_logits=False, splits=10, shuffle_seed=None)
    assert result.value == pytest.approx(k, rel=1e-12)
    assert result.std == pytest.approx(0.0, abs=1e-9)
    # Shuffled rows: one split holds them all, so the marginal is still uniform.
    assert inception_score(probs, from_logits=False, splits=1).value == pytest.approx(k, rel=1e-12)


def test_matches_the_original_code() -> None:
    logits = np.random.default_rng(0).standard_normal((1000, 20)) * 3
    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    mean, std = _original_is(probs, splits=10)
    result = inception_score(logits, splits=10, shuffle_seed=None)
    assert result.value == pytest.approx(mean, rel=1e-10)
    assert result.std == pytest.approx(std, rel=1e-8)
    # torch-fidelity's default: rows shuffled with RandomState(2020) first.
    shuffled = probs[np.random.RandomState(2020).permutation(1000)]
    assert inception_score(logits).value == pytest.approx(_original_is(shuffled, 10)[0], rel=1e-10)


def test_bad_inputs_are_clear_errors() -> None:
    with pytest.raises(MetricError, match="sum to 1"):
        inception_score(torch.ones(20, 3), from_logits=False)
    with pytest.raises(MetricError, match="splits=10"):
        inception_score(torch.zeros(5, 3))
    with pytest.raises(MetricError, match="NaN"):
        inception_score(torch.tensor([[0.0, float("nan")]] * 20))
