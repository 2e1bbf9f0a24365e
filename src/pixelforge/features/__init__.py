"""Feature networks (Inception for FID, VGG, LPIPS, small domain classifiers) by name."""

from pixelforge.features.base import FeatureExtractor
from pixelforge.features.registry import get_extractor, list_extractors, register_extractor

__all__ = ["FeatureExtractor", "get_extractor", "list_extractors", "register_extractor"]
