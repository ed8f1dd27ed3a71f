"""Model folders and face inputs for the generate/info tests (all tiny, built from the session's tiny model)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image


@pytest.fixture(scope="session")
def photos(tmp_path_factory) -> dict[str, Path]:
    data = pytest.importorskip("skimage.data")
    folder = tmp_path_factory.mktemp("photos")
    paths = {"astronaut": folder / "astronaut.jpg", "coffee": folder / "coffee.png"}
    Image.fromarray(data.astronaut()).save(paths["astronaut"], quality=95)
    Image.fromarray(data.coffee()).save(paths["coffee"])
    return paths


@pytest.fixture(scope="session")
def features_file(tmp_path_factory) -> Path:
    """Tiny-model-sized face features with a face crop, as `IdentityFeatures.save` writes them."""
    from proteus_id.identity.features import IdentityFeatures
    from proteus_id.testing import tiny_identity_features

    id_cond, vit = tiny_identity_features(seed=3)
    crop = Image.fromarray((np.random.default_rng(0).random((64, 64, 3)) * 255).astype(np.uint8))
    path = tmp_path_factory.mktemp("features") / "face.safetensors"
    IdentityFeatures(id_cond, vit, face_crop=crop, keypoints=np.zeros((5, 2), np.float32), kind="tiny").save(path)
    return path
