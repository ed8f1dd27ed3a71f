"""Stage 3, windows: each shot, minus a margin at both ends, is cut into clip windows of min..max frames."""

from __future__ import annotations

from .config import WindowConfig


def shot_windows(shot: tuple[int, int], config: WindowConfig) -> list[tuple[int, int]]:
    """[start, end) windows inside one shot; empty when the trimmed shot is shorter than `min_frames`.

    Windows start at the trimmed shot start and step by `stride_frames` (default: `max_frames`, no overlap); each is
    `max_frames` long, or shorter (down to `min_frames`) when the shot ends first. A tail shorter than `min_frames`
    is left unused.
    """
    start, end = shot[0] + config.shot_margin_frames, shot[1] - config.shot_margin_frames
    stride = config.stride_frames or config.max_frames
    windows = []
    position = start
    while position + config.min_frames <= end:
        windows.append((position, min(position + config.max_frames, end)))
        position += stride
    return windows
