"""Shared fixtures: the golden reference files (read from ../shared/golden or $PROTEUS_ID_GOLDEN) and tiny models."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO = Path(__file__).resolve().parents[1]


def golden_dir() -> Path | None:
    """The golden reference vectors: $PROTEUS_ID_GOLDEN, else ../shared/golden beside the checkout."""
    for candidate in (os.environ.get("PROTEUS_ID_GOLDEN"), REPO.parent / "shared" / "golden"):
        if candidate and Path(candidate).is_dir():
            return Path(candidate)
    return None


@pytest.fixture(scope="session")
def golden() -> Path:
    path = golden_dir()
    if path is None:
        pytest.skip("golden reference files not found: set PROTEUS_ID_GOLDEN or place shared/golden beside the checkout")
    return path


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    """A complete tiny model folder in the released layout (random weights), shared by the session."""
    from proteus_id.testing import make_tiny_model_folder

    return make_tiny_model_folder(tmp_path_factory.mktemp("tiny_model"))
