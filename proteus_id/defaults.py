"""Where the shipped default model lives (trained by us on the procedural identity world; see toyworld/)."""

from __future__ import annotations

from pathlib import Path

DEFAULT_MODEL_DIR = Path(__file__).resolve().parent / "assets" / "proteus-id-toy"


def default_model_dir() -> Path | None:
    """The shipped model folder, or None in a build that does not include it."""
    return DEFAULT_MODEL_DIR if (DEFAULT_MODEL_DIR / "transformer" / "config.json").is_file() else None
