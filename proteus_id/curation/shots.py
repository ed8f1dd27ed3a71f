"""Stage 2, shots: hard cuts found by PySceneDetect on the frames we already decode.

PySceneDetect's detectors are fed our decoded frames one by one (BGR, downscaled to `analysis_width` as its own
SceneManager would), so the video is decoded once for every stage. ContentDetector (HSV + edge differences against a
threshold) is the default; AdaptiveDetector (the same score against its rolling average, fewer false cuts on fast
camera moves) is one setting away.
"""

from __future__ import annotations

import numpy as np

from ..errors import require
from .config import ShotConfig


class ShotDetector:
    """Feed frames in order with `add`, then `shots(total)` gives [start, end) frame ranges covering the video."""

    def __init__(self, config: ShotConfig, fps: float):
        scenedetect = require("scenedetect", "curate", "shot detection")
        self._cv2 = require("cv2", "curate", "shot detection")
        self._timecode = scenedetect.FrameTimecode
        self.fps = fps
        self.config = config
        if config.detector == "adaptive":
            self._detector = scenedetect.AdaptiveDetector(
                adaptive_threshold=config.adaptive_threshold, min_scene_len=config.min_shot_frames
            )
        else:
            self._detector = scenedetect.ContentDetector(threshold=config.threshold, min_scene_len=config.min_shot_frames)
        self._cuts: list[int] = []
        self._last = None

    def add(self, index: int, frame_rgb: np.ndarray) -> None:
        cv2 = self._cv2
        height, width = frame_rgb.shape[:2]
        if width > self.config.analysis_width:
            size = (self.config.analysis_width, max(1, round(height * self.config.analysis_width / width)))
            frame_rgb = cv2.resize(frame_rgb, size, interpolation=cv2.INTER_AREA)
        bgr = np.ascontiguousarray(frame_rgb[..., ::-1])
        self._last = self._timecode(index, self.fps)
        self._cuts += [c.frame_num for c in self._detector.process_frame(self._last, bgr)]

    def shots(self, total_frames: int) -> list[tuple[int, int]]:
        if self._last is not None:
            self._cuts += [c.frame_num for c in self._detector.post_process(self._last)]
        return cuts_to_shots(self._cuts, total_frames)


def cuts_to_shots(cuts: list[int], total_frames: int) -> list[tuple[int, int]]:
    """Cut frame numbers (first frame of a new shot) -> [start, end) ranges covering [0, total_frames)."""
    bounds = [0] + sorted({c for c in cuts if 0 < c < total_frames}) + [total_frames]
    return [(a, b) for a, b in zip(bounds[:-1], bounds[1:]) if b > a]
