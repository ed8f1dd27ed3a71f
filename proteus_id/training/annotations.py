"""Per-frame annotations of a manifest row (docs/manifest.md): boxes and masks, decoded to numpy.

Masks come as uncompressed COCO run-length lists (column-major, first run = zeros) or as one PNG per frame.
Boxes are `[x0, y0, x1, y1, confidence]` in source-video pixels, or null for a frame without a detection.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import UserError


class AnnotationError(UserError):
    """An annotation that cannot be decoded (the message names the key and the frame)."""


# ------------------------------------------------------------------ run-length masks


def encode_rle(mask: np.ndarray) -> list[int]:
    """(H, W) bool/0-1 mask -> uncompressed COCO counts (column-major, starts with a run of zeros)."""
    flat = np.asarray(mask, dtype=bool).flatten(order="F")
    if flat.size == 0:
        return []
    change = np.flatnonzero(flat[1:] != flat[:-1]) + 1
    bounds = np.concatenate([[0], change, [flat.size]])
    runs = np.diff(bounds).tolist()
    if flat[0]:
        runs = [0] + runs
    return [int(r) for r in runs]


def decode_rle(size: list[int] | tuple[int, int], counts: list[int]) -> np.ndarray:
    """Uncompressed COCO counts -> (H, W) bool mask. Raises AnnotationError when the runs do not cover H*W."""
    height, width = int(size[0]), int(size[1])
    try:  # strings, nulls, nested or ragged lists are a decoding error of this annotation, not a crash
        values = np.asarray(counts)
        if values.size and values.dtype.kind not in "iu":
            raise TypeError(values.dtype)
        counts = values.astype(np.int64)
    except (TypeError, ValueError) as err:
        raise AnnotationError("run-length counts must be a flat list of non-negative integers") from err
    if counts.ndim != 1 or (counts < 0).any():
        raise AnnotationError("run-length counts must be a flat list of non-negative integers")
    if int(counts.sum()) != height * width:
        raise AnnotationError(f"run lengths sum to {int(counts.sum())}, the mask size {height}x{width} needs {height * width}")
    values = np.arange(len(counts)) % 2 == 1
    flat = np.repeat(values, counts)
    return flat.reshape((height, width), order="F")


def rle_dict(masks: np.ndarray) -> dict:
    """(F, H, W) masks -> the manifest's `{"format": "rle", "size": [H, W], "counts": [[...], ...]}`."""
    masks = np.asarray(masks)
    return {"format": "rle", "size": [int(masks.shape[1]), int(masks.shape[2])], "counts": [encode_rle(m) for m in masks]}


# ------------------------------------------------------------------ reading masks and boxes


def mask_frame_count(entry: dict) -> int:
    if entry.get("format") == "rle":
        return len(entry.get("counts") or [])
    if entry.get("format") == "png":
        return len(entry.get("paths") or [])
    return 0


def load_masks(entry: dict, base_dir: Path, frames: list[int], key: str = "mask") -> np.ndarray:
    """Masks of the clip-relative `frames` -> (len(frames), H, W) float32 in {0, 1}."""
    fmt = entry.get("format") if isinstance(entry, dict) else None
    out = []
    if fmt == "rle":
        size, counts = entry.get("size"), entry.get("counts") or []
        for i in frames:
            if i >= len(counts):
                raise AnnotationError(f"{key}: no mask for clip frame {i} ({len(counts)} given)")
            try:
                out.append(decode_rle(size, counts[i]))
            except AnnotationError as err:
                raise AnnotationError(f"{key}, clip frame {i}: {err}") from err
    elif fmt == "png":
        from PIL import Image

        paths = entry.get("paths") or []
        for i in frames:
            if i >= len(paths):
                raise AnnotationError(f"{key}: no mask file for clip frame {i} ({len(paths)} given)")
            path = base_dir / paths[i]
            try:
                with Image.open(path) as img:
                    out.append(np.asarray(img.convert("L")) > 0)
            except (OSError, ValueError) as err:
                raise AnnotationError(f"{key}, clip frame {i}: cannot read {path} ({err.__class__.__name__})") from err
    else:
        raise AnnotationError(f"{key}: format must be 'rle' or 'png', got {fmt!r}")
    return np.stack(out).astype(np.float32)


def box_or_none(value) -> tuple[float, float, float, float, float] | None:
    """A manifest box -> (x0, y0, x1, y1, confidence), None for null; AnnotationError when malformed."""
    if value is None:
        return None
    if not isinstance(value, (list, tuple)) or len(value) not in (4, 5) or not all(isinstance(v, (int, float)) for v in value):
        raise AnnotationError(f"a box must be [x0, y0, x1, y1, confidence] or null, got {value!r}")
    x0, y0, x1, y1 = (float(v) for v in value[:4])
    if x1 <= x0 or y1 <= y0:
        raise AnnotationError(f"box {list(value)} has no area (x1 <= x0 or y1 <= y0)")
    conf = float(value[4]) if len(value) == 5 else 1.0
    return x0, y0, x1, y1, conf


def boxes_to_masks(boxes: list, height: int, width: int) -> np.ndarray:
    """Per-frame boxes (None = no detection) -> (F, H, W) float32 filled rectangles."""
    masks = np.zeros((len(boxes), height, width), np.float32)
    for f, box in enumerate(boxes):
        if box is None:
            continue
        x0, y0, x1, y1 = box[:4]
        xa, ya = max(0, int(np.floor(x0))), max(0, int(np.floor(y0)))
        xb, yb = min(width, int(np.ceil(x1))), min(height, int(np.ceil(y1)))
        if xb > xa and yb > ya:
            masks[f, ya:yb, xa:xb] = 1.0
    return masks


# The body box grown from a face box, in face-box units: a standing or sitting person is about 3 face widths wide
# and reaches from a little above the head to the bottom of the frame in talking-head footage.
BODY_WIDTH_FACES = 3.0
BODY_TOP_FACES = 0.5


def body_box_from_face(box, height: int, width: int) -> tuple[float, float, float, float, float]:
    """Fallback person box: 3 face widths wide centred on the face, from half a face height above it to the bottom."""
    x0, y0, x1, y1 = box[:4]
    conf = box[4] if len(box) > 4 else 1.0
    cx, fw, fh = (x0 + x1) / 2, x1 - x0, y1 - y0
    half = BODY_WIDTH_FACES * fw / 2
    return max(0.0, cx - half), max(0.0, y0 - BODY_TOP_FACES * fh), min(float(width), cx + half), float(height), conf
