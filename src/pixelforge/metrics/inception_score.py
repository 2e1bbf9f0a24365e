"""Inception Score: exp( E_x KL(p(y|x) || p(y)) ), averaged over splits.

Salimans et al., "Improved Techniques for Training GANs" (NeurIPS 2016). As in the original
code and torch-fidelity (``metric_isc.py``): N predictions are cut into ``splits`` consecutive
chunks with boundaries ``i * N // splits``; in each chunk p(y) is the mean of p(y|x) over the
chunk, the score is exp of the mean KL; the result is the mean over chunks and their population
standard deviation (``np.std``). torch-fidelity first shuffles the rows with
``numpy.random.RandomState(2020).permutation(N)``; ``shuffle_seed=2020`` (the default) does the
same, ``shuffle_seed=None`` keeps the original order (the original code). Note that torchmetrics'
``InceptionScore`` reports the sample std (N - 1) instead.
"""

from __future__ import annotations

import numpy as np
import torch

from pixelforge.metrics._checks import ArrayLike, as_features
from pixelforge.metrics.errors import MetricError
from pixelforge.metrics.kl import kl_categorical
from pixelforge.metrics.result import MetricResult, protocol_warnings


def inception_score(
    predictions: ArrayLike,
    *,
    from_logits: bool = True,
    splits: int = 10,
    shuffle_seed: int | None = 2020,
    protocol: dict[str, object] | None = None,
) -> MetricResult:
    """IS of class predictions N x K: logits (``from_logits=True``) or probabilities.

    Probabilities must be non-negative and sum to 1 per row (within 1e-3); they are renormalised
    exactly. Computed in float64.
    """
    x = as_features(predictions, "predictions", min_rows=1)
    n, k = x.shape
    if splits < 1 or n < splits:
        raise MetricError(
            f"Inception Score with splits={splits} needs at least {max(splits, 1)} predictions "
            f"and splits >= 1, got {n} predictions"
        )
    if from_logits:
        log_p = torch.log_softmax(x, dim=1)
        p = log_p.exp()
    else:
        row_sums = x.sum(dim=1)
        if bool((x < 0).any()) or bool(((row_sums - 1).abs() > 1e-3).any()):
            raise MetricError(
                "probabilities must be >= 0 and sum to 1 per row; pass from_logits=True for "
                "logits (the raw classifier outputs)"
            )
        p = x / row_sums[:, None]
    if shuffle_seed is not None:
        perm = np.random.RandomState(shuffle_seed).permutation(n)
        p = p[torch.from_numpy(perm).to(p.device)]
    scores = []
    for i in range(splits):
        chunk = p[i * n // splits : (i + 1) * n // splits]
        marginal = chunk.mean(dim=0, keepdim=True).expand_as(chunk)  # p(y) of this chunk
        scores.append(float(kl_categorical(chunk, marginal, dim=1).mean().exp()))
    values = np.array(scores)
    proto: dict[str, object] = {
        **(protocol or {}),
        "num_classes": k,
        "is_splits": splits,
        "is_shuffle_seed": shuffle_seed,
    }
    return MetricResult(
        name="inception_score",
        value=float(values.mean()),
        std=float(values.std()),
        n_fake=n,
        protocol=proto,
        warnings=tuple(protocol_warnings(proto)),
    )
