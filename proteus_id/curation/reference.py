"""Stage 6, reference: the face photo for a clip comes from a frame *outside* the clip window ("cross-face").

The release trains this way so the model cannot copy the reference pixels into the video. Candidates are the
sampled frames of the same video outside [start - gap, end + gap) that show one face (no second face), large and
sharp enough, of the same person (dlib embedding distance to the clip track's mean below the identity threshold).
The best is the highest detector score, then the largest face, then the earliest frame (deterministic).
"""

from __future__ import annotations

import numpy as np

from .config import FaceConfig, ReferenceConfig
from .faces import SampledFrame
from .tracking import second_face


def choose_reference(
    samples: list[SampledFrame],
    window: tuple[int, int],
    mean_embedding: list[float] | None,
    frame_size: tuple[int, int],
    config: ReferenceConfig,
    faces: FaceConfig,
) -> tuple[SampledFrame | None, str]:
    """The reference frame's sample, or None and why not."""
    start, end = window
    short_side = min(frame_size)
    outside = [s for s in samples if s.main is not None and (s.index < start - config.min_gap_frames or s.index >= end + config.min_gap_frames)]
    if not outside:
        return None, "no face outside the clip window"
    usable = [
        s for s in outside
        if not second_face(s, faces.second_face_ratio)
        and min(s.main[2] - s.main[0], s.main[3] - s.main[1]) / short_side >= config.min_face_size
        and (s.sharpness or 0.0) >= config.min_sharpness
    ]
    if not usable:
        return None, f"{len(outside)} faces outside the window, none single, large and sharp enough"
    if mean_embedding is not None:
        target = np.asarray(mean_embedding, np.float32)
        usable = [
            s for s in usable
            if s.embedding is not None and np.linalg.norm(np.asarray(s.embedding, np.float32) - target) <= faces.max_identity_distance
        ]
        if not usable:
            return None, "no face outside the window is the same person"
    best = max(usable, key=lambda s: (s.main[4], (s.main[2] - s.main[0]) * (s.main[3] - s.main[1]), -s.index))
    return best, ""
