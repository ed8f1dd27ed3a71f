"""Motion metrics from OpenCV DIS optical flow (offline; VBench uses RAFT and AMT, which need weights).

Frames: like VBench, the video is first taken at about 8 fps (every round(fps / 8)-th frame; an 8 fps video keeps
all frames). Flow is computed between consecutive kept frames, in pixels of the video's own resolution.

- flow_magnitude     mean over frame pairs of the mean per-pixel flow length (px per kept frame). Scales with the
                     resolution: compare videos of one size.
- dynamic_degree     VBench's rule, per video 0 or 1 (the set's mean is the share of moving videos). Per pair, the
                     score is the mean of the largest 5% flow lengths; a pair moves when its score exceeds
                     thres = 6.0 * (min(H, W) / 256) * max(1, 8 / fps)  (11.25 px for 480 x 720 at 8 fps);
                     the video moves when at least max(1, round(4 * N / 16)) pairs move (N kept frames; 12 of 48
                     pairs for 49 frames). The resolution factor keeps the rule at the same share of the frame size.
                     (VBench's round() gives 0 for N = 2, which would call every 2-frame video moving.)
- motion_smoothness  VBench's definition with flow interpolation in place of AMT: every odd kept frame is rebuilt
                     from its two neighbours by warping each half-way along the DIS flow between them and averaging;
                     score = (255 - mean |rebuilt - real|) / 255. 1.0 for a still video; jerky motion lowers it.
                     Needs 3 kept frames (no value below that).
- temporal_flicker   motion-compensated change: the next frame warped back onto the current one by the flow,
                     mean absolute grey-level difference over pixels that stay inside the frame (0..255, lower is
                     steadier). Unlike VBench's raw frame difference it does not count smooth motion as flicker.
A video with fewer than 2 kept frames has no motion values (a note says why), never a stand-in 0 or 1.
Numbers from DIS and from RAFT/AMT differ; compare models under one backend only.
"""

from __future__ import annotations

import numpy as np

from ..video import VideoSample
from .base import Metric, MetricUnavailable, NotApplicable

VBENCH_BASE_THRESHOLD = 6.0  # px at a 256 px short side and 8 fps
VBENCH_TOP_SHARE = 0.05


def kept_frames(video: VideoSample) -> tuple[np.ndarray, float]:
    """Frames taken at ~8 fps (VBench's interval rule) and the fps they now have."""
    interval = max(1, round(video.fps / 8.0))
    return video.frames[::interval], video.fps / interval


def dynamic_threshold(height: int, width: int, fps: float) -> float:
    return VBENCH_BASE_THRESHOLD * (min(height, width) / 256.0) * max(1.0, 8.0 / fps)


def dynamic_count(num_frames: int) -> int:
    """Moving pairs needed for a moving video: VBench's round(4 * N / 16), but at least one pair (VBench's rule gives
    0 for N = 2 kept frames, and then any two frames, even identical ones, count as moving)."""
    return max(1, round(4 * (num_frames / 16.0)))


def top_share_mean(magnitude: np.ndarray, share: float = VBENCH_TOP_SHARE) -> float:
    flat = magnitude.ravel()
    count = max(1, int(flat.size * share))
    return float(np.partition(flat, flat.size - count)[flat.size - count :].mean())  # the largest `count` values


def warp(image: np.ndarray, flow: np.ndarray, scale: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Sample `image` at x + scale * flow(x) (backward warping); returns the warped image and the in-frame mask."""
    import cv2

    h, w = flow.shape[:2]
    grid_x, grid_y = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    map_x = grid_x + scale * flow[..., 0]
    map_y = grid_y + scale * flow[..., 1]
    warped = cv2.remap(image, map_x, map_y, interpolation=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    inside = (map_x >= 0) & (map_x <= w - 1) & (map_y >= 0) & (map_y <= h - 1)
    return warped, inside


class MotionMetrics(Metric):
    name = "motion"
    group = "motion"
    columns = ("flow_magnitude", "dynamic_degree", "motion_smoothness", "temporal_flicker")
    higher_is_better = {"flow_magnitude": None, "dynamic_degree": None, "motion_smoothness": True, "temporal_flicker": False}
    description = "DIS optical flow: mean flow, VBench dynamic degree, flow-interpolation smoothness, flicker"

    def __init__(self, preset: str = "medium"):
        from ...errors import MissingDependencyError
        from ...motion.flow import DISFlow

        try:
            self.flow = DISFlow(preset)
        except MissingDependencyError as err:
            raise MetricUnavailable(str(err)) from err
        self.preset = preset

    def _flows(self, video: VideoSample) -> tuple[np.ndarray, float, np.ndarray]:
        def run():
            frames, fps = kept_frames(video)
            return frames, fps, self.flow(frames)

        return video.cached("motion:flow", run)

    def compute(self, video, row):
        frames, fps, flow = self._flows(video)
        if len(frames) < 2:
            raise NotApplicable(f"{len(frames)} frame at ~8 fps: no frame pair to measure motion on")
        magnitude = np.sqrt((flow**2).sum(-1))
        out = {"flow_magnitude": float(magnitude.mean())}
        h, w = frames.shape[1:3]
        scores = [top_share_mean(m) for m in magnitude]
        threshold = dynamic_threshold(h, w, video.fps)
        moving_pairs = sum(s > threshold for s in scores)
        out["dynamic_degree"] = float(moving_pairs >= dynamic_count(len(frames)))
        out["temporal_flicker"] = self._flicker(frames, flow)
        if len(frames) >= 3:  # smoothness rebuilds a frame from its two neighbours
            out["motion_smoothness"] = self._smoothness(frames)
        return out

    def collect(self, video, row):
        frames, fps, flow = self._flows(video)
        if len(flow) == 0:
            return None
        magnitude = np.sqrt((flow**2).sum(-1))
        return {"pair_scores": np.array([top_share_mean(m) for m in magnitude]),
                "threshold": np.array([dynamic_threshold(*frames.shape[1:3], video.fps)])}

    def _flicker(self, frames: np.ndarray, flow: np.ndarray) -> float:
        import cv2

        errors = []
        for a, b, f in zip(frames[:-1], frames[1:], flow):
            ga = cv2.cvtColor(a, cv2.COLOR_RGB2GRAY).astype(np.float32)
            gb = cv2.cvtColor(b, cv2.COLOR_RGB2GRAY).astype(np.float32)
            warped, inside = warp(gb, f)
            if inside.any():
                errors.append(float(np.abs(warped - ga)[inside].mean()))
        return float(np.mean(errors)) if errors else 0.0

    def _smoothness(self, frames: np.ndarray) -> float:
        errors = []
        for i in range(1, len(frames) - 1, 2):
            before, real, after = frames[i - 1], frames[i], frames[i + 1]
            span = self.flow(np.stack([before, after]))[0]  # before -> after
            # half-way frame: before sampled half a step back along the flow, after half a step forward
            from_before, _ = warp(before, span, -0.5)
            from_after, _ = warp(after, span, 0.5)
            rebuilt = (from_before.astype(np.float32) + from_after.astype(np.float32)) / 2.0
            errors.append(float(np.abs(rebuilt - real.astype(np.float32)).mean()))
        return float((255.0 - np.mean(errors)) / 255.0)

    def fingerprint(self) -> str:
        # v2: no values from fewer than 2 kept frames (smoothness: 3); dynamic degree needs at least one moving pair
        return f"{self.name}:dis-{self.preset}:v2"


def motion_factory(config):
    return MotionMetrics(config.flow_preset)
