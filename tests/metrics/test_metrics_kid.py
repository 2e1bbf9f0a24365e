"""KID: unbiased MMD^2 over shared subsets, identical to torchmetrics' formula and conventions."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pixelforge.metrics import MetricError, kid, kid_subset_indices, polynomial_mmd2


def _sets(n_real: int = 400, n_fake: int = 300, d: int = 32, shift: float = 0.3):
    rng = np.random.default_rng(0)
    real = rng.standard_normal((n_real, d))
    fake = rng.standard_normal((n_fake, d)) * 1.1 + shift
    return real, fake


def test_same_distribution_gives_about_zero() -> None:
    rng = np.random.default_rng(1)
    real, other = rng.standard_normal((400, 32)), rng.standard_normal((400, 32))
    same = kid(real, other, subsets=50, subset_size=100)
    different = kid(real, _sets()[1], subsets=50, subset_size=100)
    assert abs(same.value) < 0.02 * different.value  # unbiased: ~0, and may be slightly negative
    assert abs(same.value) < 3 * same.std / np.sqrt(50)


def test_identical_sets_give_zero_up_to_the_self_pair_term() -> None:
    # With one array on both sides each sample meets itself in the cross term; on the full set
    # (m = N) the estimator is exactly -2 (mean k(x, x) - mean k(x, y)) / (m - 1) -> 0 as 1/m.
    x = np.random.default_rng(2).standard_normal((300, 64)) * 0.5
    k = (x @ x.T / 64 + 1) ** 3
    everything = np.arange(300)[None, :]
    value = kid(x, x, indices=(everything, everything)).value
    assert value == pytest.approx(-2 * (np.diag(k).mean() - k.mean()) / 299, rel=1e-10)
    half = np.arange(150)[None, :]
    assert abs(kid(x, x, indices=(half, half)).value) > 1.8 * abs(value)  # shrinks like 1/m


@pytest.mark.filterwarnings("ignore:Metric `Kernel Inception Distance` will save")
def test_agrees_with_torchmetrics_on_shared_subsets() -> None:
    import torchmetrics.image.kid as kid_module  # the oracle (a dev dependency)

    real, fake = _sets()
    real_t, fake_t = torch.from_numpy(real), torch.from_numpy(fake)

    class Identity(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x

    metric = kid_module.KernelInceptionDistance(feature=Identity(), subsets=20, subset_size=150)
    metric.update(real_t, real=True)
    metric.update(fake_t, real=False)
    torch.manual_seed(123)
    their_mean, their_std = (float(v) for v in metric.compute())
    # Reproduce torchmetrics' subsets: it draws randperm(n_real) then randperm(n_fake) per subset.
    torch.manual_seed(123)
    real_idx, fake_idx = [], []
    for _ in range(20):
        real_idx.append(torch.randperm(400)[:150].numpy())
        fake_idx.append(torch.randperm(300)[:150].numpy())
    ours = kid(real, fake, indices=(np.stack(real_idx), np.stack(fake_idx)))
    assert ours.value == pytest.approx(their_mean, rel=1e-6)
    assert ours.std == pytest.approx(their_std, rel=1e-6)  # population std, as theirs
    # Their per-subset kernel MMD on our own subsets.
    ri, fi = kid_subset_indices(400, 300, subsets=5, subset_size=100, seed=7)
    theirs = [float(kid_module.poly_mmd(real_t[r], fake_t[f])) for r, f in zip(ri, fi, strict=True)]
    ours5 = kid(real, fake, indices=(ri, fi))
    assert ours5.value == pytest.approx(np.mean(theirs), rel=1e-6)
    assert ours5.std == pytest.approx(np.std(theirs), rel=1e-6)


def test_seed_reproduces_and_indices_share_subsets() -> None:
    real, fake = _sets()
    a = kid(real, fake, subsets=10, subset_size=50, seed=1)
    b = kid(real, fake, subsets=10, subset_size=50, seed=1)
    c = kid(real, fake, subsets=10, subset_size=50, seed=2)
    assert a.value == b.value and a.std == b.std
    assert a.value != c.value
    indices = kid_subset_indices(400, 300, subsets=10, subset_size=50, seed=1)
    assert kid(real, fake, indices=indices).value == a.value
    ri, fi = indices
    assert ri.shape == fi.shape == (10, 50)
    assert all(len(set(row)) == 50 for row in ri)  # drawn without replacement


def test_subset_values_are_the_unbiased_mmd_estimator() -> None:
    rng = np.random.default_rng(3)
    x, y = rng.standard_normal((30, 5)), rng.standard_normal((30, 5)) + 0.5
    k = lambda a, b: (a @ b.T / 5 + 1) ** 3  # noqa: E731
    kxx, kyy, kxy = k(x, x), k(y, y), k(x, y)
    m = 30
    expected = (kxx.sum() - np.trace(kxx) + kyy.sum() - np.trace(kyy)) / (m * (m - 1))
    expected -= 2 * kxy.sum() / m**2
    got = polynomial_mmd2(torch.from_numpy(x), torch.from_numpy(y))
    assert got == pytest.approx(expected, rel=1e-12)


def test_default_subset_size_and_protocol() -> None:
    real, fake = _sets(n_real=120, n_fake=90)
    result = kid(real, fake, subsets=3)
    assert result.protocol["kid_subset_size"] == 90  # min(1000, N)
    assert result.protocol["kid_subsets"] == 3 and result.protocol["kid_degree"] == 3
    assert any("subset size lowered to 90" in w for w in result.warnings)
    assert any("N < 10,000" in w for w in result.warnings)
    assert (result.n_real, result.n_fake) == (120, 90)


def test_bad_inputs_are_clear_errors() -> None:
    real, fake = _sets()
    with pytest.raises(MetricError, match="exceeds the sample count"):
        kid(real, fake, subset_size=301)
    with pytest.raises(MetricError, match="dimensions"):
        kid(real, fake[:, :10])
    bad = fake.copy()
    bad[3, 0] = np.nan
    with pytest.raises(MetricError, match="NaN"):
        kid(real, bad)
    with pytest.raises(MetricError, match="at least 2"):
        kid(real[:1], fake)
    with pytest.raises(MetricError, match="out of range"):
        kid(real, fake, indices=(np.full((2, 5), 400), np.zeros((2, 5), dtype=int)))
