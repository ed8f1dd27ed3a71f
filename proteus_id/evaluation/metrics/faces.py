"""Faces for the identity metrics: the largest face of each sampled frame and of the reference photo, found once
per video and shared by FaceSim-dlib/Arc/Cur, the detection rate, the face FID and the contact sheets.

Detector: dlib's HOG frontal detector (offline, CPU). Its detection window is 80 x 80 px, so at upsample 0 faces
smaller than about 80 px are missed, at upsample 1 about 40 px. Frames use upsample 1 when their short side is
under 400 px, else 0 (480 x 720 videos: 0, ~55 ms per frame here); reference photos try 0 and then 1.
The ConsisID scripts detect with insightface's SCRFD at 320 px instead, which also finds profile faces; dlib's
frontal detector counts strong profiles as "no face", so our detection rate is conservative.

Alignment for the ArcFace/CurricularFace networks: 5 keypoints in insightface's order (image-left eye centre,
image-right eye centre, nose tip, left and right mouth corner) taken from dlib's 68 landmarks, mapped by a
least-squares similarity transform onto insightface's 112 x 112 ArcFace template (scaled for other sizes).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..video import VideoSample

# insightface's ArcFace destination keypoints for a 112 x 112 crop (arcface_dst in insightface.utils.face_align)
ARCFACE_TEMPLATE_112 = np.array(
    [[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366], [41.5493, 92.3655], [70.7299, 92.2041]],
    dtype=np.float64,
)
FID_CROP_SIZE = 299  # InceptionV3's input size; the dlib chip is taken at this size directly


@dataclass
class FoundFace:
    frame_index: int  # index into the video's frames (or -1 for the reference photo)
    face: object  # DetectedFace from proteus_id.identity.dlib_faces
    products: dict = field(default_factory=dict)  # keypoints, crops: computed once, used by several metrics

    @property
    def box(self) -> tuple[int, int, int, int]:
        return self.face.box


def similarity_transform(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares similarity (rotation, uniform scale, translation) taking src points onto dst (Umeyama 1991);
    returns the 2 x 3 matrix for cv2.warpAffine."""
    src, dst = np.asarray(src, np.float64), np.asarray(dst, np.float64)
    mu_s, mu_d = src.mean(0), dst.mean(0)
    s, d = src - mu_s, dst - mu_d
    cov = d.T @ s / len(src)
    u, sig, vt = np.linalg.svd(cov)
    sign = np.eye(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        sign[1, 1] = -1
    rot = u @ sign @ vt
    scale = np.trace(np.diag(sig) @ sign) / s.var(0).sum()
    matrix = np.zeros((2, 3))
    matrix[:, :2] = scale * rot
    matrix[:, 2] = mu_d - scale * rot @ mu_s
    return matrix


class FaceAnalysis:
    """dlib detection, 68 landmarks, embeddings and aligned crops; one per process (dlib objects are not shareable)."""

    def __init__(self, frame_upsample: int | None = None):
        from ...identity.dlib_faces import MODEL_FILES, dlib_model_dir, shared_dlib_faces

        self.dlib_faces = shared_dlib_faces()
        self.frame_upsample = frame_upsample
        self._predictor68 = None
        self._model_dir, self._file68 = dlib_model_dir(), MODEL_FILES["landmarks68"]
        self._references: dict[str, tuple[np.ndarray, FoundFace | None]] = {}

    # ---------------------------------------------------------------- detection

    def upsample_for(self, image: np.ndarray) -> int:
        if self.frame_upsample is not None:
            return self.frame_upsample
        return 1 if min(image.shape[:2]) < 400 else 0

    def largest_face(self, image: np.ndarray, upsample: int) -> object | None:
        faces = self.dlib_faces.detect(image, upsample=upsample)
        return faces[0] if faces else None  # detect() sorts largest first

    def video_faces(self, video: VideoSample) -> list[FoundFace | None]:
        """The largest face of each sampled frame (None where there is none); computed once per video."""

        def run():
            out = []
            for idx in video.sampled_indices:
                frame = video.frames[idx]
                face = self.largest_face(frame, self.upsample_for(frame))
                out.append(FoundFace(int(idx), face) if face is not None else None)
            return out

        return video.cached("faces", run)

    def reference(self, path: Path) -> tuple[np.ndarray, FoundFace | None]:
        """The reference photo (RGB) and its largest face, cached per path for the process."""
        key = str(path)
        if key not in self._references:
            from ...identity.image_io import load_image

            image = load_image(path)
            face = self.largest_face(image, 0) or self.largest_face(image, 1)
            self._references[key] = (image, FoundFace(-1, face) if face is not None else None)
            if len(self._references) > 256:  # a suite has ~150 identities; keep memory bounded anyway
                self._references.pop(next(iter(self._references)))
        return self._references[key]

    # ---------------------------------------------------------------- per-face products

    def dlib_embedding(self, image: np.ndarray, found: FoundFace) -> np.ndarray:
        return self.dlib_faces.embed(image, found.face)

    def keypoints5(self, image: np.ndarray, found: FoundFace) -> np.ndarray:
        """insightface-order 5 keypoints from dlib's 68-point landmarks of the detected box."""
        if "keypoints5" in found.products:
            return found.products["keypoints5"]
        import dlib

        if self._predictor68 is None:
            self._predictor68 = dlib.shape_predictor(str(self._model_dir / self._file68))
        left, top, right, bottom = found.face.box
        shape = self._predictor68(np.ascontiguousarray(image), dlib.rectangle(left, top, right, bottom))
        pts = np.array([[p.x, p.y] for p in shape.parts()], dtype=np.float64)
        found.products["keypoints5"] = np.stack([pts[36:42].mean(0), pts[42:48].mean(0), pts[30], pts[48], pts[54]])
        return found.products["keypoints5"]

    def arcface_crop(self, image: np.ndarray, found: FoundFace, size: int = 112) -> np.ndarray:
        """The face warped onto the ArcFace template at `size` (112 for ArcFace, 224 for the CurricularFace protocol)."""
        import cv2

        matrix = similarity_transform(self.keypoints5(image, found), ARCFACE_TEMPLATE_112 * (size / 112.0))
        return cv2.warpAffine(np.ascontiguousarray(image), matrix, (size, size), borderValue=0.0)

    def fid_crop(self, image: np.ndarray, found: FoundFace) -> np.ndarray:
        """dlib's aligned chip at 299 px (eyes level, 25% padding): the face crop the face FID compares."""
        return self.dlib_faces.chip(image, found.face, size=FID_CROP_SIZE, padding=0.25)


_SHARED: dict[int | None, FaceAnalysis] = {}


def shared_face_analysis(frame_upsample: int | None = None) -> FaceAnalysis:
    if frame_upsample not in _SHARED:
        _SHARED[frame_upsample] = FaceAnalysis(frame_upsample)
    return _SHARED[frame_upsample]
