"""Features and statistics do not depend on how images are batched."""

from __future__ import annotations

import torch

from pixelforge.features.inception import inception_v3_fid
from pixelforge.metrics import StreamingStats


def test_inception_features_and_stats_are_batch_size_independent() -> None:
    net = inception_v3_fid(random_seed=0).eval()
    images = torch.rand(4, 3, 299, 299, generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        whole = net(images)
        parts = torch.cat([net(images[:1]), net(images[1:3]), net(images[3:])])
    scale = whole.abs().max()
    assert (whole - parts).abs().max() / scale < 1e-5
    a = StreamingStats(whole.shape[1]).update(whole)
    b = StreamingStats(whole.shape[1]).update(parts[:2]).update(parts[2:])
    assert torch.allclose(a.mean, b.mean, rtol=0, atol=1e-5 * float(scale))
    assert torch.allclose(a.cov, b.cov, rtol=0, atol=1e-5 * float(scale) ** 2)
