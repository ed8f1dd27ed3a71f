"""Face alignment to the 512 x 512 FFHQ layout that facexlib's FaceRestoreHelper uses (the released crop).

Keypoints follow insightface's order: left eye, right eye (of the image), nose tip, left and right mouth corner.
The template and the similarity fit (OpenCV's estimateAffinePartial2D with LMEDS, grey border 135/133/132) are those
of facexlib at face_size=512, crop_ratio=(1, 1), so every backend hands the model a crop with the same geometry.
"""

from __future__ import annotations

import numpy as np

FFHQ_TEMPLATE_512 = np.array(
    [[192.98138, 239.94708], [318.90277, 240.1936], [256.63416, 314.01935], [201.26117, 371.41043], [313.08905, 371.15118]],
    dtype=np.float32,
)
BORDER_RGB = (132, 133, 135)  # facexlib's border is (135, 133, 132) in BGR


def alignment_matrix(keypoints: np.ndarray, size: int = 512) -> np.ndarray:
    """2 x 3 similarity transform taking the 5 keypoints onto the template scaled to `size`."""
    import cv2

    template = FFHQ_TEMPLATE_512 * (size / 512.0)
    matrix, _ = cv2.estimateAffinePartial2D(np.asarray(keypoints, np.float32).reshape(5, 2), template, method=cv2.LMEDS)
    if matrix is None:  # degenerate keypoints (all on a line); fall back to least squares
        matrix, _ = cv2.estimateAffinePartial2D(np.asarray(keypoints, np.float32).reshape(5, 2), template)
    if matrix is None:
        raise ValueError("cannot fit an alignment to these face keypoints")
    return matrix


def align_face(image: np.ndarray, keypoints: np.ndarray, size: int = 512) -> np.ndarray:
    """RGB uint8 photo + 5 keypoints -> the aligned RGB crop (size x size)."""
    import cv2

    matrix = alignment_matrix(keypoints, size)
    return cv2.warpAffine(image, matrix, (size, size), borderMode=cv2.BORDER_CONSTANT, borderValue=BORDER_RGB)


def keypoints_from_68(landmarks68: np.ndarray) -> np.ndarray:
    """dlib's 68 landmarks -> the 5 keypoints above (eye centres, nose tip, mouth corners)."""
    pts = np.asarray(landmarks68, np.float32).reshape(68, 2)
    return np.stack([pts[36:42].mean(0), pts[42:48].mean(0), pts[30], pts[48], pts[54]]).astype(np.float32)
