"""Motion metrics on synthetic frames whose motion is known: the VBench thresholds, still vs moving, flicker that is
brightness (not motion), and jerky vs smooth motion."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from proteus_id.evaluation.manifest import EvalRow
from proteus_id.evaluation.metrics.motion import MotionMetrics, dynamic_count, dynamic_threshold, kept_frames
from proteus_id.evaluation.video import VideoSample

ROW = EvalRow(index=0, video=Path("synthetic.mp4"), image=None, prompt=None)


def texture(size: int = 160, seed: int = 0) -> np.ndarray:
    """Smooth random texture (flow needs structure), RGB uint8, twice the frame size so windows can slide."""
    import cv2

    rng = np.random.default_rng(seed)
    noise = rng.uniform(0, 255, (size * 2, size * 2, 3)).astype(np.float32)
    return np.clip(cv2.GaussianBlur(noise, (0, 0), 3) * 3 - 255, 0, 255).astype(np.uint8)


def sliding(offsets: list[float], size: int = 160) -> np.ndarray:
    """Frames = a window over the texture at horizontal offsets (pixels)."""
    import cv2

    tex = texture(size)
    frames = []
    for dx in offsets:
        m = np.float32([[1, 0, -dx], [0, 1, 0]])
        frames.append(cv2.warpAffine(tex, m, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT))
    return np.stack(frames)


def video(frames: np.ndarray, fps: float = 8.0) -> VideoSample:
    return VideoSample(path=Path("synthetic.mp4"), frames=frames, fps=fps, sample_count=16)


def test_vbench_thresholds_scale_with_resolution_and_fps():
    assert dynamic_threshold(480, 720, 8.0) == pytest.approx(11.25)
    assert dynamic_threshold(256, 256, 8.0) == pytest.approx(6.0)
    assert dynamic_threshold(480, 720, 4.0) == pytest.approx(22.5)  # half the frame rate: twice the motion per frame
    assert dynamic_threshold(480, 720, 24.0) == pytest.approx(11.25)
    assert dynamic_count(49) == 12 and dynamic_count(16) == 4
    frames = np.zeros((49, 4, 4, 3), np.uint8)
    assert len(kept_frames(video(frames, fps=24.0))[0]) == 17  # every 3rd frame: ~8 fps, like VBench
    assert len(kept_frames(video(frames, fps=8.0))[0]) == 49


def test_still_and_moving():
    metric = MotionMetrics()
    still = metric.compute(video(sliding([0.0] * 17)), ROW)
    assert still["dynamic_degree"] == 0.0
    assert still["flow_magnitude"] < 0.05
    assert still["motion_smoothness"] > 0.999 and still["temporal_flicker"] < 0.1
    # 160 px frames: the VBench threshold is 6 * 160 / 256 = 3.75 px per frame
    moving = metric.compute(video(sliding([8.0 * k for k in range(17)])), ROW)
    assert moving["dynamic_degree"] == 1.0
    assert moving["flow_magnitude"] == pytest.approx(8.0, rel=0.15)  # DIS recovers the known shift
    slow = metric.compute(video(sliding([2.0 * k for k in range(17)])), ROW)  # 2 px per frame: below the rule
    assert slow["dynamic_degree"] == 0.0
    assert slow["flow_magnitude"] == pytest.approx(2.0, rel=0.15)


def test_flicker_is_brightness_change_not_motion():
    metric = MotionMetrics()
    smooth = metric.compute(video(sliding([3.0 * k for k in range(17)])), ROW)
    base = sliding([0.0] * 17).astype(np.int16)
    flicker = np.clip(base + np.array([20 if k % 2 else -20 for k in range(17)])[:, None, None, None], 0, 255)
    flickering = metric.compute(video(flicker.astype(np.uint8)), ROW)
    assert smooth["temporal_flicker"] < 2.0  # smooth motion is compensated by the flow
    assert flickering["temporal_flicker"] == pytest.approx(40.0, abs=1.0)  # a 40-level swing between frames
    assert flickering["dynamic_degree"] == 0.0


def test_jerky_motion_is_less_smooth_than_steady_motion():
    metric = MotionMetrics()
    steady = metric.compute(video(sliding([4.0 * k for k in range(17)])), ROW)
    jerky = metric.compute(video(sliding([0.0 if k % 2 == 0 else 10.0 for k in range(17)])), ROW)  # back and forth
    assert steady["motion_smoothness"] > 0.98
    assert jerky["motion_smoothness"] < steady["motion_smoothness"] - 0.02


def test_too_few_frames_give_no_made_up_motion_numbers():
    from proteus_id.evaluation.metrics.base import NotApplicable

    metric = MotionMetrics()
    assert dynamic_count(2) == 1  # VBench's round(4 * 2 / 16) is 0: any two frames would count as moving
    two = metric.compute(video(sliding([0.0, 0.0])), ROW)
    assert two["dynamic_degree"] == 0.0  # two identical frames are not moving
    assert "motion_smoothness" not in two  # no frame between two neighbours to rebuild: undefined, not 1.0
    assert metric.compute(video(sliding([0.0] * 6), fps=24.0), ROW)["dynamic_degree"] == 0.0  # 2 kept frames
    with pytest.raises(NotApplicable, match="no frame pair"):
        metric.compute(video(sliding([0.0])), ROW)
