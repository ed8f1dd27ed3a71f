"""The Proteus-ID transformer and its parts (torch + diffusers only)."""

from .checkpoint import CheckpointError, load_model_strict, parameter_counts
from .transformer import ProteusIDTransformer3DModel

__all__ = ["ProteusIDTransformer3DModel", "CheckpointError", "load_model_strict", "parameter_counts"]
