"""The offline dlib backend on a real photo: one face, a stable embedding, the largest of several faces, no face."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch
from PIL import Image

from proteus_id.errors import UserError
from proteus_id.identity.detection import NoFaceError
from proteus_id.identity.dlib_backend import dlib_distance
from proteus_id.identity.features import IdentitySpec

# dlib's own same-person rule is distance < 0.6; the same photo, transformed, should sit far below it
SAME_PHOTO_LIMIT = 0.3


def test_astronaut_has_one_face(astronaut_features):
    f = astronaut_features
    assert f.kind == "dlib" and f.id_cond.shape == (1, 1, 128)
    assert 1.0 < float(f.id_cond.norm()) < 2.0  # dlib embeddings are not unit length (about 1.4)
    left, top, right, bottom = f.face_box
    assert 150 < left < 200 and 60 < top < 100 and 240 < right < 290 and 150 < bottom < 190
    kps = f.keypoints
    assert kps.shape == (5, 2)
    assert kps[0, 0] < kps[1, 0] and kps[3, 0] < kps[4, 0]  # image-left eye / mouth corner first
    assert kps[0, 1] < kps[2, 1] < kps[3, 1]  # eyes above the nose above the mouth
    assert f.face_crop.size == (512, 512) and f.id_vit_hidden == []


def test_aligned_crop_puts_eyes_on_the_template(dlib_backend, astronaut, astronaut_features):
    from proteus_id.identity.alignment import FFHQ_TEMPLATE_512, alignment_matrix

    matrix = alignment_matrix(astronaut_features.keypoints)
    moved = np.c_[astronaut_features.keypoints, np.ones(5)] @ matrix.T
    assert np.abs(moved[:2] - FFHQ_TEMPLATE_512[:2]).max() < 12  # eyes within a few pixels of the FFHQ layout


def test_embedding_stable_under_flip_brightness_and_exif(tmp_path, dlib_backend, astronaut, astronaut_features):
    ref = astronaut_features.id_cond
    flipped = dlib_backend.extract(astronaut[:, ::-1].copy(), name="flipped")
    brighter = dlib_backend.extract(np.clip(astronaut * 1.3, 0, 255).astype(np.uint8), name="brighter")
    darker = dlib_backend.extract((astronaut * 0.7).astype(np.uint8), name="darker")
    sideways = Image.fromarray(astronaut).transpose(Image.Transpose.ROTATE_90)
    exif = Image.Exif()
    exif[0x0112] = 6
    path = tmp_path / "sideways.jpg"
    sideways.save(path, exif=exif, quality=95)
    rotated = dlib_backend.extract(str(path), name=str(path))
    distances = {name: dlib_distance(ref, f.id_cond) for name, f in
                 [("flip", flipped), ("brighter", brighter), ("darker", darker), ("exif", rotated)]}
    cosines = {name: float(torch.nn.functional.cosine_similarity(ref.ravel(), f.id_cond.ravel(), dim=0))
               for name, f in [("flip", flipped), ("exif", rotated)]}
    print("dlib distance to the original:", distances, "cosine:", cosines)
    assert all(d < SAME_PHOTO_LIMIT for d in distances.values()), distances
    assert all(c > 0.97 for c in cosines.values()), cosines
    assert distances["exif"] < 0.1  # same pixels up to JPEG noise


def test_faceless_photo_raises_no_face_error_naming_the_file(tmp_path, dlib_backend, coffee):
    path = tmp_path / "coffee.png"
    Image.fromarray(coffee).save(path)
    with pytest.raises(NoFaceError) as err:
        dlib_backend.extract(str(path), name=str(path))
    assert str(path) in str(err.value)


def test_several_faces_take_the_largest_with_a_warning(dlib_backend, astronaut, astronaut_features, caplog):
    canvas = np.full((700, 1100, 3), 200, np.uint8)
    canvas[:512, :512] = astronaut
    small = np.asarray(Image.fromarray(astronaut).resize((384, 384)))
    canvas[300:684, 650:1034] = small
    with caplog.at_level(logging.WARNING, logger="proteus_id"):
        f = dlib_backend.extract(canvas, name="two.png")
    assert "2 faces in two.png" in caplog.text and "largest" in caplog.text
    assert f.face_box[0] < 512  # the big astronaut on the left
    assert dlib_distance(f.id_cond, astronaut_features.id_cond) < 0.1


def test_dlib_cannot_feed_the_released_model():
    from proteus_id.identity.analyzer import FaceAnalyzer

    with pytest.raises(UserError) as err:
        FaceAnalyzer("dlib", spec=IdentitySpec())  # the released model's spec
    message = str(err.value)
    assert "128-d id_cond" in message and "1280-d id_cond" in message and "5 x 1024-d" in message
    assert "'released' face backend" in message


def test_analyzer_with_a_dlib_model_spec(astronaut):
    from proteus_id.identity.analyzer import FaceAnalyzer

    spec = IdentitySpec(kind="dlib", id_cond_dim=128, vit_dim=0, num_vit_states=0)
    features = FaceAnalyzer("dlib", spec=spec, device="cpu").analyze(Image.fromarray(astronaut).convert("RGBA"))
    assert features.id_cond.shape == (1, 1, 128)


@pytest.mark.parametrize("kind", ["huge", "grey16"])
def test_huge_and_16_bit_grey_photos_still_give_the_face(tmp_path, dlib_backend, astronaut, astronaut_features, kind):
    if kind == "huge":  # 4096 x 4096: analysed at 1024, so the box is in those pixels (2x the original's)
        photo = np.asarray(Image.fromarray(astronaut).resize((4096, 4096), Image.Resampling.BICUBIC))
        f = dlib_backend.extract(photo, name="huge")
        assert np.allclose(f.face_box, np.array(astronaut_features.face_box) * 2, atol=25)  # HOG pyramid steps
        assert dlib_distance(f.id_cond, astronaut_features.id_cond) < SAME_PHOTO_LIMIT
    else:
        grey16 = np.asarray(Image.fromarray(astronaut).convert("L"), np.uint16) * 257
        path = tmp_path / "grey16.png"
        Image.fromarray(grey16).save(path)
        f = dlib_backend.extract(str(path), name=str(path))
        assert f.id_cond.shape == (1, 1, 128)
        assert dlib_distance(f.id_cond, astronaut_features.id_cond) < 0.6  # colour gone, still the same person
