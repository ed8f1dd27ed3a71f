"""Evaluation: metrics over generated videos, `proteus-id evaluate` (manifest -> tables + report) and
`proteus-id bench` (model + suite -> videos -> evaluation). See docs/evaluation.md."""

from .config import EvalConfig
from .manifest import EvalRow, read_manifest
from .metrics import Metric, MetricUnavailable, NotApplicable, register_metric, register_metric_factory
from .video import VideoSample, load_video

__all__ = [
    "EvalConfig", "EvalRow", "Metric", "MetricUnavailable", "NotApplicable", "VideoSample", "load_video",
    "read_manifest", "register_metric", "register_metric_factory", "run_evaluation",
]


def run_evaluation(*args, **kwargs):
    """See proteus_id.evaluation.runner.run_evaluation (imported lazily: it pulls in accelerate)."""
    from .runner import run_evaluation as _run

    return _run(*args, **kwargs)
