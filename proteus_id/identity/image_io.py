"""Photos in, RGB uint8 arrays out: paths, PIL images or numpy arrays; EXIF rotation applied; RGBA, greyscale,
palette and 16-bit images converted; huge images downscaled."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from ..errors import UserError

MAX_SIDE = 2048


class ImageReadError(UserError):
    """A file that is missing, empty or not an image."""


def load_image(source, max_side: int = MAX_SIDE, name: str | None = None) -> np.ndarray:
    """Any photo -> (H, W, 3) uint8 RGB with EXIF orientation applied and the longer side at most `max_side`."""
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if path.is_dir():
            raise ImageReadError(f"image {path} is a folder, not an image file")
        if not path.is_file():
            raise ImageReadError(f"image {path} does not exist")
        if path.stat().st_size == 0:
            raise ImageReadError(f"image {path} is an empty file")
        try:
            with Image.open(path) as img:
                img.load()
                image = _to_rgb(ImageOps.exif_transpose(img))
        except (UnidentifiedImageError, OSError, SyntaxError) as err:
            raise ImageReadError(f"{path} is not a readable image ({err.__class__.__name__})") from err
    elif isinstance(source, Image.Image):
        image = _to_rgb(ImageOps.exif_transpose(source))
    elif isinstance(source, np.ndarray):
        image = _to_rgb(Image.fromarray(_array_to_uint8(source)))
    else:
        raise ImageReadError(f"{name or 'image'}: expected a path, PIL image or numpy array, got {type(source).__name__}")
    if max(image.size) > max_side:
        image.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    return np.asarray(image)


def _array_to_uint8(array: np.ndarray) -> np.ndarray:
    if array.dtype == np.uint8:
        return array
    if array.dtype == np.uint16:
        return (array >> 8).astype(np.uint8)
    if np.issubdtype(array.dtype, np.floating):
        scale = 255.0 if array.max(initial=0) <= 1.0 else 1.0
        return np.clip(array * scale, 0, 255).astype(np.uint8)
    return np.clip(array, 0, 255).astype(np.uint8)


def _to_rgb(img: Image.Image) -> Image.Image:
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        array = np.asarray(img)
        array = (array.astype(np.float64) / max(array.max(), 1) * 255).astype(np.uint8)
        return Image.fromarray(array).convert("RGB")
    if img.mode in ("RGBA", "LA") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return img.convert("RGB")
