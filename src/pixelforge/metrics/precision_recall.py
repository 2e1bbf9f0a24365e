"""Improved precision and recall of a generative model (k-NN manifold estimate).

Kynkäänniemi et al., "Improved Precision and Recall Metric for Assessing Generative Models"
(NeurIPS 2019), reference code ``precision_recall.py`` in kynkaat/improved-precision-and-recall-
metric. Each set's manifold is the union of balls around its samples, the radius of each ball
being the distance to the sample's k-th nearest neighbour in its own set (k = 3, itself
excluded). Precision is the share of fake samples inside the real manifold; recall the share of
real samples inside the fake manifold. A sample on a ball's boundary counts as inside (``<=``,
as in the reference).

Distances are computed block by block (squared Euclidean, ``|a|^2 + |b|^2 - 2 a.b`` with a
matrix product, clamped at 0), so memory stays at about ``max_block_elements`` distances whatever
N is; no N x N matrix is built.
"""

from __future__ import annotations

import torch

from pixelforge.metrics._checks import ArrayLike, as_features
from pixelforge.metrics.errors import MetricError
from pixelforge.metrics.result import MetricResult, protocol_warnings

DEFAULT_BLOCK_ELEMENTS = 1 << 24  # 16M distances = 64 MB in float32 per block


def precision_recall(
    real: ArrayLike,
    fake: ArrayLike,
    *,
    k: int = 3,
    dtype: torch.dtype = torch.float32,
    max_block_elements: int = DEFAULT_BLOCK_ELEMENTS,
    protocol: dict[str, object] | None = None,
) -> tuple[MetricResult, MetricResult]:
    """(precision, recall) of ``fake`` against ``real`` features (N x D each).

    ``dtype`` is the precision of the distance computation (float32 as in the reference code;
    float64 for exactness on CPU at twice the cost).
    """
    if k < 1:
        raise MetricError(f"k must be >= 1, got {k}")
    r = as_features(real, "real features", dtype=dtype, min_rows=k + 1)
    f = as_features(
        fake, "fake features", dtype=dtype, dim=r.shape[1], min_rows=k + 1, device=r.device
    )
    r_radii = knn_radii(r, k, max_block_elements=max_block_elements)
    f_radii = knn_radii(f, k, max_block_elements=max_block_elements)
    precision = _share_inside(f, r, r_radii, max_block_elements).item()
    recall = _share_inside(r, f, f_radii, max_block_elements).item()
    proto: dict[str, object] = {"feature_dim": r.shape[1], **(protocol or {}), "pr_k": k}

    def result(name: str, value: float) -> MetricResult:
        return MetricResult(
            name=name,
            value=value,
            n_real=r.shape[0],
            n_fake=f.shape[0],
            protocol=proto,
            warnings=tuple(protocol_warnings(proto)),
        )

    return result("precision", precision), result("recall", recall)


def knn_radii(
    x: torch.Tensor, k: int, *, max_block_elements: int = DEFAULT_BLOCK_ELEMENTS
) -> torch.Tensor:
    """Squared distance from each row of ``x`` to its k-th nearest other row, shape (N,)."""
    n = x.shape[0]
    if n <= k:
        raise MetricError(f"k-NN radii with k={k} need more than {k} samples, got {n}")
    sq = x.square().sum(dim=1)
    out = torch.empty(n, dtype=x.dtype, device=x.device)
    for start, stop in _blocks(n, n, max_block_elements):
        d2 = _sq_dist(x[start:stop], sq[start:stop], x, sq)
        rows = torch.arange(stop - start, device=x.device)
        d2[rows, rows + start] = 0.0  # a sample's distance to itself is exactly 0
        # k + 1 smallest include the sample itself (0), so the largest of them is the k-th neighbour
        out[start:stop] = torch.topk(d2, k + 1, dim=1, largest=False).values[:, -1]
    return out


def _share_inside(
    queries: torch.Tensor, points: torch.Tensor, radii: torch.Tensor, max_block_elements: int
) -> torch.Tensor:
    """Share of ``queries`` within ``radii`` (squared) of at least one of ``points``."""
    sq_q, sq_p = queries.square().sum(dim=1), points.square().sum(dim=1)
    inside = torch.zeros(queries.shape[0], dtype=torch.bool, device=queries.device)
    for start, stop in _blocks(queries.shape[0], points.shape[0], max_block_elements):
        d2 = _sq_dist(queries[start:stop], sq_q[start:stop], points, sq_p)
        inside[start:stop] = (d2 <= radii[None, :]).any(dim=1)
    return inside.double().mean()


def _sq_dist(
    a: torch.Tensor, sq_a: torch.Tensor, b: torch.Tensor, sq_b: torch.Tensor
) -> torch.Tensor:
    # |a - b|^2 = |a|^2 + |b|^2 - 2 a.b; rounding can make it slightly negative, so clamp at 0.
    return (sq_a[:, None] + sq_b[None, :] - 2.0 * (a @ b.T)).clamp_min_(0.0)


def _blocks(n_rows: int, n_cols: int, max_block_elements: int) -> list[tuple[int, int]]:
    rows = max(1, max_block_elements // max(n_cols, 1))
    return [(s, min(s + rows, n_rows)) for s in range(0, n_rows, rows)]
