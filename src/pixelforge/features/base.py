"""What every feature extractor offers the metrics."""

from __future__ import annotations

import torch
from torch import nn


class FeatureExtractor(nn.Module):
    """Images in, one feature vector per image out; self-describing for metric reports.

    ``forward`` takes float images N x C x H x W in [0, 1] with ``input_channels`` channels at
    ``input_size`` x ``input_size`` (the caller resizes with :mod:`pixelforge.features.preprocess`)
    and returns float32 features N x ``feature_dim``. Extractors that classify also implement
    ``logits`` (used by the Inception Score).
    """

    name: str = ""  # registry name, e.g. "inception-v3-fid" or "digits-cnn"
    weights_sha256: str = ""  # SHA-256 of the weight file in use, or "random:<seed>"
    input_size: int = 0  # images are resized to this square size before forward
    input_channels: int = 3  # 1 or 3
    feature_dim: int = 0  # length of the feature vector
    comparable_to_published: bool = False  # True only for the standard FID Inception weights

    def logits(self, images: torch.Tensor) -> torch.Tensor:
        """Class logits N x K, for extractors that are classifiers."""
        raise NotImplementedError(f"{self.name} has no classifier head")

    def describe(self) -> dict[str, object]:
        """The protocol fields a metric result carries."""
        return {
            "extractor": self.name,
            "weights_sha256": self.weights_sha256,
            "input_size": self.input_size,
            "feature_dim": self.feature_dim,
            "comparable_to_published": self.comparable_to_published,
        }
