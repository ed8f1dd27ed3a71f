"""Videos made in the tests from real photos (skimage.data): a still of the astronaut, the astronaut panned and
zoomed, a faceless coffee cup, a corrupt and a zero-byte file, and a manifest over them."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

SIZE = 256  # frames are SIZE x SIZE; the astronaut's face is ~80 px at this size
FRAMES = 17


def astronaut() -> np.ndarray:
    from skimage import data

    return data.astronaut()


def still_frames(image: np.ndarray, frames: int = FRAMES, size: int = SIZE) -> np.ndarray:
    from PIL import Image

    frame = np.asarray(Image.fromarray(image).resize((size, size), Image.Resampling.BILINEAR))
    return np.repeat(frame[None], frames, axis=0)


def pan_zoom_frames(image: np.ndarray, frames: int = FRAMES, size: int = SIZE) -> np.ndarray:
    """A crop window that slides right and zooms in over the photo: the camera moves ~12 px per frame."""
    from PIL import Image

    h, w = image.shape[:2]
    out = []
    for t in np.linspace(0.0, 1.0, frames):
        side = int(w * (1.0 - 0.3 * t))  # zoom in to 70%
        left = int((w - side) * t)  # slide right
        top = int((h - side) * 0.2 * t)
        crop = Image.fromarray(image[top : top + side, left : left + side]).resize((size, size), Image.Resampling.BILINEAR)
        out.append(np.asarray(crop))
    return np.stack(out)


def write_png(image: np.ndarray, path: Path) -> Path:
    from PIL import Image

    Image.fromarray(image).save(path)
    return path


@pytest.fixture(scope="session")
def video_set(tmp_path_factory) -> Path:
    """A folder with videos, photos and `run.jsonl` (rows: still, pan, coffee, corrupt, zero-byte)."""
    from skimage import data

    from proteus_id.pipeline.video import write_video

    root = tmp_path_factory.mktemp("videos")
    face = astronaut()
    write_png(face, root / "astronaut.png")
    write_png(data.coffee(), root / "coffee.png")
    write_video(still_frames(face), root / "still.mp4", fps=8)
    write_video(pan_zoom_frames(face), root / "pan.mp4", fps=8)
    write_video(still_frames(data.coffee()), root / "coffee.mp4", fps=8)
    good = (root / "still.mp4").read_bytes()
    (root / "corrupt.mp4").write_bytes(good[: len(good) // 3][:64] + b"\x00garbage" * 50)
    (root / "empty.mp4").write_bytes(b"")
    rows = [
        {"image": "astronaut.png", "prompt": "a woman in a space suit smiles", "video": "still.mp4", "kind": "still"},
        {"image": "astronaut.png", "prompt": "a woman in a space suit, the camera pans", "video": "pan.mp4", "kind": "pan"},
        {"image": "astronaut.png", "prompt": "a cup of coffee", "video": "coffee.mp4", "kind": "faceless"},
        {"image": "astronaut.png", "prompt": "broken", "video": "corrupt.mp4", "kind": "broken"},
        {"image": "astronaut.png", "prompt": "empty", "video": "empty.mp4", "kind": "broken"},
    ]
    (root / "run.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return root
