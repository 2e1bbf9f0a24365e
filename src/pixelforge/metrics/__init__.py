"""Metrics: features (or paired images) in, self-describing numbers out; no file I/O.

Distribution metrics work on feature arrays N x D from :mod:`pixelforge.features`:
FID (:func:`fid_from_stats` over :class:`StreamingStats`), KID (:func:`kid`), Inception Score
(:func:`inception_score`) and improved precision/recall (:func:`precision_recall`). Paired image
metrics: :func:`psnr`, :func:`ssim`. Results are :class:`MetricResult` values carrying sample
counts, the measurement protocol and warnings.
"""

from pixelforge.metrics.errors import MetricError
from pixelforge.metrics.fid import fid_from_features, fid_from_stats, frechet_distance
from pixelforge.metrics.image_quality import psnr, rgb_to_y, ssim
from pixelforge.metrics.inception_score import inception_score
from pixelforge.metrics.kid import kid, kid_subset_indices, polynomial_mmd2
from pixelforge.metrics.kl import kl_categorical, kl_diag_gaussian_standard, kl_diag_gaussians
from pixelforge.metrics.precision_recall import knn_radii, precision_recall
from pixelforge.metrics.result import MetricResult
from pixelforge.metrics.stats import StreamingStats

__all__ = [
    "MetricError",
    "MetricResult",
    "StreamingStats",
    "fid_from_features",
    "fid_from_stats",
    "frechet_distance",
    "inception_score",
    "kid",
    "kid_subset_indices",
    "kl_categorical",
    "kl_diag_gaussian_standard",
    "kl_diag_gaussians",
    "knn_radii",
    "polynomial_mmd2",
    "precision_recall",
    "psnr",
    "rgb_to_y",
    "ssim",
]
