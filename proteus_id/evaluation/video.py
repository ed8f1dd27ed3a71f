"""A decoded video as metrics see it: all frames, the frame rate, the uniformly sampled frames of the protocol, and a
per-video cache so metrics share work (face detection, optical flow) instead of repeating it."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

DEFAULT_SAMPLE_FRAMES = 16  # the ConsisID protocol: 16 frames sampled uniformly per video


class VideoReadError(ValueError):
    """A video that is missing, empty, corrupt or has no frames; the row that names it fails with this reason."""


def sample_indices(num_frames: int, count: int) -> np.ndarray:
    """`count` frame indices spread uniformly over [0, num_frames - 1], first and last included (np.linspace, as the
    ConsisID scripts do); fewer frames than `count` -> every frame once."""
    if num_frames <= 0:
        return np.zeros(0, dtype=int)
    if num_frames <= count:
        return np.arange(num_frames)
    return np.linspace(0, num_frames - 1, count).round().astype(int)


@dataclass
class VideoSample:
    path: Path
    frames: np.ndarray  # (F, H, W, 3) uint8 RGB, every decoded frame
    fps: float
    sample_count: int = DEFAULT_SAMPLE_FRAMES
    cache: dict[str, Any] = field(default_factory=dict)

    @property
    def num_frames(self) -> int:
        return int(self.frames.shape[0])

    @property
    def size(self) -> tuple[int, int]:
        """(height, width) in pixels."""
        return int(self.frames.shape[1]), int(self.frames.shape[2])

    @property
    def sampled_indices(self) -> np.ndarray:
        return sample_indices(self.num_frames, self.sample_count)

    @property
    def sampled_frames(self) -> np.ndarray:
        return self.frames[self.sampled_indices]

    def cached(self, key: str, compute: Callable[[], Any]) -> Any:
        """Compute once per video: metrics that need the same intermediate (faces, flow) share it."""
        if key not in self.cache:
            self.cache[key] = compute()
        return self.cache[key]


def load_video(path: str | Path, sample_count: int = DEFAULT_SAMPLE_FRAMES) -> VideoSample:
    """Decode a whole video with PyAV. Missing, zero-byte, corrupt or frameless files raise VideoReadError."""
    from ..pipeline.video import read_video

    path = Path(path)
    if not path.is_file():
        raise VideoReadError(f"video {path} does not exist")
    if path.stat().st_size == 0:
        raise VideoReadError(f"video {path} is an empty (zero-byte) file")
    try:
        frames, fps = read_video(path)
    except ValueError as err:  # read_video's own "cannot decode" / "no frames" (PyAV's errors included)
        raise VideoReadError(str(err)) from err
    except (OSError, EOFError) as err:
        raise VideoReadError(f"cannot read {path}: {err.__class__.__name__}: {err}") from err
    if frames.ndim != 4 or frames.shape[0] == 0:
        raise VideoReadError(f"{path} has no decodable frames")
    return VideoSample(path=path, frames=frames, fps=float(fps), sample_count=sample_count)
