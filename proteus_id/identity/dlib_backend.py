"""The offline face backend: dlib's detector, 68-point landmarks, the FFHQ-layout aligned crop and dlib's 128-d
embedding. Works on any machine with `pip install 'proteus-id[face]'` (no downloads).

It gives `id_cond` = the 128-d dlib embedding (1, 1, 128) and no ViT states, so it cannot feed the released model
(1280-d id_cond + 5 x 1024-d EVA states); `IdentitySpec.check_backend` says so before anything runs. Evaluation and
curation use it for detection and identity distance; the generate command uses it only for models trained on it.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ..errors import MissingDependencyError
from .alignment import align_face, keypoints_from_68
from .backends import register_backend
from .detection import choose_largest
from .features import IdentityFeatures, IdentitySpec
from .image_io import load_image

WORKING_SIDE = 1024  # photos are analysed at most this large (as the release does), keeping dlib's HOG fast


class DlibIdentityBackend:
    kind = "dlib"
    produces = IdentitySpec(kind="dlib", id_cond_dim=128, vit_dim=0, num_vit_states=0)

    def __init__(self, faces=None, crop_size: int = 512):
        if faces is None:
            _check_installed()
        self._faces = faces
        self.crop_size = crop_size

    @property
    def faces(self):
        if self._faces is None:
            from .dlib_faces import shared_dlib_faces

            self._faces = shared_dlib_faces()
        return self._faces

    def extract(self, image, name: str | None = None) -> IdentityFeatures:
        rgb = load_image(image, max_side=WORKING_SIDE, name=name)
        face = choose_largest(self.faces.detect(rgb), lambda f: f.area, name)
        embedding = self.faces.embed(rgb, face)
        keypoints = keypoints_from_68(self.faces.landmarks68(rgb, face))
        aligned = Image.fromarray(align_face(rgb, keypoints, self.crop_size))
        return IdentityFeatures(
            id_cond=torch.from_numpy(embedding).view(1, 1, -1),
            id_vit_hidden=[],
            face_crop=aligned,
            aligned_crop=aligned,
            parsed_crop=None,  # dlib has no face parser
            keypoints=keypoints,
            face_box=face.box,
            kind=self.kind,
        )


def _check_installed() -> None:
    """Cheap availability check (no model loading), so `proteus-id info` can ask without waiting."""
    if importlib.util.find_spec("dlib") is None:
        raise MissingDependencyError("the dlib face backend needs dlib: pip install 'proteus-id[face]'")
    from .dlib_faces import MODEL_FILES, dlib_model_dir

    models = dlib_model_dir()
    missing = [f for key, f in MODEL_FILES.items() if key != "cnn_detector" and not (Path(models) / f).is_file()]
    if missing:
        raise MissingDependencyError(f"dlib's model files {', '.join(missing)} are missing from {models}: "
                                     "pip install --force-reinstall face-recognition-models")


def _factory(face_encoder_dir, device: str) -> DlibIdentityBackend:
    return DlibIdentityBackend()  # dlib runs on the CPU; its models come from the face-recognition-models wheel


register_backend("dlib", _factory)


def dlib_distance(a: np.ndarray | torch.Tensor, b: np.ndarray | torch.Tensor) -> float:
    """Euclidean distance between two dlib embeddings (dlib's same-person rule: < 0.6)."""
    return float(np.linalg.norm(np.asarray(a, np.float32).ravel() - np.asarray(b, np.float32).ravel()))
