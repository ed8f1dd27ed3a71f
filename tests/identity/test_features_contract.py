"""IdentityFeatures files and IdentitySpec checks: what a model folder says it needs, and the messages."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from proteus_id.errors import UserError
from proteus_id.identity.features import IdentityFeatures, IdentitySpec


def test_save_load_round_trip(tmp_path):
    crop = Image.fromarray(np.arange(48 * 48 * 3, dtype=np.uint8).reshape(48, 48, 3))
    f = IdentityFeatures(torch.randn(1, 1, 20), [torch.randn(1, 10, 16), torch.randn(1, 10, 16)], face_crop=crop,
                         keypoints=np.arange(10, dtype=np.float32).reshape(5, 2), face_box=(3, 4, 40, 44), kind="tiny")
    path = tmp_path / "f.safetensors"
    f.save(path)
    g = IdentityFeatures.load(path)
    assert g.kind == "tiny" and g.face_box == (3, 4, 40, 44)
    torch.testing.assert_close(g.id_cond, f.id_cond)
    assert len(g.id_vit_hidden) == 2 and torch.equal(g.id_vit_hidden[1], f.id_vit_hidden[1])
    assert np.array_equal(np.asarray(g.face_crop), np.asarray(crop)) and np.array_equal(g.keypoints, f.keypoints)
    assert g.spec == IdentitySpec("tiny", 20, 16, 2)
    assert [p.name for p in tmp_path.iterdir()] == ["f.safetensors"]  # no temporary file left


def test_dlib_features_without_vit_states_round_trip(tmp_path):
    f = IdentityFeatures(torch.randn(1, 1, 128), [], kind="dlib")
    f.save(tmp_path / "d.safetensors")
    assert IdentityFeatures.load(tmp_path / "d.safetensors").spec == IdentitySpec("dlib", 128, 0, 0)


def test_spec_from_file_or_transformer_config(tmp_path):
    (tmp_path / "transformer").mkdir()
    (tmp_path / "transformer" / "config.json").write_text(json.dumps({"FT_clip_dim": 20, "FT_vit_dim": 16, "FT_num_scale": 2}))
    assert IdentitySpec.for_model(tmp_path) == IdentitySpec("released", 20, 16, 2)
    IdentitySpec("toyworld", 64, 32, 2, extra={"note": "x"}).write(tmp_path)
    spec = IdentitySpec.for_model(tmp_path)
    assert (spec.kind, spec.id_cond_dim, spec.extra) == ("toyworld", 64, {"note": "x"})
    (tmp_path / "face_encoder" / "identity_spec.json").write_text("{not json")
    with pytest.raises(UserError, match="identity_spec.json is not readable JSON"):
        IdentitySpec.for_model(tmp_path)


def test_mismatch_messages_say_what_the_model_needs():
    spec = IdentitySpec("released", 1280, 1024, 5)
    features = IdentityFeatures(torch.zeros(1, 1, 1280), [torch.zeros(1, 577, 1024)] * 4, kind="other")
    with pytest.raises(UserError, match="4 ViT states, the model needs 5"):
        spec.check(features)
    features = IdentityFeatures(torch.zeros(1, 1, 512), [torch.zeros(1, 577, 768)] * 5, kind="other")
    with pytest.raises(UserError, match=r"id_cond is 512-d, the model needs 1280-d.*ViT states are \[768\]-d"):
        spec.check(features)
    spec.check(IdentityFeatures(torch.zeros(1, 1, 1280), [torch.zeros(1, 577, 1024)] * 5))  # fits: no error
