"""One decoding pass per video feeds every per-frame measurement: shot detector, face samples, motion pairs.

Nothing but small per-frame numbers is kept, so memory does not grow with the video's length. Decoding that stops
early (a truncated or corrupt file) is reported as a probe-stage rejection once the frame count is known.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .config import CurateConfig, stride_for
from .dedup import frame_phash
from .faces import SampledFrame, face_detector
from .motion import MotionMeter
from .probe import VideoInfo, VideoRejected
from .shots import ShotDetector


@dataclass
class ScanResult:
    frames: int
    face_stride: int
    shots: list[tuple[int, int]]
    samples: list[SampledFrame]
    motion: dict[int, float]


def iter_frames(path: str | Path):
    """(index, RGB uint8 frame) in decoded order; raises av.FFmpegError when the stream breaks."""
    import av

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        for index, frame in enumerate(container.decode(stream)):
            yield index, frame.to_ndarray(format="rgb24")


def scan_video(path: str | Path, info: VideoInfo, config: CurateConfig) -> ScanResult:
    import av

    shots = ShotDetector(config.shots, info.fps)
    motion = MotionMeter(config.motion, info.fps)
    detector = face_detector(tuple(sorted(vars(config.faces).items())))
    samples: list[SampledFrame] = []
    face_stride = stride_for(info.fps, config.faces.samples_per_second)
    embed_stride = face_stride * max(1, int(round(config.faces.samples_per_second / config.faces.embeddings_per_second)))
    count, broken = 0, ""
    try:
        for index, frame in iter_frames(path):
            count = index + 1
            shots.add(index, frame)
            motion.add(index, frame)
            if index % face_stride == 0:
                samples.append(_sample(detector, index, frame, config, embed=index % embed_stride == 0))
    except av.FFmpegError as err:
        broken = f"decoding stopped at frame {count}: {type(err).__name__}"
    if info.frames and count < info.frames * (1.0 - config.probe.max_missing_frames):
        raise VideoRejected("probe", "truncated", f"{count} of {info.frames} declared frames decode. {broken}".strip())
    if broken:
        raise VideoRejected("probe", "decode_error", broken)
    return ScanResult(frames=count, face_stride=face_stride, shots=shots.shots(count), samples=samples, motion=motion.scores)


def _sample(detector, index: int, frame: np.ndarray, config: CurateConfig, embed: bool) -> SampledFrame:
    boxes = detector.detect(frame)
    sample = SampledFrame(index=index, boxes=boxes, phash=frame_phash(frame, config.dedup.hash_size))
    if boxes:
        sample.sharpness, sample.brightness, sample.embedding = detector.measure(frame, boxes[0], embed=embed)
        sample.sharpness, sample.brightness = round(sample.sharpness, 2), round(sample.brightness, 2)
    return sample


def read_frames_streaming(path: str | Path, indices: set[int]):
    """(index, frame) for the wanted indices, in order, from one sequential decode that stops after the last one.

    Sequential on purpose: seeking lands on keyframes, and turning timestamps back into decoded-order indices is
    not exact for every file; the manifest's frame numbers must be.
    """
    if not indices:
        return
    last = max(indices)
    found = set()
    for index, frame in iter_frames(path):
        if index in indices:
            found.add(index)
            yield index, frame
        if index >= last:
            break
    missing = indices - found
    if missing:
        raise ValueError(f"{path}: frames {sorted(missing)[:5]} do not decode")


def read_frames(path: str | Path, indices: list[int]) -> list[np.ndarray]:
    """The frames at `indices` (any order, repeats allowed)."""
    found = dict(read_frames_streaming(path, set(indices)))
    return [found[i] for i in indices]
