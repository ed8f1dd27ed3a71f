"""Tiny random components for tests, benchmarks and examples (never weights anybody would use)."""

from .tiny import TINY_TRANSFORMER_CONFIG, make_tiny_model_folder, make_tiny_tokenizer, tiny_identity_features, tiny_transformer

__all__ = ["TINY_TRANSFORMER_CONFIG", "make_tiny_model_folder", "make_tiny_tokenizer", "tiny_identity_features", "tiny_transformer"]
