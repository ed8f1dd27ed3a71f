"""Atomic writes for curation outputs: the package-wide helpers (see proteus_id.atomic)."""

from ..atomic import write_bytes_atomic, write_text_atomic

__all__ = ["write_bytes_atomic", "write_text_atomic"]
