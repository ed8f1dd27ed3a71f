"""Test model folders made of links to the tiny model's components."""

from __future__ import annotations

import json
import os
from pathlib import Path

COMPONENTS = ("tokenizer", "text_encoder", "vae", "scheduler", "transformer")


def model_with_spec(root: Path, base: Path, spec: dict | None, without: tuple[str, ...] = ()) -> Path:
    """A model folder made of links to `base`'s components, optionally with face_encoder/identity_spec.json."""
    root.mkdir(parents=True, exist_ok=True)
    for name in COMPONENTS:
        if name not in without:
            os.symlink(base / name, root / name)
    if (base / "model_index.json").is_file():
        (root / "model_index.json").write_text((base / "model_index.json").read_text())
    if spec is not None:
        (root / "face_encoder").mkdir()
        (root / "face_encoder" / "identity_spec.json").write_text(json.dumps(spec))
    return root
