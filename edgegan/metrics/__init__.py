"""Sample-quality metrics: LSH and exact kNN precision/recall, density/coverage, Frechet
distance / KID / Inception Score, paired fidelity (PSNR, SSIM) and feature extractors. See
docs/metrics.md for the definitions.

Importing this package needs only numpy; torch / onnxruntime load inside the feature
extractors that use them.
"""
from .base import METRICS, Metric, compute_metric
from .compare import SampleSet, compare_samples, load_samples, to_json
from .features import EXTRACTORS, extract_features, get_extractor
from .knn import DensityCoverageConfig, KNNConfig, exact_scores, knn_radii, prdc
from .lsh import LSHConfig, auto_parameters, lsh_scores
from .distribution import (FrechetConfig, KIDConfig, frechet_distance, inception_score,
                           kernel_inception_distance)
from .paired import PairedConfig, paired_metrics, psnr, ssim

__all__ = [
    "EXTRACTORS", "METRICS", "DensityCoverageConfig", "FrechetConfig", "KIDConfig", "frechet_distance",
    "inception_score", "kernel_inception_distance", "KNNConfig", "LSHConfig", "Metric", "PairedConfig",
    "SampleSet", "auto_parameters", "compare_samples", "compute_metric", "exact_scores", "extract_features",
    "get_extractor", "knn_radii", "load_samples", "lsh_scores", "paired_metrics", "prdc", "psnr", "ssim",
    "to_json",
]
