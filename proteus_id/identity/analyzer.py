"""The face front end in one class: a photo in, everything the model needs out.

    analyzer = FaceAnalyzer.for_model("models/Proteus-ID")      # the backend the model was trained with
    features = analyzer.analyze("me.jpg")                       # IdentityFeatures, checked against the model
    pipe(image=features.face_crop, id_cond=features.id_cond, id_vit_hidden=features.id_vit_hidden, ...)

Photos may be paths, PIL images or numpy arrays (EXIF rotation applied; RGBA, greyscale, palette and 16-bit
converted; huge photos downscaled). Several faces: the largest, with a warning. No face: `NoFaceError` naming the
photo. A backend that cannot feed the model is refused before it runs, with what the model needs.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from .backends import FaceBackend, get_backend
from .features import IdentityFeatures, IdentitySpec
from .image_io import load_image


def default_device() -> str:
    """cuda when torch sees a GPU, else cpu."""
    return "cuda" if torch.cuda.is_available() else "cpu"


class FaceAnalyzer:
    """One photo -> `IdentityFeatures`, through a face backend, checked against a model's `IdentitySpec`."""

    def __init__(self, backend: FaceBackend | str = "dlib", spec: IdentitySpec | None = None,
                 face_encoder_dir: str | os.PathLike | None = None, device: str | None = None):
        self.device = device or default_device()
        if isinstance(backend, str):
            backend = get_backend(backend, face_encoder_dir, self.device)
        self.backend = backend
        self.spec = spec
        produced = getattr(backend, "produces", None)
        if spec is not None and produced is not None:
            spec.check_backend(produced, backend.kind)

    @classmethod
    def for_model(cls, model_dir: str | os.PathLike, backend: str | None = None, device: str | None = None) -> "FaceAnalyzer":
        """The analyzer for a model folder: its own backend kind (from its identity spec) unless `backend` is given,
        with face models from `<model>/face_encoder/`."""
        spec = IdentitySpec.for_model(model_dir)
        face_dir = Path(model_dir) / "face_encoder"
        return cls(backend or spec.kind, spec, face_dir if face_dir.is_dir() else None, device)

    @property
    def kind(self) -> str:
        return self.backend.kind

    def analyze(self, image, name: str | None = None) -> IdentityFeatures:
        """Photo (path, PIL or numpy) -> features; raises ImageReadError, NoFaceError or a spec mismatch UserError."""
        if isinstance(image, (str, os.PathLike)):
            name = name or str(image)
        rgb = load_image(image, name=name)  # one place decides what a readable photo is
        features = self.backend.extract(rgb, name=name)
        features.id_cond = _as_batch_of_one(features.id_cond)
        if self.spec is not None:
            self.spec.check(features, source=f"face features of {name or 'the photo'}")
        return features


def _as_batch_of_one(id_cond: torch.Tensor) -> torch.Tensor:
    """id_cond as (1, 1, C), the pipeline's (B_id, 1, C)."""
    return id_cond.reshape(1, 1, id_cond.shape[-1])
