"""Which face of a photo the identity comes from: the largest one, with a warning when there are several; none is
a `NoFaceError` naming the photo."""

from __future__ import annotations

import logging
from typing import Callable, Sequence, TypeVar

from ..errors import UserError

logger = logging.getLogger("proteus_id")

Face = TypeVar("Face")


class NoFaceError(UserError):
    """No face was found in a photo; the message names the file."""


def choose_largest(faces: Sequence[Face], area: Callable[[Face], float], name: str | None = None) -> Face:
    """The face with the largest box. Several faces: a warning saying which one was used; none: NoFaceError."""
    label = name or "the image"
    if not faces:
        raise NoFaceError(f"no face found in {label}: use a photo where one face is clearly visible (frontal, not tiny)")
    ranked = sorted(faces, key=area, reverse=True)
    if len(ranked) > 1:
        sizes = ", ".join(f"{area(f):.0f}" for f in ranked[:5])
        logger.warning("%d faces in %s; using the largest (box areas in pixels: %s)", len(ranked), label, sizes)
    return ranked[0]


def box_iou(a: Sequence[float], b: Sequence[float]) -> float:
    """Intersection over union of two (left, top, right, bottom) boxes."""
    left, top = max(a[0], b[0]), max(a[1], b[1])
    right, bottom = min(a[2], b[2]), min(a[3], b[3])
    inter = max(0.0, right - left) * max(0.0, bottom - top)
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0
