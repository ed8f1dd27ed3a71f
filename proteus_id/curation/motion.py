"""Stage 5, motion: OpenCV DIS optical flow on sampled frame pairs; still and chaotic clips are dropped.

The score of a frame pair is its mean flow magnitude in frame diagonals per second (pixels / diagonal x fps), so
one threshold works at any resolution and frame rate. A clip's motion is the mean over the pairs inside its window;
windows lie inside one shot, so a pair straddling a cut never counts.
"""

from __future__ import annotations

import numpy as np

from ..errors import require
from ..motion.flow import DISFlow, flow_magnitudes
from .config import MotionConfig, stride_for


class MotionMeter:
    """Feed every frame in order; every `stride`-th frame (from `pairs_per_second`) is paired with the next one."""

    def __init__(self, config: MotionConfig, fps: float):
        self.cv2 = require("cv2", "curate", "optical flow")
        self.flow = DISFlow(config.flow_preset)
        self.config, self.fps = config, fps
        self.stride = stride_for(fps, config.pairs_per_second)
        self.scores: dict[int, float] = {}  # first frame of the pair -> diagonals per second
        self._previous: tuple[int, np.ndarray] | None = None

    def add(self, index: int, frame_rgb: np.ndarray) -> None:
        if self._previous is not None and self._previous[0] == index - 1:
            small = self._small(frame_rgb)
            flow = self.flow(np.stack([self._previous[1], small]))
            diagonal = float(np.hypot(*small.shape[:2]))
            self.scores[index - 1] = round(float(flow_magnitudes(flow).mean()) / diagonal * self.fps, 5)
        self._previous = (index, self._small(frame_rgb)) if index % self.stride == 0 else None

    def _small(self, frame: np.ndarray) -> np.ndarray:
        height, width = frame.shape[:2]
        if width <= self.config.flow_width:
            return frame
        size = (self.config.flow_width, max(8, round(height * self.config.flow_width / width)))
        return self.cv2.resize(frame, size, interpolation=self.cv2.INTER_AREA)


def window_motion(scores: dict[int, float], start: int, end: int) -> float | None:
    """Mean pair score over pairs lying inside [start, end); None when the window holds no pair."""
    inside = [v for k, v in scores.items() if start <= k and k + 1 < end]
    return round(float(np.mean(inside)), 5) if inside else None


def judge_motion(value: float | None, config: MotionConfig) -> tuple[bool, str, str]:
    if value is None:
        return False, "no_motion_sample", "no frame pair inside the window (longer windows or a higher motion.pairs_per_second)"
    if value < config.min_motion:
        return False, "still", f"motion {value:.4f} < {config.min_motion} diagonals/s"
    if value > config.max_motion:
        return False, "chaotic", f"motion {value:.3f} > {config.max_motion} diagonals/s"
    return True, "", ""
