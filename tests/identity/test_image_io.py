"""load_image: every kind of photo becomes (H, W, 3) uint8 RGB, upright, at most max_side; bad files are named."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from proteus_id.identity.image_io import ImageReadError, load_image


def test_exif_rotation_is_applied(tmp_path, astronaut):
    # store the photo rotated on its side with EXIF orientation 6 ("rotate 90 CW to view"): loading must undo it
    sideways = Image.fromarray(astronaut).transpose(Image.Transpose.ROTATE_90)
    exif = Image.Exif()
    exif[0x0112] = 6
    path = tmp_path / "sideways.jpg"
    sideways.save(path, exif=exif, quality=95)
    loaded = load_image(path)
    assert loaded.shape == astronaut.shape
    assert np.abs(loaded.astype(int) - astronaut.astype(int)).mean() < 4  # JPEG noise only


@pytest.mark.parametrize("mode", ["RGBA", "L", "P", "I;16"])
def test_modes_become_rgb_uint8(tmp_path, astronaut, mode):
    img = Image.fromarray(astronaut)
    if mode == "RGBA":
        rgba = np.dstack([astronaut, np.full(astronaut.shape[:2], 255, np.uint8)])
        rgba[:10, :10, 3] = 0  # transparent corner -> white
        img = Image.fromarray(rgba)
    elif mode == "I;16":
        grey16 = (np.asarray(img.convert("L"), np.uint16) * 257)
        img = Image.fromarray(grey16)
        assert img.mode == "I;16"
    elif mode == "P":
        img = img.quantize(256)  # an adaptive 256-colour palette
    else:
        img = img.convert(mode)
    path = tmp_path / f"photo_{mode.replace(';', '')}.png"
    img.save(path)
    out = load_image(path)
    assert out.shape == (512, 512, 3) and out.dtype == np.uint8
    if mode == "RGBA":
        assert (out[:10, :10] == 255).all() and np.array_equal(out[100:, 100:], astronaut[100:, 100:])
    if mode in ("L", "I;16"):
        grey = np.asarray(Image.fromarray(astronaut).convert("L"))
        assert np.abs(out[..., 0].astype(int) - grey).max() <= 1  # 16-bit scaled back to the 8-bit range
    if mode == "P":
        assert out.std() > 30 and np.abs(out.astype(int) - astronaut).mean() < 6  # palette colours, not indices


def test_numpy_inputs_of_other_dtypes(astronaut):
    as_float = load_image(astronaut.astype(np.float32) / 255)
    as_uint16 = load_image(astronaut.astype(np.uint16) * 257)
    assert np.abs(as_float.astype(int) - astronaut).max() <= 1
    assert np.array_equal(as_uint16, astronaut)
    assert load_image(astronaut[..., 0]).shape == (512, 512, 3)  # greyscale array


def test_huge_photo_is_downscaled(astronaut):
    huge = np.tile(astronaut, (6, 4, 1))  # 3072 x 2048
    out = load_image(huge, max_side=1024)
    assert out.shape == (1024, 683, 3)


@pytest.mark.parametrize("case", ["missing", "empty", "text", "corrupt", "folder"])
def test_bad_files_are_named(tmp_path, astronaut, case):
    path = tmp_path / f"{case}.png"
    if case == "folder":
        path.mkdir()
    elif case == "empty":
        path.write_bytes(b"")
    elif case == "text":
        path.write_text("this is not an image\n")
    elif case == "corrupt":
        Image.fromarray(astronaut).save(path)
        path.write_bytes(path.read_bytes()[:300])  # header intact, pixels cut off
    with pytest.raises(ImageReadError) as err:
        load_image(path)
    assert str(path) in str(err.value)
    if case == "folder":
        assert "is a folder" in str(err.value)
