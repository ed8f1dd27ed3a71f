"""The built-in metrics, registered by name (see base.py for the interface and docs/evaluation.md for each one)."""

from __future__ import annotations

from .base import register_metric_factory


def _lazy(module: str, factory: str):
    """Import a metric module only when its metric is built: `proteus-id evaluate --help` stays cheap."""

    def build(config):
        import importlib

        return getattr(importlib.import_module(f"proteus_id.evaluation.metrics.{module}"), factory)(config)

    return build


BUILTIN = [
    ("face_detection", "identity", "identity", "face_detection_factory"),
    ("facesim_dlib", "identity", "identity", "facesim_dlib_factory"),
    ("facesim_arc", "identity", "identity", "facesim_arc_factory"),
    ("facesim_cur", "identity", "identity", "facesim_cur_factory"),
    ("clipscore", "text", "clip_score", "clipscore_factory"),
    ("fid", "distribution", "fid", "fid_factory"),
    ("motion", "motion", "motion", "motion_factory"),
]

for _name, _group, _module, _factory in BUILTIN:
    register_metric_factory(_name, _lazy(_module, _factory), group=_group, builtin=True)
