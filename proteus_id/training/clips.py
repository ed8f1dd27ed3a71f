"""A manifest row -> the frames, masks and reference image that precompute turns into features.

Frames: `num_frames` frames from `start_frame` every `frame_stride` frames (a smaller stride when the clip is too
short for the configured one; the stride used is recorded), scaled to cover height x width and centre-cropped.
Masks follow the same geometry. Person mask: the annotation's person masks, else its person boxes, else a body box
grown from the face boxes (annotations.body_box_from_face), else the whole frame; the source used is recorded.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import UserError
from .annotations import body_box_from_face, box_or_none, boxes_to_masks, load_masks
from .manifest import ManifestRow


class ItemError(UserError):
    """This item cannot be used (the message is the reason counted in the summary)."""


@dataclass
class Geometry:
    """Source (H, W) -> scaled by `scale`, then cropped at (top, left) to (height, width)."""

    source: tuple[int, int]
    height: int
    width: int
    scale: float
    top: int
    left: int

    @classmethod
    def cover(cls, source_h: int, source_w: int, height: int, width: int) -> "Geometry":
        scale = max(height / source_h, width / source_w)
        scaled_h, scaled_w = round(source_h * scale), round(source_w * scale)
        return cls((source_h, source_w), height, width, scale, (scaled_h - height) // 2, (scaled_w - width) // 2)

    def _scaled(self) -> tuple[int, int]:
        return max(self.height, round(self.source[0] * self.scale)), max(self.width, round(self.source[1] * self.scale))

    def apply(self, maps: torch.Tensor) -> torch.Tensor:
        """(N, C, H, W) float -> (N, C, height, width): antialiased bilinear resize, then the centre crop."""
        scaled = F.interpolate(maps, size=self._scaled(), mode="bilinear", align_corners=False, antialias=True)
        return scaled[..., self.top : self.top + self.height, self.left : self.left + self.width]

    def box(self, box):
        x0, y0, x1, y1 = (v * self.scale for v in box[:4])
        return (x0 - self.left, y0 - self.top, x1 - self.left, y1 - self.top, *box[4:])


@dataclass
class ClipData:
    frames: np.ndarray  # (F, height, width, 3) uint8
    person_mask: np.ndarray  # (F, height, width) float32 in [0, 1]
    face_mask: np.ndarray | None  # (F, height, width) or None when the row has no face annotation
    reference: np.ndarray  # the reference image (source resolution) for the face backend
    stride: int
    notes: dict = field(default_factory=dict)


def choose_stride(clip_frames: int, num_frames: int, stride: int) -> int:
    """The configured stride, or the largest smaller one that fits; ItemError when even stride 1 does not."""
    if clip_frames < num_frames:
        raise ItemError(f"clip has {clip_frames} frames, training needs {num_frames}")
    if num_frames == 1:
        return stride
    return min(stride, (clip_frames - 1) // (num_frames - 1))


def decode_frames(path, indices: list[int]) -> dict[int, np.ndarray]:
    """Decode the file up to the last wanted index; {index: (H, W, 3) uint8}."""
    from ..pipeline.video import read_video

    try:
        frames, _ = read_video(path, max_frames=max(indices) + 1)
    except ValueError as err:
        raise ItemError(str(err)) from err
    missing = [i for i in indices if i >= len(frames)]
    if missing:
        raise ItemError(f"video {path} decodes to {len(frames)} frames; frame {missing[0]} is needed")
    return {i: frames[i] for i in indices}


def load_clip(row: ManifestRow, height: int, width: int, num_frames: int, frame_stride: int) -> ClipData:
    stride = choose_stride(row.num_frames, num_frames, frame_stride)
    relative = [k * stride for k in range(num_frames)]
    wanted = [row.start_frame + r for r in relative]
    if row.reference.frame is not None:
        wanted.append(row.reference.frame)
    decoded = decode_frames(row.video, wanted)
    source = decoded[row.start_frame]
    geometry = Geometry.cover(source.shape[0], source.shape[1], height, width)
    pixels = torch.from_numpy(np.stack([decoded[row.start_frame + r] for r in relative])).permute(0, 3, 1, 2).float()
    frames = geometry.apply(pixels).round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy()
    notes = {"stride": stride} if stride != frame_stride else {}

    if row.reference.frame is not None:
        reference = decoded[row.reference.frame]
    else:
        from ..identity.image_io import load_image

        reference = load_image(row.reference.image)

    person, notes["person_mask"] = _person_mask(row, relative, geometry)
    face, notes["face_mask"] = _face_mask(row, relative, geometry)
    return ClipData(frames, person, face, reference, stride, notes)


def _masks(row: ManifestRow, key: str, relative: list[int], geometry: Geometry) -> np.ndarray:
    masks = load_masks(row.annotations[key], row.base_dir, relative, key=f"annotations.{key}")
    return geometry.apply(torch.from_numpy(masks)[:, None]).squeeze(1).clamp(0, 1).numpy()


def _boxes(row: ManifestRow, key: str, relative: list[int], geometry: Geometry, grow=None) -> np.ndarray:
    boxes = []
    for r in relative:
        box = box_or_none(row.annotations[key][r])
        if box is not None and grow is not None:
            box = grow(box)
        boxes.append(geometry.box(box) if box is not None else None)
    return boxes_to_masks(boxes, geometry.height, geometry.width)


def _person_mask(row: ManifestRow, relative: list[int], geometry: Geometry) -> tuple[np.ndarray, str]:
    ann = row.annotations
    if ann.get("person_masks"):
        return _masks(row, "person_masks", relative, geometry), "person_masks"
    if ann.get("person_boxes"):
        return _boxes(row, "person_boxes", relative, geometry), "person_boxes"
    if ann.get("face_boxes"):
        grow = lambda box: body_box_from_face(box, *geometry.source)  # noqa: E731
        return _boxes(row, "face_boxes", relative, geometry, grow), "body_box_from_face"
    return np.ones((len(relative), geometry.height, geometry.width), np.float32), "whole_frame"


def _face_mask(row: ManifestRow, relative: list[int], geometry: Geometry) -> tuple[np.ndarray | None, str]:
    ann = row.annotations
    if ann.get("face_masks"):
        return _masks(row, "face_masks", relative, geometry), "face_masks"
    if ann.get("face_boxes"):
        return _boxes(row, "face_boxes", relative, geometry), "face_boxes"
    return None, "none"
