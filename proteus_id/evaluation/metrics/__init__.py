"""Metrics: identity (FaceSim-dlib/Arc/Cur, detection rate), text (CLIPScore), distribution (face FID), motion."""

from .base import (
    FunctionMetric,
    Metric,
    MetricUnavailable,
    MetricWeightsError,
    NotApplicable,
    positive_cosine,
    register_metric,
    register_metric_factory,
    registered_metrics,
    unregister_metric,
)

__all__ = [
    "FunctionMetric", "Metric", "MetricUnavailable", "MetricWeightsError", "NotApplicable", "positive_cosine",
    "register_metric", "register_metric_factory", "registered_metrics", "unregister_metric",
]
