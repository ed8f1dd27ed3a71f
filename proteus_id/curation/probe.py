"""Stage 1, probe: is this file a usable video? PyAV metadata plus one decoded frame.

Every way a file can be unusable ends as a `VideoRejected` with a stable reason code (counted in the funnel), never
as a crash: empty files, non-video files (a text file named .mp4), containers without a video stream, streams that
do not decode, too short or too small videos. Truncation (fewer frames decode than the header promises) is only
visible after decoding everything, so the scan reports it under this stage too (see scan.py).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

from .config import ProbeConfig


class VideoRejected(Exception):
    """A whole video leaves the funnel at `stage` for `reason` (a stable code); `detail` is for people."""

    def __init__(self, stage: str, reason: str, detail: str = ""):
        super().__init__(f"{stage}/{reason}: {detail}")
        self.stage, self.reason, self.detail = stage, reason, detail


@dataclass
class VideoInfo:
    width: int
    height: int
    fps: float
    frames: int  # declared by the container (0 when it does not say); the scan counts the real number
    duration_s: float
    codec: str
    size_bytes: int

    def to_dict(self) -> dict:
        return asdict(self)


def quiet_ffmpeg() -> None:
    """FFmpeg prints every broken packet of a bad file to stderr; the funnel reports them instead."""
    import av

    av.logging.set_level(None)


def probe_video(path: str | Path, config: ProbeConfig) -> VideoInfo:
    import av

    path = Path(path)
    if not path.is_file():
        raise VideoRejected("probe", "missing", f"{path} is not a file")
    size = path.stat().st_size
    if size == 0:
        raise VideoRejected("probe", "empty_file", "0 bytes")
    quiet_ffmpeg()
    try:
        container = av.open(str(path))
    except (av.FFmpegError, UnicodeDecodeError, ValueError) as err:
        raise VideoRejected("probe", "not_a_video", f"{type(err).__name__}: {err}") from err
    with container:
        if not container.streams.video:
            raise VideoRejected("probe", "no_video_stream", f"streams: {[s.type for s in container.streams]}")
        stream = container.streams.video[0]
        rate = stream.average_rate or stream.guessed_rate or stream.base_rate
        fps = float(rate) if rate else 0.0
        if fps <= 0:
            raise VideoRejected("probe", "no_frame_rate", "the stream declares no frame rate")
        if stream.duration is not None and stream.time_base is not None:
            duration = float(stream.duration * stream.time_base)
        elif container.duration is not None:
            duration = container.duration / av.time_base
        else:
            duration = 0.0
        declared = int(stream.frames or 0) or int(round(duration * fps))
        try:
            first = next(container.decode(stream), None)
        except av.FFmpegError as err:
            raise VideoRejected("probe", "undecodable", f"{type(err).__name__}: {err}") from err
        if first is None:
            raise VideoRejected("probe", "undecodable", "no frame decodes")
        info = VideoInfo(
            width=int(first.width), height=int(first.height), fps=fps, frames=declared,
            duration_s=duration or declared / fps, codec=stream.codec_context.name, size_bytes=size,
        )
    if min(info.width, info.height) < config.min_short_side:
        raise VideoRejected("probe", "too_small", f"{info.width}x{info.height} < {config.min_short_side} px short side")
    if info.duration_s < config.min_duration_s:
        raise VideoRejected("probe", "too_short", f"{info.duration_s:.2f} s < {config.min_duration_s} s")
    return info
