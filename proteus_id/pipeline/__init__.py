"""Generation: the DiffusionPipeline, model-folder discovery, prompt encoding and video files.

The pipeline class is imported on first use, so `proteus_id.pipeline.video` (PyAV only) does not pull in diffusers.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

_LAZY = {"OffloadConflictError": ".pipeline", "ProteusIDPipeline": ".pipeline", "ProteusIDPipelineOutput": ".pipeline"}

__all__ = ["ProteusIDPipeline", "ProteusIDPipelineOutput", "OffloadConflictError"]

if TYPE_CHECKING:  # pragma: no cover
    from .pipeline import OffloadConflictError, ProteusIDPipeline, ProteusIDPipelineOutput


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
