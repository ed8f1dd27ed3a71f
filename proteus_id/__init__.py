"""Proteus-ID: identity-consistent, motion-coherent video customization.

Heavy parts (the pipeline, face backends, training, evaluation) are imported on first use, so `import proteus_id`
stays cheap and never downloads anything.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

__version__ = "0.1.0"

_LAZY = {
    "ProteusIDTransformer3DModel": "proteus_id.model.transformer",
    "CheckpointError": "proteus_id.model.checkpoint",
    "ProteusIDPipeline": "proteus_id.pipeline.pipeline",
    "ProteusIDPipelineOutput": "proteus_id.pipeline.pipeline",
    "FaceAnalyzer": "proteus_id.identity.analyzer",
    "IdentityFeatures": "proteus_id.identity.features",
}

__all__ = list(_LAZY)

if TYPE_CHECKING:  # pragma: no cover
    from .model.checkpoint import CheckpointError
    from .model.transformer import ProteusIDTransformer3DModel
    from .identity.analyzer import FaceAnalyzer
    from .identity.features import IdentityFeatures
    from .pipeline.pipeline import ProteusIDPipeline, ProteusIDPipelineOutput


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'proteus_id' has no attribute {name!r}")
