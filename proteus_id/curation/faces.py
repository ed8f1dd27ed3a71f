"""Stage 4a, faces: detection on sampled frames, and what curation measures on each detected face.

Detectors (config `faces.detector`):
- `dlib-hog` (default, offline): dlib's frontal HOG detector through `proteus_id.identity.dlib_faces`.
- `dlib-cnn`: dlib's MMOD CNN detector (weights ship in face-recognition-models): finds profile and small faces the
  HOG misses, but costs ~10x more on CPU.
- `yunet`: OpenCV's FaceDetectorYN with a local face_detection_yunet .onnx file (`faces.weights`), a stronger modern
  detector; never downloaded.
Whatever finds the boxes, the identity embedding is dlib's 128-d one (5-point landmarks fitted inside the box), so
"same person" means the same thing (distance < 0.6) for every detector.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from ..errors import require
from .config import FaceConfig

CROP_SIZE = 128  # face crops are resized to this before measuring sharpness, so the threshold is size-free


@dataclass
class SampledFrame:
    """The faces on one sampled frame, boxes in source pixels, largest first; measurements of the largest."""

    index: int
    boxes: list[list[float]]  # [x0, y0, x1, y1, score]
    sharpness: float | None = None
    brightness: float | None = None
    embedding: list[float] | None = None
    phash: str | None = None

    @property
    def main(self) -> list[float] | None:
        return self.boxes[0] if self.boxes else None


class FaceDetector:
    def __init__(self, config: FaceConfig):
        self.config = config
        self.cv2 = require("cv2", "curate", "face crops")
        self.faces = _dlib_faces(config.upsample, config.min_score)  # landmarks + embeddings for every backend
        self.dlib = self.faces.dlib
        if config.detector == "dlib-cnn":
            from ..identity.dlib_faces import MODEL_FILES, dlib_model_dir

            self._cnn = self.dlib.cnn_face_detection_model_v1(str(dlib_model_dir() / MODEL_FILES["cnn_detector"]))
        elif config.detector == "yunet":
            self._yunet = self.cv2.FaceDetectorYN.create(config.weights, "", (320, 320), config.min_score)

    def detect(self, image: np.ndarray) -> list[list[float]]:
        """RGB uint8 -> [[x0, y0, x1, y1, score], ...] in the image's pixels, largest first."""
        height, width = image.shape[:2]
        scale = min(1.0, self.config.detect_width / width)
        small = image if scale == 1.0 else self.cv2.resize(
            image, (round(width * scale), round(height * scale)), interpolation=self.cv2.INTER_AREA
        )
        boxes = [[x0 / scale, y0 / scale, x1 / scale, y1 / scale, s] for x0, y0, x1, y1, s in self._detect(small)]
        boxes = [_clip_box(b, width, height) for b in boxes]
        boxes = [b for b in boxes if b[2] > b[0] and b[3] > b[1]]
        return sorted(boxes, key=lambda b: (b[2] - b[0]) * (b[3] - b[1]), reverse=True)

    def _detect(self, image: np.ndarray) -> list[tuple[float, float, float, float, float]]:
        detector = self.config.detector
        if detector == "dlib-hog":
            return [(*f.box, f.score) for f in self.faces.detect(image, upsample=self.config.upsample)]
        if detector == "dlib-cnn":
            found = self._cnn(np.ascontiguousarray(image), self.config.upsample)
            return [
                (d.rect.left(), d.rect.top(), d.rect.right(), d.rect.bottom(), float(d.confidence))
                for d in found if d.confidence >= self.config.min_score
            ]
        self._yunet.setInputSize((image.shape[1], image.shape[0]))
        _, rows = self._yunet.detect(np.ascontiguousarray(image[..., ::-1]))  # YuNet wants BGR
        return [(r[0], r[1], r[0] + r[2], r[1] + r[3], float(r[-1])) for r in (rows if rows is not None else [])]

    def measure(self, image: np.ndarray, box: list[float], embed: bool) -> tuple[float, float, list[float] | None]:
        """Sharpness (variance of the Laplacian) and brightness (mean luma) of the face crop, and its embedding."""
        cv2 = self.cv2
        x0, y0, x1, y1 = (int(round(v)) for v in box[:4])
        crop = np.ascontiguousarray(image[y0:y1, x0:x1])
        grey = cv2.cvtColor(cv2.resize(crop, (CROP_SIZE, CROP_SIZE), interpolation=cv2.INTER_AREA), cv2.COLOR_RGB2GRAY)
        sharpness = float(cv2.Laplacian(grey, cv2.CV_64F).var())
        brightness = float(grey.mean())
        embedding = None
        if embed:
            rect = self.dlib.rectangle(x0, y0, x1, y1)
            shape = self.faces.predictor5(np.ascontiguousarray(image), rect)
            vector = self.faces.encoder.compute_face_descriptor(np.ascontiguousarray(image), shape, 0)
            embedding = [round(float(v), 5) for v in vector]
        return sharpness, brightness, embedding


def _clip_box(box: list[float], width: int, height: int) -> list[float]:
    x0, y0, x1, y1, score = box
    return [
        round(float(min(max(x0, 0), width)), 1), round(float(min(max(y0, 0), height)), 1),
        round(float(min(max(x1, 0), width)), 1), round(float(min(max(y1, 0), height)), 1), round(float(score), 4),
    ]


@lru_cache(maxsize=2)
def _dlib_faces(upsample: int, min_score: float):
    from ..identity.dlib_faces import DlibFaces

    return DlibFaces(upsample=upsample, min_score=min_score)


@lru_cache(maxsize=2)
def face_detector(config_items: tuple) -> FaceDetector:
    """One detector per worker process and setting (loading dlib's models takes ~0.3 s)."""
    return FaceDetector(FaceConfig(**dict(config_items)))
