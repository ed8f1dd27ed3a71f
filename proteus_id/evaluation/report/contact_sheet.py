"""A contact sheet per video: the reference photo, then a strip of frames (taken from the metric's sampled frames)
with the detected face box and that frame's FaceSim-dlib, so a reader can see what a number means."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

THUMB_HEIGHT = 112
FACE_COLOUR = (40, 200, 90)
NO_FACE_COLOUR = (220, 60, 60)


def _thumb(image: np.ndarray, height: int = THUMB_HEIGHT) -> tuple[Image.Image, float]:
    img = Image.fromarray(image)
    scale = height / img.height
    return img.resize((max(1, round(img.width * scale)), height), Image.Resampling.BILINEAR), scale


def contact_sheet(frames: np.ndarray, indices: list[int], *, reference: np.ndarray | None = None,
                  boxes: dict[int, tuple[int, int, int, int] | None] | None = None,
                  similarity: dict[int, float] | None = None, title: str = "") -> bytes:
    """JPEG bytes of [reference | frame, frame, ...]. `boxes` maps a frame index to its face box (None = searched,
    no face; absent = not searched); `similarity` maps a frame index to its per-frame FaceSim-dlib."""
    tiles: list[Image.Image] = []
    if reference is not None:
        ref, _ = _thumb(reference)
        draw = ImageDraw.Draw(ref)
        draw.rectangle([0, 0, ref.width - 1, ref.height - 1], outline=(60, 90, 200), width=3)
        draw.text((4, 2), "reference", fill=(255, 255, 255), stroke_width=2, stroke_fill=(0, 0, 0))
        tiles.append(ref)
    for idx in indices:
        tile, scale = _thumb(frames[idx])
        draw = ImageDraw.Draw(tile)
        label = f"#{idx}"
        if boxes is not None and idx in boxes:
            box = boxes[idx]
            if box is None:
                draw.rectangle([0, 0, tile.width - 1, tile.height - 1], outline=NO_FACE_COLOUR, width=2)
                label += " no face"
            else:
                draw.rectangle([v * scale for v in box], outline=FACE_COLOUR, width=2)
        if similarity and idx in similarity:
            label += f"  {similarity[idx]:.2f}"
        draw.text((4, tile.height - 14), label, fill=(255, 255, 255), stroke_width=2, stroke_fill=(0, 0, 0))
        tiles.append(tile)
    gap, top = 4, 18 if title else 0
    width = sum(t.width for t in tiles) + gap * (len(tiles) - 1)
    sheet = Image.new("RGB", (max(width, 1), THUMB_HEIGHT + top), (250, 250, 250))
    if title:
        ImageDraw.Draw(sheet).text((4, 3), title[:160], fill=(30, 30, 30))
    x = 0
    for tile in tiles:
        sheet.paste(tile, (x, top))
        x += tile.width + gap
    out = io.BytesIO()
    sheet.save(out, format="JPEG", quality=82)
    return out.getvalue()


def sheet_for_row(video, row, contact_frames: int, face_analysis=None) -> bytes:
    """Pick `contact_frames` of the sampled frames; add boxes/similarity when the identity metrics computed them."""
    sampled = list(video.sampled_indices)
    if len(sampled) > contact_frames:
        picks = np.linspace(0, len(sampled) - 1, contact_frames).round().astype(int)
        indices = [sampled[p] for p in picks]
    else:
        indices = sampled
    boxes = None
    similarity = None
    faces = video.cache.get("faces")
    if faces is not None:
        boxes = {int(i): (f.box if f is not None else None) for i, f in zip(sampled, faces)}
        vectors = video.cache.get("facesim_dlib:vectors")
        if vectors is not None and len(vectors[1]):
            from ..metrics.base import positive_cosine

            sims = positive_cosine(vectors[0], vectors[1])
            with_face = [f.frame_index for f in faces if f is not None]
            similarity = dict(zip(with_face, sims.tolist()))
    reference = None
    if row.image is not None and Path(row.image).is_file():
        if face_analysis is not None:
            reference = face_analysis.reference(row.image)[0]
        else:
            from ...identity.image_io import load_image

            reference = load_image(row.image, max_side=512)
    return contact_sheet(video.frames, indices, reference=reference, boxes=boxes, similarity=similarity,
                         title=(row.prompt or Path(row.video).name))
