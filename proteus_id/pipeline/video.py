"""Video files through PyAV: H.264 mp4 written atomically (temporary file, then rename), and reading back."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np


def to_uint8_frames(frames) -> np.ndarray:
    """(F, H, W, 3) floats in [0, 1], uint8, or a list of PIL images -> uint8 (F, H, W, 3)."""
    if isinstance(frames, list) and frames and hasattr(frames[0], "convert"):
        return np.stack([np.asarray(f.convert("RGB")) for f in frames])
    array = np.asarray(frames)
    if array.dtype != np.uint8:
        array = (np.clip(array, 0.0, 1.0) * 255.0).round().astype(np.uint8)
    if array.ndim != 4 or array.shape[-1] != 3:
        raise ValueError(f"expected frames shaped (F, H, W, 3), got {array.shape}")
    return array


def write_video(frames, path: str | os.PathLike, fps: int = 8, crf: int = 18, pix_fmt: str = "yuv420p") -> Path:
    """Encode frames as H.264 mp4 (yuv420p, the format every player reads; "yuv444p" keeps full colour resolution,
    which matters for small frames). The file appears only when complete."""
    import av

    array = to_uint8_frames(frames)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # yuv420p needs even sizes; pad by repeating the last row/column rather than resizing
    height, width = array.shape[1], array.shape[2]
    if height % 2 or width % 2:
        array = np.pad(array, ((0, 0), (0, height % 2), (0, width % 2), (0, 0)), mode="edge")
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with av.open(str(tmp), mode="w", format="mp4") as container:
            stream = container.add_stream("libx264", rate=fps)
            stream.width, stream.height = array.shape[2], array.shape[1]
            stream.pix_fmt = pix_fmt
            stream.options = {"crf": str(crf)}
            for frame in array:
                container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
            container.mux(stream.encode())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def read_video(path: str | os.PathLike, max_frames: int | None = None) -> tuple[np.ndarray, float]:
    """Decode a video to uint8 RGB (F, H, W, 3) and its frame rate. Raises ValueError on unreadable or empty files."""
    import av

    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise ValueError(f"{path} has no video stream")
            stream = container.streams.video[0]
            fps = float(stream.average_rate or stream.guessed_rate or 0) or 8.0
            frames = []
            for frame in container.decode(stream):
                frames.append(frame.to_ndarray(format="rgb24"))
                if max_frames is not None and len(frames) >= max_frames:
                    break
    except av.FFmpegError as err:
        raise ValueError(f"cannot decode {path}: {err}") from err
    if not frames:
        raise ValueError(f"{path} has no decodable frames")
    return np.stack(frames), fps
