"""Small synthetic training data for tests and benchmarks: videos written with PyAV, a manifest v1 beside them.

Each clip shows a "person" (a body rectangle with a round face on top) sliding over a textured background, so the
optical flow is non-zero on the body and the annotations (face/person boxes and masks) are exact.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .annotations import rle_dict


def render_person_video(num_frames: int, height: int, width: int, seed: int) -> tuple[np.ndarray, list, list, np.ndarray, np.ndarray]:
    """-> frames (F, H, W, 3) uint8, face boxes, person boxes, face masks (F, H, W), person masks (F, H, W)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width]
    background = (rng.integers(40, 200, size=3) + 30 * np.sin(xx[..., None] / 5.0 + rng.uniform(0, 6, size=3))).clip(0, 255)
    skin, shirt = rng.integers(120, 255, size=3), rng.integers(0, 255, size=3)
    face_r = max(3, height // 10)
    speed = rng.uniform(0.6, 1.5) * (1 if rng.random() < 0.5 else -1)
    frames, face_boxes, person_boxes, face_masks, person_masks = [], [], [], [], []
    for f in range(num_frames):
        cx = width / 2 + speed * (f - num_frames / 2)
        cy = height * 0.35
        face = (xx - cx) ** 2 + (yy - cy) ** 2 <= face_r ** 2
        body = (np.abs(xx - cx) <= 1.6 * face_r) & (yy >= cy + face_r) & (yy < height)
        img = background.copy()
        img[body] = shirt
        img[face] = skin
        eye_y = int(cy - face_r / 3)
        for ex in (int(cx - face_r / 2.5), int(cx + face_r / 2.5)):
            if 0 <= ex < width:
                img[max(0, eye_y - 1) : eye_y + 1, max(0, ex - 1) : ex + 1] = 20
        frames.append(img.astype(np.uint8))
        face_boxes.append([float(cx - face_r), float(cy - face_r), float(cx + face_r), float(cy + face_r), 0.99])
        person_boxes.append([float(cx - 1.6 * face_r), float(cy - face_r), float(cx + 1.6 * face_r), float(height), 0.98])
        face_masks.append(face)
        person_masks.append(face | body)
    return np.stack(frames), face_boxes, person_boxes, np.stack(face_masks), np.stack(person_masks)


CAPTIONS = [
    "a man with short brown hair walks left in a park, the camera slowly pans",
    "a woman with long black hair smiles and turns her head towards the camera",
    "a young person wearing a blue shirt walks in the street at night",
    "an old man with a grey beard talks in a room, the camera zooms closer",
]
IDENTITY_PROMPTS = ["a man with short brown hair", "a woman with long black hair", "a young person", "an old man with a grey beard"]


def make_synthetic_dataset(
    root: str | Path,
    num_clips: int = 4,
    height: int = 64,
    width: int = 64,
    clip_frames: int = 9,
    extra_frames: int = 3,
    fps: int = 8,
    seed: int = 0,
    annotations: str = "rle",
) -> Path:
    """Write `num_clips` videos (clip + a few extra frames for the cross-face reference) and `manifest.jsonl`.

    annotations: "rle" (face/person masks as run-length + boxes), "boxes" (boxes only) or "none".
    """
    from ..pipeline.video import write_video

    root = Path(root)
    (root / "videos").mkdir(parents=True, exist_ok=True)
    rows = []
    for i in range(num_clips):
        total = clip_frames + extra_frames
        frames, face_boxes, person_boxes, face_masks, person_masks = render_person_video(total, height, width, seed + i)
        name = f"videos/clip_{i:03d}.mp4"
        write_video(frames, root / name, fps=fps, crf=12)
        start, end = extra_frames, extra_frames + clip_frames
        row = {
            "version": 1, "id": f"clip_{i:03d}", "video": name, "start_frame": start, "end_frame": end, "fps": float(fps),
            "caption": CAPTIONS[i % len(CAPTIONS)], "identity_prompt": IDENTITY_PROMPTS[i % len(IDENTITY_PROMPTS)],
            "reference": {"frame": 0}, "meta": {"source": "synthetic", "seed": seed + i},
        }
        if annotations in ("rle", "boxes"):
            row["annotations"] = {"face_boxes": face_boxes[start:end], "person_boxes": person_boxes[start:end]}
        if annotations == "rle":
            row["annotations"]["face_masks"] = rle_dict(face_masks[start:end])
            row["annotations"]["person_masks"] = rle_dict(person_masks[start:end])
        rows.append(row)
    manifest = root / "manifest.jsonl"
    manifest.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return manifest
