"""A contact sheet of kept clips, to look at rather than read: per row, the clip's first, middle and last frame with
the face box (green) and body box (blue), then the reference frame with its face box (red), and the clip id."""

from __future__ import annotations

import io
from collections import defaultdict
from pathlib import Path

import numpy as np

from .atomic import write_bytes_atomic

TILE_HEIGHT = 120


def sample_rows(rows: list[dict], count: int) -> list[dict]:
    """`count` rows spread evenly over the manifest (deterministic)."""
    if count <= 0 or not rows:
        return []
    if len(rows) <= count:
        return list(rows)
    return [rows[round(i * (len(rows) - 1) / (count - 1))] for i in range(count)] if count > 1 else [rows[0]]


def write_contact_sheet(rows: list[dict], out_dir: Path, count: int = 16) -> Path | None:
    from PIL import Image, ImageDraw

    from .scan import read_frames_streaming

    chosen = sample_rows(rows, count)
    if not chosen:
        return None
    wanted: dict[str, set[int]] = defaultdict(set)
    for row in chosen:
        wanted[row["video"]] |= set(_frames_of(row))
    pixels = {}
    for video, indices in wanted.items():  # one sequential decode per video
        for index, frame in read_frames_streaming(out_dir / video, indices):
            pixels[(video, index)] = frame
    lines = []
    for row in chosen:
        tiles = []
        first, middle, last, reference = _frames_of(row)
        for index in (first, middle, last):
            k = index - row["start_frame"]
            boxes = [(row["annotations"]["face_boxes"][k], (0, 200, 0)), (row["annotations"]["person_boxes"][k], (40, 90, 255))]
            tiles.append(_tile(pixels[(row["video"], index)], boxes))
        tiles.append(_tile(pixels[(row["video"], reference)], [(row["meta"]["reference_box"], (230, 30, 30))]))
        strip = Image.fromarray(np.concatenate(tiles, axis=1))
        canvas = Image.new("RGB", (strip.width, strip.height + 16), (255, 255, 255))
        canvas.paste(strip, (0, 16))
        label = f"{row['id']}  frames {row['start_frame']}-{row['end_frame'] - 1}  ref {reference}"
        ImageDraw.Draw(canvas).text((4, 2), label, fill=(0, 0, 0))
        lines.append(canvas)
    width = max(line.width for line in lines)
    sheet = Image.new("RGB", (width, sum(line.height for line in lines)), (255, 255, 255))
    y = 0
    for line in lines:
        sheet.paste(line, (0, y))
        y += line.height
    buffer = io.BytesIO()
    sheet.save(buffer, format="JPEG", quality=85)
    return write_bytes_atomic(out_dir / "contact_sheet.jpg", buffer.getvalue())


def _frames_of(row: dict) -> tuple[int, int, int, int]:
    start, end = row["start_frame"], row["end_frame"]
    return start, (start + end - 1) // 2, end - 1, row["reference"]["frame"]


def _tile(frame: np.ndarray, boxes: list) -> np.ndarray:
    from PIL import Image, ImageDraw

    image = Image.fromarray(frame)
    scale = TILE_HEIGHT / image.height
    image = image.resize((max(1, round(image.width * scale)), TILE_HEIGHT))
    draw = ImageDraw.Draw(image)
    for box, colour in boxes:
        if box is not None:
            draw.rectangle([v * scale for v in box[:4]], outline=colour, width=2)
    return np.asarray(image)
