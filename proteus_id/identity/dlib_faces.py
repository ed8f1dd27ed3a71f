"""dlib's face stack, offline: HOG detector, 5/68-point landmarks, aligned chips and the 128-d embedding.

Model files come from the `face-recognition-models` wheel, located without importing it (its __init__ imports
`pkg_resources`, gone from setuptools >= 81). Used by the offline identity backend, the FaceSim-dlib metric and
curation's face filter.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from ..errors import MissingDependencyError, require

MODEL_FILES = {
    "landmarks5": "shape_predictor_5_face_landmarks.dat",
    "landmarks68": "shape_predictor_68_face_landmarks.dat",
    "embedding": "dlib_face_recognition_resnet_model_v1.dat",
    "cnn_detector": "mmod_human_face_detector.dat",
}


def dlib_model_dir() -> Path:
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise MissingDependencyError("dlib's face models are not installed: pip install 'proteus-id[face]'")
    return Path(list(spec.submodule_search_locations)[0]) / "models"


@dataclass
class DetectedFace:
    box: tuple[int, int, int, int]  # left, top, right, bottom (pixels)
    score: float
    landmarks5: np.ndarray  # (5, 2): dlib order = right eye outer/inner, left eye outer/inner, nose
    _shape: object = None  # dlib full_object_detection, for chips/embeddings

    @property
    def area(self) -> int:
        left, top, right, bottom = self.box
        return max(0, right - left) * max(0, bottom - top)


class DlibFaces:
    """Detection, landmarks and embeddings with dlib. Thread-unsafe like dlib itself: one per worker."""

    def __init__(self, upsample: int = 1, min_score: float = 0.3):
        self.dlib = require("dlib", "face", "the offline dlib face backend")
        models = dlib_model_dir()
        # dlib's HOG detector reports weak false positives near score 0 when upsampling (0.12 on the astronaut's
        # suit here); real faces score well above 0.5.
        self.upsample, self.min_score = upsample, min_score
        self.detector = self.dlib.get_frontal_face_detector()
        self.predictor5 = self.dlib.shape_predictor(str(models / MODEL_FILES["landmarks5"]))
        self._encoder = None
        self._models = models

    @property
    def encoder(self):
        if self._encoder is None:
            self._encoder = self.dlib.face_recognition_model_v1(str(self._models / MODEL_FILES["embedding"]))
        return self._encoder

    @property
    def predictor68(self):
        """The 68-point landmark model (100 MB, ~2 s to load: only when asked for)."""
        if getattr(self, "_predictor68", None) is None:
            self._predictor68 = self.dlib.shape_predictor(str(self._models / MODEL_FILES["landmarks68"]))
        return self._predictor68

    def landmarks68(self, image: np.ndarray, face: DetectedFace) -> np.ndarray:
        """(68, 2) landmarks (iBUG 300-W order) inside the face's box."""
        left, top, right, bottom = face.box
        shape = self.predictor68(np.ascontiguousarray(image), self.dlib.rectangle(left, top, right, bottom))
        return np.array([[p.x, p.y] for p in shape.parts()], dtype=np.float32)

    def detect(self, image: np.ndarray, upsample: int | None = None) -> list[DetectedFace]:
        """All faces of an RGB uint8 image, largest first."""
        image = np.ascontiguousarray(image)
        rects, scores, _ = self.detector.run(image, self.upsample if upsample is None else upsample, 0.0)
        faces = []
        for rect, score in zip(rects, scores):
            if score < self.min_score:
                continue
            shape = self.predictor5(image, rect)
            points = np.array([[p.x, p.y] for p in shape.parts()], dtype=np.float32)
            faces.append(DetectedFace((rect.left(), rect.top(), rect.right(), rect.bottom()), float(score), points, shape))
        return sorted(faces, key=lambda f: f.area, reverse=True)

    def chip(self, image: np.ndarray, face: DetectedFace, size: int = 150, padding: float = 0.25) -> np.ndarray:
        """The aligned face crop dlib's embedding network sees (eyes level, fixed scale)."""
        return np.asarray(self.dlib.get_face_chip(np.ascontiguousarray(image), face._shape, size=size, padding=padding))

    def embed(self, image: np.ndarray, face: DetectedFace, jitter: int = 0) -> np.ndarray:
        """128-d embedding (not unit-norm: about 1.4 here; dlib's same-person rule is Euclidean distance < 0.6)."""
        vec = self.encoder.compute_face_descriptor(np.ascontiguousarray(image), face._shape, jitter)
        return np.asarray(vec, dtype=np.float32)


@lru_cache(maxsize=1)
def shared_dlib_faces() -> DlibFaces:
    """One DlibFaces per process (loading the models takes ~0.3 s)."""
    return DlibFaces()
