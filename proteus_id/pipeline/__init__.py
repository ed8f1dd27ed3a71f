"""Generation: the DiffusionPipeline, model-folder discovery, prompt encoding and video files."""

from .pipeline import OffloadConflictError, ProteusIDPipeline, ProteusIDPipelineOutput

__all__ = ["ProteusIDPipeline", "ProteusIDPipelineOutput", "OffloadConflictError"]
