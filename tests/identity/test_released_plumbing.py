"""The released face backend's plumbing, with stand-ins of the released models' signatures (see released_standins).

antelopev2 runs for real through insightface's model zoo on onnxruntime (stand-in ONNX files in the released
layout); RetinaFace, BiSeNet and EVA02 are torch stand-ins. Checked: the largest face feeds ArcFace, id_cond is
[ArcFace 512 unnormalised ; EVA 768 L2-normalised], the crop is aligned on RetinaFace's keypoints, parsing paints the
background white, EVA sees the grey crop at 336 with CLIP's normalisation, 5 hidden states come back, the ArcFace
fallback on the aligned crop, NoFaceError, and the clear errors for missing files and packages.
"""

from __future__ import annotations

import logging
import pickle

import numpy as np
import pytest
import torch

from proteus_id.errors import MissingDependencyError, UserError
from proteus_id.identity import released_models
from proteus_id.identity.alignment import align_face
from proteus_id.identity.detection import NoFaceError
from proteus_id.identity.released import ReleasedFaceBackend, ReleasedFaceModels
from released_standins import (
    CLOTH, SKIN, EvaStandIn, ParserStandIn, RetinaFaceStandIn, arcface_reference, standin_labels, write_arcface,
    write_scrfd,
)

pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")
pytest.importorskip("insightface")

# the astronaut's face (skimage.data.astronaut, 512 x 512): box and 5 keypoints in image pixels
ASTRONAUT_BOX = np.array([175.0, 76.0, 265.0, 166.0])
ASTRONAUT_KPS = np.array([[203.2, 101.5], [246.5, 104.2], [225.0, 127.0], [201.0, 139.0], [246.0, 141.0]])
SMALL_BOX = np.array([400.0, 400.0, 440.0, 440.0])  # a second, smaller "face"
SMALL_KPS = np.array([[410, 412], [430, 412], [420, 420], [412, 430], [428, 430]], np.float64)
SCALE = 640 / 512  # SCRFD works in a 640 x 640 frame


def _face_dir(tmp_path, faces):
    face_dir = tmp_path / "face_encoder"
    write_scrfd(face_dir / released_models.FILES["detector"][0], faces)
    write_arcface(face_dir / released_models.FILES["arcface"][0])
    return face_dir


def _backend(face_dir, retina_rows):
    detector, arcface = released_models.load_antelopev2(face_dir, "cpu")
    models = ReleasedFaceModels(detector, arcface, RetinaFaceStandIn(retina_rows), ParserStandIn(),
                                released_models.EvaVision(EvaStandIn(), EvaStandIn.image_mean, EvaStandIn.image_std, 336))
    return ReleasedFaceBackend(models=models), models


def _retina_row(box, kps, score=0.99):
    return np.concatenate([box, [score], np.asarray(kps).ravel()])


@pytest.fixture(scope="module")
def two_faces(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("released")
    faces = [(ASTRONAUT_BOX * SCALE, ASTRONAUT_KPS * SCALE, 0.9), (SMALL_BOX * SCALE, SMALL_KPS * SCALE, 0.8)]
    return _face_dir(tmp, faces)


def test_features_from_the_largest_face(two_faces, astronaut, caplog):
    retina_kps = ASTRONAUT_KPS + 1.5  # RetinaFace's own keypoints, slightly different from antelopev2's
    backend, models = _backend(two_faces, [_retina_row(ASTRONAUT_BOX, retina_kps), _retina_row(SMALL_BOX, SMALL_KPS)])
    with caplog.at_level(logging.WARNING, logger="proteus_id"):
        f = backend.extract(astronaut, name="astronaut.png")
    assert "2 faces in astronaut.png" in caplog.text

    # shapes of the released contract
    assert f.kind == "released" and f.id_cond.shape == (1, 1, 1280)
    assert len(f.id_vit_hidden) == 5 and all(h.shape == (1, 577, 1024) for h in f.id_vit_hidden)
    assert backend.produces.id_cond_dim == 1280

    # ArcFace part: the stand-in network on insightface's 112 crop of the LARGEST face, not normalised
    from insightface.utils import face_align

    bgr = np.ascontiguousarray(astronaut[:, :, ::-1])
    expected_arc = arcface_reference(face_align.norm_crop(bgr, landmark=f.keypoints, image_size=112))
    np.testing.assert_allclose(f.id_cond[0, 0, :512].numpy(), expected_arc[0], rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(f.keypoints, ASTRONAUT_KPS, atol=0.05)  # SCRFD decoding back to image pixels
    assert abs(np.linalg.norm(expected_arc) - 1) > 0.1  # so "not normalised" is a real check
    assert np.allclose(f.face_box, ASTRONAUT_BOX, atol=1)

    # EVA part: unit length, and it is the stand-in's output on what it was given, normalised
    eva_part = f.id_cond[0, 0, 512:]
    assert torch.isclose(eva_part.norm(), torch.tensor(1.0), atol=1e-5)
    with torch.no_grad():
        raw, hidden = EvaStandIn()(models.eva.model.inputs[-1], return_hidden=True)
    torch.testing.assert_close(eva_part, raw[0] / raw[0].norm(), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(f.id_vit_hidden[2], hidden[2])

    # the aligned crop follows RetinaFace's keypoints onto the FFHQ-512 layout
    assert np.array_equal(np.asarray(f.aligned_crop), align_face(astronaut, retina_kps, 512))
    assert models.retinaface.calls[0][1] == 0.97

    # BiSeNet saw the aligned crop with ImageNet normalisation
    seen = models.parser.inputs[-1][0] * torch.tensor([0.229, 0.224, 0.225]).view(3, 1, 1) + torch.tensor([0.485, 0.456, 0.406]).view(3, 1, 1)
    torch.testing.assert_close(seen, torch.from_numpy(np.array(f.aligned_crop)).permute(2, 0, 1).float() / 255, atol=1e-5, rtol=0)

    # white outside the face (background and cloth), the aligned colours inside it
    labels = standin_labels().numpy()
    crop, aligned = np.asarray(f.face_crop).astype(int), np.asarray(f.aligned_crop).astype(int)
    assert (crop[labels == CLOTH] == 255).all() and (crop[labels == 0] == 255).all()
    assert np.abs(crop[labels == SKIN] - aligned[labels == SKIN]).max() <= 1
    assert f.parsed_crop is f.face_crop  # the release feeds the white-background colour crop to the VAE

    # EVA saw a 336 x 336 GREY crop (equal channels) with white background, in CLIP's normalisation
    x = models.eva.model.inputs[-1][0]
    assert x.shape == (3, 336, 336)
    pixels = x * torch.tensor(EvaStandIn.image_std).view(3, 1, 1) + torch.tensor(EvaStandIn.image_mean).view(3, 1, 1)
    assert torch.allclose(pixels[0], pixels[1], atol=1e-5) and torch.allclose(pixels[1], pixels[2], atol=1e-5)
    assert torch.allclose(pixels[:, :5, :5], torch.ones(3, 5, 5), atol=1e-4)
    grey = (0.299 * aligned[256, 256, 0] + 0.587 * aligned[256, 256, 1] + 0.114 * aligned[256, 256, 2]) / 255
    assert abs(float(pixels[0, 168, 168]) - grey) < 0.03


def test_arcface_falls_back_to_the_aligned_crop(tmp_path, astronaut, caplog):
    face_dir = _face_dir(tmp_path, [])  # antelopev2 sees no face
    backend, _ = _backend(face_dir, [_retina_row(ASTRONAUT_BOX, ASTRONAUT_KPS)])
    with caplog.at_level(logging.WARNING, logger="proteus_id"):
        f = backend.extract(astronaut, name="astronaut.png")
    assert "antelopev2 found no face" in caplog.text
    import cv2

    aligned_bgr = np.ascontiguousarray(np.asarray(f.aligned_crop)[:, :, ::-1])
    expected = arcface_reference(cv2.resize(aligned_bgr, (112, 112)))
    np.testing.assert_allclose(f.id_cond[0, 0, :512].numpy(), expected[0], rtol=1e-3, atol=1e-3)
    assert f.face_box == tuple(int(v) for v in ASTRONAUT_BOX)  # RetinaFace's box when antelopev2 has none
    np.testing.assert_allclose(f.keypoints, ASTRONAUT_KPS, atol=1e-4)


def test_no_face_anywhere_names_the_photo(tmp_path, coffee):
    backend, _ = _backend(_face_dir(tmp_path, []), [])
    with pytest.raises(NoFaceError, match="coffee.jpg"):
        backend.extract(coffee, name="coffee.jpg")


def test_missing_files_are_named(tmp_path):
    with pytest.raises(UserError, match="face_encoder"):
        ReleasedFaceBackend(None)
    face_dir = tmp_path / "face_encoder"
    face_dir.mkdir()
    (face_dir / "parsing_bisenet.pth").write_bytes(b"x")
    with pytest.raises(UserError) as err:
        ReleasedFaceBackend(face_dir)
    message = str(err.value)
    for key, (rel, _) in released_models.FILES.items():
        assert (rel in message) == (key != "parser"), key


def test_missing_packages_name_the_extra(tmp_path, monkeypatch):
    face_dir = tmp_path / "face_encoder"
    for rel, _ in released_models.FILES.values():
        (face_dir / rel).parent.mkdir(parents=True, exist_ok=True)
        (face_dir / rel).write_bytes(b"x")
    monkeypatch.setitem(released_models.PACKAGES, "proteus_id_no_such_package", "a test")
    with pytest.raises(MissingDependencyError, match=r"proteus_id_no_such_package.*proteus-id\[released-face\]"):
        ReleasedFaceBackend(face_dir)


def test_onnx_provider_follows_the_device(caplog):
    import onnxruntime

    assert released_models.onnx_providers("cpu") == ["CPUExecutionProvider"]
    if "CUDAExecutionProvider" in onnxruntime.get_available_providers():
        assert released_models.onnx_providers("cuda")[0] == "CUDAExecutionProvider"
    else:
        with caplog.at_level(logging.WARNING, logger="proteus_id"):
            assert released_models.onnx_providers("cuda:0") == ["CPUExecutionProvider"]
        assert "onnxruntime-gpu" in caplog.text


class _NotATensor:
    pass


def test_checkpoints_load_with_weights_only(tmp_path):
    net = torch.nn.Sequential(torch.nn.Linear(2, 3))
    path = tmp_path / "net.pth"
    torch.save({f"module.{k}": v for k, v in net.state_dict().items()}, path)  # DataParallel-style prefix
    state = released_models.load_state_dict(path, "a test net")
    fresh = torch.nn.Sequential(torch.nn.Linear(2, 3))
    released_models._load_strict(fresh, state, path)
    torch.testing.assert_close(fresh[0].weight, net[0].weight)

    with pytest.raises(UserError, match="does not fit"):
        released_models._load_strict(torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.Linear(3, 1)), state, path)
    evil = tmp_path / "evil.pth"
    evil.write_bytes(pickle.dumps({"weight": _NotATensor()}))
    with pytest.raises(UserError, match="plain weights file"):
        released_models.load_state_dict(evil, "an arbitrary pickle")


def test_info_line_for_a_model_without_face_models(tmp_path):
    from proteus_id.identity.backends import describe_backend_for_model

    (tmp_path / "face_encoder").mkdir()
    line = describe_backend_for_model(tmp_path)
    assert line.startswith("released (id_cond 1280-d") and "NOT available" in line and "glintr100.onnx" in line
