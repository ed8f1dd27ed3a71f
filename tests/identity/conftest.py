"""Photos for the face tests: skimage's astronaut (public domain, one face) and coffee (no face)."""

from __future__ import annotations

import numpy as np
import pytest


@pytest.fixture(scope="session")
def astronaut() -> np.ndarray:
    data = pytest.importorskip("skimage.data")
    return data.astronaut()


@pytest.fixture(scope="session")
def coffee() -> np.ndarray:
    data = pytest.importorskip("skimage.data")
    return data.coffee()


@pytest.fixture(scope="session")
def dlib_backend():
    pytest.importorskip("dlib")
    from proteus_id.identity.dlib_backend import DlibIdentityBackend

    return DlibIdentityBackend()


@pytest.fixture(scope="session")
def astronaut_features(dlib_backend, astronaut):
    return dlib_backend.extract(astronaut, name="astronaut")
