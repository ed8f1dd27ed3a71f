"""The toyworld face backend: the spec's shapes, deterministic features, the world's face box read from PNGs."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from proteus_id.errors import UserError
from proteus_id.identity.backends import backend_for_model, get_backend
from proteus_id.identity.features import IdentitySpec
from proteus_id.toyworld.identity_encoder import (CROP_SIZE, ToyIdentityEncoder, face_crop_of, save_encoder,
                                                  save_world_frame)
from proteus_id.toyworld.traits import sample_identity
from proteus_id.toyworld.world import crop_face, make_clip, render_clip, render_reference


@pytest.fixture(scope="module")
def face_dir(tmp_path_factory):
    torch.manual_seed(0)
    return save_encoder(ToyIdentityEncoder().eval(), tmp_path_factory.mktemp("model") / "face_encoder")


def test_features_have_the_spec_shapes_and_repeat(face_dir):
    spec = json.loads((face_dir / "identity_spec.json").read_text())
    backend = get_backend("toyworld", face_dir)
    reference = render_reference(sample_identity(7), 0)
    a, b = backend.extract(reference), backend.extract(reference)
    assert a.kind == "toyworld"
    assert tuple(a.id_cond.shape) == (1, 1, spec["id_cond_dim"])
    assert [tuple(h.shape) for h in a.id_vit_hidden] == [(1, 17, spec["vit_dim"])] * spec["num_vit_states"]
    assert torch.equal(a.id_cond, b.id_cond)
    IdentitySpec.for_model(face_dir.parent).check(a)  # the model folder's spec accepts them
    other = backend.extract(render_reference(sample_identity(8), 0))
    assert not torch.allclose(a.id_cond, other.id_cond)
    # the CLS-like first token is the mean of the 16 spatial tokens
    assert torch.allclose(a.id_vit_hidden[0][0, 0], a.id_vit_hidden[0][0, 1:].mean(0), atol=1e-5)


def test_png_with_the_worlds_face_box_is_cropped_there(face_dir, tmp_path):
    clip = render_clip(make_clip(1300, 0, motion="walk left"))
    path = save_world_frame(clip.frames[3], clip.face_boxes[3], tmp_path / "frame.png")
    crop, box = face_crop_of(path)
    expected = crop_face(clip.frames[3], [float(f"{v:.2f}") for v in clip.face_boxes[3]], CROP_SIZE)  # as stored
    assert np.array_equal(np.asarray(crop), expected)
    assert box == tuple(int(round(v)) for v in clip.face_boxes[3])
    # any other image: its centred square, resized
    crop, box = face_crop_of(np.zeros((40, 80, 3), np.uint8))
    assert crop.size == (CROP_SIZE, CROP_SIZE) and box == (20, 0, 60, 40)


def test_backend_needs_the_trained_encoder(tmp_path):
    with pytest.raises(UserError, match="face_encoder"):
        get_backend("toyworld", None)
    (tmp_path / "face_encoder").mkdir()
    (tmp_path / "face_encoder" / "identity_spec.json").write_text(json.dumps({"kind": "toyworld"}))
    with pytest.raises(UserError, match="train-encoder"):
        backend_for_model(tmp_path)
