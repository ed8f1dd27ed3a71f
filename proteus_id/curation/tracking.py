"""Stage 4b, face track and filters per clip window: single person, face size, sharpness, brightness, one identity.

The detector runs on every few frames (`faces.samples_per_second`; SampledFrame); the person's track is the largest face of each
sample, checked for continuity (no jump of the box centre) and identity (dlib embedding distance to the track's
mean). Boxes of the frames in between are interpolated linearly along the track, so the manifest has one face box
per clip frame.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .config import FaceConfig
from .faces import SampledFrame


@dataclass
class TrackVerdict:
    ok: bool
    reason: str = ""
    detail: str = ""
    scores: dict = field(default_factory=dict)
    mean_embedding: list[float] | None = None


def _area(box) -> float:
    return max(0.0, box[2] - box[0]) * max(0.0, box[3] - box[1])


def second_face(sample: SampledFrame, ratio: float) -> bool:
    """True when the frame shows another face at least `ratio` times the main face's area."""
    return len(sample.boxes) > 1 and _area(sample.boxes[1]) >= ratio * _area(sample.boxes[0])


def judge_track(samples: list[SampledFrame], frame_size: tuple[int, int], config: FaceConfig, stride: int) -> TrackVerdict:
    """Face filters on the samples of one window, in a fixed order so every clip has exactly one reason."""
    width, height = frame_size
    if not samples:
        return TrackVerdict(False, "no_face", "no sampled frame in the window")
    with_face = [s for s in samples if s.boxes]
    share = len(with_face) / len(samples)
    if share < config.min_face_frames:
        return TrackVerdict(False, "no_face", f"a face in {len(with_face)} of {len(samples)} sampled frames")
    multi = sum(second_face(s, config.second_face_ratio) for s in samples)
    if multi / len(samples) > config.max_multi_face_frames:
        return TrackVerdict(False, "multiple_faces", f"a second face in {multi} of {len(samples)} sampled frames")
    for a, b in zip(with_face[:-1], with_face[1:]):
        jump = _centre_jump(a.main, b.main)
        if jump > config.max_track_jump * (b.index - a.index) / stride:
            return TrackVerdict(False, "track_break", f"the face jumps {jump:.2f} box sizes between frames {a.index} and {b.index}")
    embeddings = np.array([s.embedding for s in with_face if s.embedding is not None], dtype=np.float32)
    mean_embedding = None
    if len(embeddings):
        mean = embeddings.mean(0)
        distance = float(np.linalg.norm(embeddings - mean, axis=1).max())
        if distance > config.max_identity_distance:
            return TrackVerdict(False, "identity_switch", f"embedding distance {distance:.2f} to the track mean")
        mean_embedding = [round(float(v), 5) for v in mean]
    sizes = [min(s.main[2] - s.main[0], s.main[3] - s.main[1]) / min(width, height) for s in with_face]
    scores = {
        "face_frames": round(share, 3),
        "face_size": round(float(np.median(sizes)), 4),
        "sharpness": round(float(np.median([s.sharpness for s in with_face])), 2),
        "brightness": round(float(np.median([s.brightness for s in with_face])), 2),
        "face_score": round(float(np.median([s.main[4] for s in with_face])), 3),
    }
    if scores["face_size"] < config.min_face_size:
        return TrackVerdict(False, "face_too_small", f"median face {scores['face_size']:.3f} of the short side", scores)
    if scores["sharpness"] < config.min_sharpness:
        return TrackVerdict(False, "blurry", f"face sharpness {scores['sharpness']:.1f} < {config.min_sharpness}", scores)
    if scores["brightness"] < config.min_brightness:
        return TrackVerdict(False, "too_dark", f"face brightness {scores['brightness']:.0f}", scores)
    if scores["brightness"] > config.max_brightness:
        return TrackVerdict(False, "too_bright", f"face brightness {scores['brightness']:.0f}", scores)
    return TrackVerdict(True, scores=scores, mean_embedding=mean_embedding)


def _centre_jump(a, b) -> float:
    """Distance between two box centres in units of their mean size."""
    size = (a[2] - a[0] + a[3] - a[1] + b[2] - b[0] + b[3] - b[1]) / 4
    dx = (a[0] + a[2] - b[0] - b[2]) / 2
    dy = (a[1] + a[3] - b[1] - b[3]) / 2
    return float(np.hypot(dx, dy) / max(size, 1e-6))


def interpolate_boxes(samples: list[SampledFrame], start: int, end: int, max_gap: int) -> list[list[float] | None]:
    """One [x0, y0, x1, y1, confidence] (or None) per frame of [start, end) from the track's sampled boxes.

    Between two samples with a face no more than `max_gap` frames apart the box moves linearly and the confidence is
    the lower of the two; a frame farther than `max_gap // 2` from any detection gets None (we do not know).
    """
    known = [(s.index, s.main) for s in samples if s.main is not None]
    out: list[list[float] | None] = []
    for frame in range(start, end):
        before = next((k for k in reversed(known) if k[0] <= frame), None)
        after = next((k for k in known if k[0] >= frame), None)
        if before and after and before[0] == after[0]:
            out.append(list(before[1]))
        elif before and after and after[0] - before[0] <= max_gap:
            t = (frame - before[0]) / (after[0] - before[0])
            box = [round(a + t * (b - a), 1) for a, b in zip(before[1][:4], after[1][:4])]
            out.append(box + [min(before[1][4], after[1][4])])
        else:
            near = [k for k in (before, after) if k and abs(k[0] - frame) <= max_gap // 2]
            out.append(list(min(near, key=lambda k: abs(k[0] - frame))[1]) if near else None)
    return out


def person_box(face_box: list[float] | None, frame_size: tuple[int, int], width: float, top: float, height: float):
    """A body box grown from the face box (face widths wide, face heights above and below), clipped to the frame."""
    if face_box is None:
        return None
    x0, y0, x1, y1, score = face_box
    fw, fh = x1 - x0, y1 - y0
    cx = (x0 + x1) / 2
    W, H = frame_size
    return [
        round(max(0.0, cx - width * fw / 2), 1), round(max(0.0, y0 - top * fh), 1),
        round(min(float(W), cx + width * fw / 2), 1), round(min(float(H), y0 + height * fh), 1), score,
    ]
