"""Identity metrics: does the video show the person of the reference photo?

Protocol (ConsisID's, which the paper's FaceSim names follow): the video's sampled frames (16 by default), the
largest face of each, frames without a face skipped; per frame s = max(0, cos(e_ref, e_frame)); the video's score is
the mean of s over its face frames. A video with no face at all has no FaceSim (empty cell, counted in the summary's
n), where the ConsisID scripts would write 0; its face_detection_rate is 0.

Columns
- face_detection_rate      share of sampled frames with a face (dlib HOG detector)
- facesim_dlib             FaceSim with dlib's 128-d ResNet embedding (offline, no extra weights)
- facesim_dlib_std         identity variation: standard deviation of the per-frame similarity over face frames
- face_distance_dlib       mean Euclidean distance of the 128-d embeddings (dlib's own comparison)
- face_match_rate_dlib     share of face frames within dlib's same-person distance 0.6
- facesim_arc (+ _std)     FaceSim with insightface's ArcFace ONNX (weights: `arcface`)
- facesim_cur (+ _std)     FaceSim with CurricularFace IR-101 (weights: `curricularface`)

How FaceSim-dlib relates to dlib's 0.6 rule: dlib's embeddings are not unit-length (norms 1.36-1.59 on the 9 faces
measured here), so for two faces of norm r, distance d and cosine c satisfy d^2 = 2 r^2 (1 - c): d = 0.6 is
c = 0.916 at the mean norm 1.466. Measured offline (benchmarks/facesim_dlib_calibration.py): 36 pairs of different
people have max(0, cos) 0.803-0.906 (mean 0.856, distances 0.63-0.93); 24 re-renderings of the same photo
(scale, flip, rotation, JPEG, brightness) 0.984-0.999 (distances 0.06-0.26). So FaceSim-dlib lives in a narrow band
near 1 where ~0.92 separates people: it is not on the scale of FaceSim-Arc/Cur
and must not be compared with their published numbers. face_match_rate_dlib states dlib's own rule as a rate.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..manifest import EvalRow
from ..video import VideoSample
from .base import Metric, MetricUnavailable, NotApplicable, file_identity, positive_cosine
from .faces import FaceAnalysis, FoundFace, shared_face_analysis

DLIB_SAME_PERSON_DISTANCE = 0.6


class FaceDetectionRate(Metric):
    name = "face_detection"
    group = "identity"
    columns = ("face_detection_rate",)
    higher_is_better = {"face_detection_rate": True}
    description = "share of the sampled frames in which dlib's HOG detector finds a face"

    def __init__(self, faces: FaceAnalysis):
        self.faces = faces

    def compute(self, video, row):
        found = self.faces.video_faces(video)
        return {"face_detection_rate": sum(f is not None for f in found) / max(len(found), 1)}

    def fingerprint(self) -> str:
        return f"{self.name}:up={self.faces.frame_upsample}"


class FaceSimMetric(Metric):
    """Shared protocol; subclasses embed the reference face and the frame faces."""

    group = "identity"
    column = "facesim"

    def __init__(self, faces: FaceAnalysis):
        self.faces = faces
        self._reference_cache: dict[str, np.ndarray] = {}
        self.columns = (self.column, f"{self.column}_std")
        self.higher_is_better = {self.column: True, f"{self.column}_std": False}

    def embed(self, faces: list[tuple[np.ndarray, FoundFace]]) -> np.ndarray:
        """(image, face) pairs -> (N, D) embeddings, in one batch where the network allows."""
        raise NotImplementedError

    def reference_vector(self, row: EvalRow) -> np.ndarray:
        """The reference face's embedding, cached per photo (a suite reuses each photo for several prompts)."""
        cache = self._reference_cache
        key = str(row.image)
        if key not in cache:
            ref_image, ref_face = self._reference(row)
            cache[key] = self.embed([(ref_image, ref_face)])[0]
            if len(cache) > 256:
                cache.pop(next(iter(cache)))
        return cache[key]

    def _reference(self, row: EvalRow) -> tuple[np.ndarray, FoundFace]:
        if row.image is None:
            raise NotApplicable("no reference image in the manifest row")
        image, face = self.faces.reference(row.image)
        if face is None:
            raise NotApplicable(f"no face found in the reference image {Path(row.image).name}")
        return image, face

    def vectors(self, video: VideoSample, row: EvalRow) -> tuple[np.ndarray, np.ndarray]:
        """(reference embedding, embeddings of the face frames), computed once per video."""

        def run():
            ref = self.reference_vector(row)
            found = [f for f in self.faces.video_faces(video) if f is not None]
            if not found:
                return ref, np.zeros((0, ref.shape[-1]), np.float32)
            return ref, self.embed([(video.frames[f.frame_index], f) for f in found])

        return video.cached(f"{self.name}:vectors", run)

    def per_frame(self, video: VideoSample, row: EvalRow) -> np.ndarray:
        """max(0, cos) per face frame (faceless frames skipped)."""
        ref, vectors = self.vectors(video, row)
        return positive_cosine(ref, vectors) if len(vectors) else np.zeros(0)

    def compute(self, video, row):
        sims = self.per_frame(video, row)
        if sims.size == 0:
            raise NotApplicable("no face in any sampled frame")
        return {self.column: float(sims.mean()), f"{self.column}_std": float(sims.std())}

    def collect(self, video, row):
        try:
            return {"per_frame": self.per_frame(video, row)}
        except NotApplicable:
            return None


class FaceSimDlib(FaceSimMetric):
    name = "facesim_dlib"
    column = "facesim_dlib"
    description = "mean max(0, cosine) of dlib's 128-d face embeddings, reference vs each face frame"

    def __init__(self, faces: FaceAnalysis):
        super().__init__(faces)
        self.columns = self.columns + ("face_distance_dlib", "face_match_rate_dlib")
        self.higher_is_better.update({"face_distance_dlib": False, "face_match_rate_dlib": True})

    def embed(self, faces):
        return np.stack([self.faces.dlib_embedding(image, f) for image, f in faces])

    def compute(self, video, row):
        out = super().compute(video, row)
        ref, vectors = self.vectors(video, row)
        dist = np.linalg.norm(vectors - ref[None], axis=1)
        out["face_distance_dlib"] = float(dist.mean())
        out["face_match_rate_dlib"] = float((dist < DLIB_SAME_PERSON_DISTANCE).mean())
        return out

    def fingerprint(self) -> str:
        return f"{self.name}:up={self.faces.frame_upsample}"


class FaceSimArc(FaceSimMetric):
    name = "facesim_arc"
    column = "facesim_arc"
    description = "mean max(0, cosine) of insightface ArcFace embeddings on 112 px aligned faces"

    def __init__(self, faces: FaceAnalysis, weights: Path, device: str):
        from .arcface import ArcFaceONNX

        super().__init__(faces)
        self.model = ArcFaceONNX(weights, device)
        self.weights = Path(weights)

    def embed(self, faces):
        return self.model.embed([self.faces.arcface_crop(image, f, 112) for image, f in faces])

    def fingerprint(self) -> str:
        return f"{self.name}:{file_identity(self.weights)}:up={self.faces.frame_upsample}"

    def describe(self):
        return {"description": self.description, "weights": str(self.weights)}


class FaceSimCur(FaceSimMetric):
    name = "facesim_cur"
    column = "facesim_cur"
    description = "mean max(0, cosine) of CurricularFace IR-101 embeddings (224 px aligned face resized to 112)"

    def __init__(self, faces: FaceAnalysis, weights: Path, device: str, stages=None):
        from .curricularface import STAGES, load_curricularface

        super().__init__(faces)
        self.model = load_curricularface(weights, device, stages or STAGES)
        self.weights, self.device = Path(weights), device

    def embed(self, faces):
        import torch

        from .curricularface import curricularface_input

        crops = [self.faces.arcface_crop(image, f, 224) for image, f in faces]
        with torch.no_grad():
            return self.model(curricularface_input(crops).to(self.device)).float().cpu().numpy()

    def fingerprint(self) -> str:
        return f"{self.name}:{file_identity(self.weights)}:up={self.faces.frame_upsample}"

    def describe(self):
        return {"description": self.description, "weights": str(self.weights)}


def _faces(config) -> FaceAnalysis:
    from ...errors import MissingDependencyError

    try:
        return shared_face_analysis(config.face_upsample)
    except MissingDependencyError as err:
        raise MetricUnavailable(str(err)) from err


def face_detection_factory(config):
    return FaceDetectionRate(_faces(config))


def facesim_dlib_factory(config):
    return FaceSimDlib(_faces(config))


def facesim_arc_factory(config):
    if config.arcface is None:
        raise MetricUnavailable("no ArcFace ONNX weights given (--arcface PATH to glintr100.onnx, or a weights folder)")
    return FaceSimArc(_faces(config), config.arcface, config.device)


def facesim_cur_factory(config):
    if config.curricularface is None:
        raise MetricUnavailable(
            "no CurricularFace weights given (--curricularface PATH to glint360k_curricular_face_r101_backbone.bin)"
        )
    return FaceSimCur(_faces(config), config.curricularface, config.device)
