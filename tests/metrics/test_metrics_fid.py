"""Fréchet distance: exact on closed forms, equal to pytorch-fid's and torchmetrics' values."""

from __future__ import annotations

import json

import numpy as np
import pytest
import scipy.linalg
import torch

from pixelforge.metrics import (
    MetricError,
    StreamingStats,
    fid_from_features,
    fid_from_stats,
    frechet_distance,
)


def _rel(a: float, b: float) -> float:
    return abs(a - b) / abs(b)


def _sqrtm_fid(mu1: np.ndarray, s1: np.ndarray, mu2: np.ndarray, s2: np.ndarray) -> float:
    """pytorch-fid's formula (scipy.linalg.sqrtm of S1 S2, real part of the trace)."""
    covmean = scipy.linalg.sqrtm(s1 @ s2)
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean).real)


def _exact_from_data(x: np.ndarray, y: np.ndarray) -> float:
    """FID of two sample sets from the data, without forming any covariance product.

    tr sqrt(S1^1/2 S2 S1^1/2) is the nuclear norm of F1^T F2 for any factors F_i F_i^T = S_i;
    with the thin QR of the centred data, Xc = Q1 R1 and Yc = Q2 R2, F_i = R_i^T / sqrt(n_i - 1),
    so it is the sum of the singular values of R1 R2^T / sqrt((n1 - 1)(n2 - 1)).
    """
    r1 = np.linalg.qr(x - x.mean(0), mode="r")
    r2 = np.linalg.qr(y - y.mean(0), mode="r")
    s1, s2 = np.cov(x, rowvar=False), np.cov(y, rowvar=False)
    tr = np.linalg.svd(r1 @ r2.T / np.sqrt((len(x) - 1) * (len(y) - 1)), compute_uv=False).sum()
    diff = x.mean(0) - y.mean(0)
    return float(diff @ diff + np.trace(s1) + np.trace(s2) - 2 * tr)


def _spd(d: int, seed: int, floor: float = 0.1) -> np.ndarray:
    a = np.random.default_rng(seed).standard_normal((d, d))
    return a @ a.T / d + floor * np.eye(d)


METHODS = ["eigh", "cholesky"]


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize(("n", "d"), [(500, 16), (20, 64)])  # N > d and N < d (rank N - 1)
def test_identical_sets_give_zero(n: int, d: int, method: str) -> None:
    x = np.random.default_rng(0).standard_normal((n, d)) * 4 + 2
    stats = StreamingStats(d).update(x)
    value = frechet_distance(stats.mean, stats.cov, stats.mean, stats.cov, method=method)
    assert abs(value) < 1e-6 * float(np.trace(stats.cov.numpy()))


@pytest.mark.parametrize("method", METHODS)
def test_commuting_diagonal_case_including_rank_deficient(method: str) -> None:
    rng = np.random.default_rng(1)
    a, b = rng.uniform(0, 4, 40), rng.uniform(0, 4, 40)
    a[:10], b[5:15] = 0.0, 0.0  # rank 30 each, overlapping null spaces
    mu1, mu2 = rng.standard_normal(40), rng.standard_normal(40)
    exact = float(((mu1 - mu2) ** 2).sum() + ((np.sqrt(a) - np.sqrt(b)) ** 2).sum())
    assert _rel(frechet_distance(mu1, np.diag(a), mu2, np.diag(b), method=method), exact) < 1e-12
    # The same matrices in a rotated basis no longer are diagonal; the distance is unchanged
    # (up to the square roots of rounding-level eigenvalues where the null spaces differ).
    q, _ = np.linalg.qr(rng.standard_normal((40, 40)))
    s1, s2 = q @ np.diag(a) @ q.T, q @ np.diag(b) @ q.T
    assert _rel(frechet_distance(q @ mu1, s1, q @ mu2, s2, method=method), exact) < 1e-8


@pytest.mark.parametrize("method", METHODS)
def test_non_commuting_covariances_match_scipy_sqrtm(method: str) -> None:
    s1, s2 = _spd(32, 2), _spd(32, 3, floor=0.5)
    assert not np.allclose(s1 @ s2, s2 @ s1)
    mu1, mu2 = np.zeros(32), np.full(32, 0.3)
    ref = _sqrtm_fid(mu1, s1, mu2, s2)
    assert _rel(frechet_distance(mu1, s1, mu2, s2, method=method), ref) < 1e-9
    assert _rel(frechet_distance(mu1, s1, mu2, s2, backend="torch"), ref) < 1e-9
    # A distance: symmetric in its arguments.
    assert _rel(frechet_distance(mu2, s2, mu1, s1, method=method), ref) < 1e-9


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize(("n1", "n2", "d"), [(12, 30, 64), (40, 25, 128), (300, 20, 64)])
def test_fewer_samples_than_dimensions(n1: int, n2: int, d: int, method: str) -> None:
    # Rank-deficient sample covariances (rank N - 1 < d), non-commuting.
    rng = np.random.default_rng(n1 + n2)
    x = rng.standard_normal((n1, d)) @ rng.standard_normal((d, d)) / np.sqrt(d)
    y = rng.standard_normal((n2, d)) * 1.5 + 0.2
    exact = _exact_from_data(x, y)
    result = fid_from_features(x, y, method=method)
    assert _rel(result.value, exact) < 1e-10
    s1, s2 = np.cov(x, rowvar=False), np.cov(y, rowvar=False)
    assert _rel(_sqrtm_fid(x.mean(0), s1, y.mean(0), s2), exact) < 1e-6  # the oracle is close too
    assert _rel(result.value, _sqrtm_fid(x.mean(0), s1, y.mean(0), s2)) < 1e-6


def test_badly_scaled_features_keep_their_small_eigenvalues() -> None:
    # Feature variances spread over decades (as Inception's are): S1 S2 has eigenvalues spanning
    # ~16 orders of magnitude and the small ones still count at the 1e-7 level.
    rng = np.random.default_rng(6)
    scales = np.arange(1, 257) ** -1.0
    x = rng.standard_normal((1500, 256)) @ (rng.standard_normal((256, 256)) * scales) * 3
    y = rng.standard_normal((1500, 256)) @ (rng.standard_normal((256, 256)) * scales) * 3 + 0.1
    exact = _exact_from_data(x, y)
    assert _rel(fid_from_features(x, y, method="cholesky").value, exact) < 1e-12
    # eigh's error is relative to the largest eigenvalue, so it is less accurate here.
    assert _rel(fid_from_features(x, y).value, exact) < 1e-6
    assert _rel(fid_from_features(x, y, backend="torch").value, exact) < 1e-6


def test_agrees_with_torchmetrics_frechet_inception_distance() -> None:
    import torchmetrics.image.fid as fid_module  # the oracle (a dev dependency)

    class Identity(torch.nn.Module):
        num_features = 48

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x

    rng = np.random.default_rng(4)
    real = torch.from_numpy(rng.standard_normal((600, 48)) @ rng.standard_normal((48, 48)))
    fake = torch.from_numpy(rng.standard_normal((500, 48)) * 2 + 1)
    metric = fid_module.FrechetInceptionDistance(feature=Identity())
    for chunk in real.split(128):
        metric.update(chunk, real=True)
    for chunk in fake.split(100):
        metric.update(chunk, real=False)
    theirs = float(metric.compute())
    ours = fid_from_features(real, fake).value
    assert _rel(ours, theirs) < 1e-6
    # Their trace term (eigenvalues of the non-symmetric S1 S2) on our statistics.
    a, b = StreamingStats(48).update(real), StreamingStats(48).update(fake)
    theirs_from_ours = float(fid_module._compute_fid(a.mean, a.cov, b.mean, b.cov))
    assert _rel(fid_from_stats(a, b).value, theirs_from_ours) < 1e-6


def test_result_is_self_describing() -> None:
    rng = np.random.default_rng(5)
    real = StreamingStats(8).update(rng.standard_normal((100, 8)))
    fake = StreamingStats(8).update(rng.standard_normal((120, 8)) + 1)
    protocol = {"extractor": "digits-cnn", "weights_sha256": "ab" * 32, "resize": "bilinear"}
    protocol["comparable_to_published"] = False
    result = fid_from_stats(real, fake, protocol=protocol)
    assert (result.name, result.n_real, result.n_fake) == ("fid", 100, 120)
    assert result.protocol["feature_dim"] == 8 and result.protocol["extractor"] == "digits-cnn"
    assert any("Chong & Forsyth 2020" in w for w in result.warnings)
    assert any("published" in w for w in result.warnings)
    assert json.loads(json.dumps(result.to_dict()))["value"] == pytest.approx(result.value)
    assert str(result).startswith("fid = ") and "\n" not in str(result)


def test_bad_inputs_are_clear_errors() -> None:
    one = StreamingStats(4).update(np.ones((1, 4)))
    two = StreamingStats(4).update(np.random.default_rng(0).standard_normal((2, 4)))
    with pytest.raises(MetricError, match="at least 2 real samples"):
        fid_from_stats(one, two)
    with pytest.raises(MetricError, match="at least 2 fake samples"):
        fid_from_stats(two, StreamingStats(4))
    with pytest.raises(MetricError, match="same extractor"):
        fid_from_stats(two, StreamingStats(5).update(np.eye(5)))
    with pytest.raises(MetricError, match="6 dimensions but 5 were expected"):
        fid_from_features(np.eye(5), np.eye(6))
    with pytest.raises(MetricError, match="0 sample"):
        fid_from_features(np.zeros((0, 3)), np.eye(3))
    with pytest.raises(MetricError, match="NaN"):
        frechet_distance(np.zeros(2), np.array([[1.0, 0], [0, np.nan]]), np.zeros(2), np.eye(2))
    with pytest.raises(MetricError, match="not symmetric"):
        frechet_distance(np.zeros(2), np.array([[1.0, 1], [0, 1]]), np.zeros(2), np.eye(2))
    with pytest.raises(MetricError, match="unknown method"):
        frechet_distance(np.zeros(2), np.eye(2), np.zeros(2), np.eye(2), method="sqrtm")  # type: ignore[arg-type]
    with pytest.raises(MetricError, match="needs backend='numpy'"):
        frechet_distance(
            np.zeros(2), np.eye(2), np.zeros(2), np.eye(2), method="cholesky", backend="torch"
        )
    with pytest.raises(MetricError, match="D x D"):
        frechet_distance(np.zeros(3), np.eye(2), np.zeros(3), np.eye(3))
