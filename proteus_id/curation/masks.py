"""Stage 7, masks: face and person masks per clip frame, as manifest RLE or PNG files (docs/manifest.md).

Default source `box`: the face mask is the face box and the person mask is the body box grown from it (honest about
what it is: `meta.masks_source = "box"`). Source `segmentation`: a local transformers image-segmentation model; its
"person" segment inside the body box becomes the person mask (the face mask stays the face box).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np

from ..atomic import atomic_path
from ..errors import UserError, require


def box_mask(box: list[float] | None, size: tuple[int, int]) -> np.ndarray:
    """(H, W) bool mask of a box; all False for None."""
    height, width = size
    mask = np.zeros((height, width), dtype=bool)
    if box is not None:
        x0, y0, x1, y1 = (int(round(v)) for v in box[:4])
        mask[max(0, y0) : min(height, y1), max(0, x0) : min(width, x1)] = True
    return mask


def rle_encode(mask: np.ndarray) -> list[int]:
    """COCO-order uncompressed RLE: column-major, run lengths alternating zeros/ones, starting with zeros."""
    flat = np.asarray(mask, dtype=bool).ravel(order="F")
    changes = np.flatnonzero(flat[1:] != flat[:-1]) + 1
    bounds = np.concatenate([[0], changes, [flat.size]])
    runs = np.diff(bounds).tolist()
    if flat.size and flat[0]:
        runs = [0] + runs
    return [int(r) for r in runs]


def rle_decode(counts: list[int], size: tuple[int, int]) -> np.ndarray:
    height, width = size
    values = np.zeros(len(counts), dtype=bool)
    values[1::2] = True
    flat = np.repeat(values, counts)
    if flat.size != height * width:
        raise ValueError(f"RLE covers {flat.size} pixels, the mask has {height * width}")
    return flat.reshape((width, height)).T


def masks_annotation(masks: list[np.ndarray], fmt: str, out_dir: Path, name: str) -> dict:
    """Per-frame masks -> the manifest's {"format": "rle", ...} or {"format": "png", "paths": [...]}."""
    if fmt == "rle":
        return {"format": "rle", "size": list(masks[0].shape), "counts": [rle_encode(m) for m in masks]}
    from PIL import Image

    folder = out_dir / "masks" / name
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, mask in enumerate(masks):
        path = folder / f"{i:04d}.png"
        with atomic_path(path) as tmp:
            Image.fromarray(np.asarray(mask, np.uint8) * 255).save(tmp, format="PNG")
        paths.append(path.relative_to(out_dir).as_posix())
    return {"format": "png", "paths": paths}


class PersonSegmenter:
    """A local transformers image-segmentation model; keeps its 'person' segment (label containing 'person')."""

    def __init__(self, model_dir: str):
        transformers = require("transformers", "curate", "segmentation masks")
        if not Path(model_dir).is_dir():
            raise UserError(f"segmentation model folder {model_dir} does not exist")
        self.pipe = transformers.pipeline("image-segmentation", model=model_dir, device="cpu")

    def person_mask(self, frame: np.ndarray, body_box: list[float] | None) -> np.ndarray:
        from PIL import Image

        height, width = frame.shape[:2]
        mask = np.zeros((height, width), dtype=bool)
        for segment in self.pipe(Image.fromarray(frame)):
            if "person" in str(segment.get("label", "")).lower():
                mask |= np.asarray(segment["mask"].resize((width, height))) > 127
        # the model may see other people; the clip's person is the one inside the tracked body box
        return mask & box_mask(body_box, (height, width)) if body_box is not None else np.zeros_like(mask)


@lru_cache(maxsize=1)
def person_segmenter(model_dir: str) -> PersonSegmenter:
    return PersonSegmenter(model_dir)
