"""Test and benchmark footage made from public-domain photos (scikit-image's astronaut and coffee), never downloaded.

`story_frames` is one video with known ground truth: a pan-and-zoom on the astronaut's face, a hard cut to a faceless
pan (coffee), a stretch with two faces, and a still stretch. Plus the broken files a crawl brings: truncated,
zero-byte, and text named .mp4.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

FACE_CENTRE = (220, 121)  # the astronaut's face in skimage.data.astronaut() (512 x 512), x, y


def _crop(image: np.ndarray, cx: float, cy: float, crop_w: float, size: tuple[int, int]) -> np.ndarray:
    """A crop of width crop_w centred at (cx, cy) with the output's aspect, resized to size (W, H): an affine warp."""
    import cv2

    out_w, out_h = size
    scale = out_w / crop_w
    matrix = np.array([[scale, 0, out_w / 2 - scale * cx], [0, scale, out_h / 2 - scale * cy]], dtype=np.float64)
    return cv2.warpAffine(image, matrix, (out_w, out_h), flags=cv2.INTER_AREA, borderMode=cv2.BORDER_REFLECT)


STORY_LENGTHS = (40, 20, 20, 24)  # frames of: pan-and-zoom face, faceless, two faces, still face


def story_segments(size: tuple[int, int] = (320, 240), lengths: tuple[int, ...] = STORY_LENGTHS) -> list[tuple[str, np.ndarray]]:
    """(kind, frames) for the four stretches of the story video, in order; frames are (W, H) = size."""
    from skimage import data

    astronaut, coffee = data.astronaut(), data.coffee()
    fx, fy = FACE_CENTRE
    n_pan, n_faceless, n_pair, n_still = lengths
    pan = np.stack([_crop(astronaut, fx - 40 + 80 * t, fy + 30 - 10 * t, 300 - 50 * t, size) for t in np.linspace(0, 1, n_pan)])
    faceless = np.stack([_crop(coffee, 250 + 100 * t, 200, 320, size) for t in np.linspace(0, 1, n_faceless)])
    pair = []
    for t in np.linspace(0, 1, n_pair):
        face = _crop(astronaut, fx + 10 * t, fy + 10, 170, (size[0] // 2, size[1]))
        pair.append(np.concatenate([face, face[:, ::-1]], axis=1))
    still = np.repeat(_crop(astronaut, fx, fy + 30, 280, size)[None], n_still, axis=0)
    return [("pan_zoom_face", pan), ("faceless", faceless), ("two_faces", np.stack(pair)), ("still_face", still)]


def story_frames(size: tuple[int, int] = (320, 240), lengths: tuple[int, ...] = STORY_LENGTHS) -> np.ndarray:
    return np.concatenate([frames for _, frames in story_segments(size, lengths)])


def encode(frames: np.ndarray, path: str | Path, fps: int = 8, crf: int = 20, faststart: bool = False) -> Path:
    """H.264 mp4; `faststart` puts the index first, so a file cut short still opens (a truncated download)."""
    import av

    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with av.open(str(tmp), mode="w", format="mp4", options={"movflags": "faststart"} if faststart else {}) as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        stream.options = {"crf": str(crf), "threads": "1"}
        for frame in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")))
        container.mux(stream.encode())
    os.replace(tmp, path)
    return path


def make_broken_files(folder: str | Path, source: np.ndarray) -> dict[str, Path]:
    """truncated.mp4 (first 45% of a faststart mp4), empty.mp4 (0 bytes), notes.mp4 (text)."""
    folder = Path(folder)
    full = encode(source, folder / ".full_for_truncation.mp4", faststart=True)
    data = full.read_bytes()
    full.unlink()
    truncated = folder / "truncated.mp4"
    truncated.write_bytes(data[: int(len(data) * 0.45)])
    empty = folder / "empty.mp4"
    empty.write_bytes(b"")
    notes = folder / "notes.mp4"
    notes.write_text("These are shooting notes, not a video.\n" * 20)
    return {"truncated": truncated, "empty": empty, "notes": notes}
