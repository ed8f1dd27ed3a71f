"""Shipping a model folder with its transformer stored in float16: half the bytes, and the
loader computes in float32 again unless a dtype is asked for."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file

from proteus_id.errors import UserError
from proteus_id.pipeline.folder import inspect_model_folder, load_transformer
from proteus_id.testing import make_tiny_model_folder
from proteus_id.toyworld.ship import folder_megabytes, ship_model

WEIGHTS = "diffusion_pytorch_model.safetensors"


def test_half_storage_loads_back_in_float32(tmp_path):
    model = make_tiny_model_folder(tmp_path / "model")
    (model / "face_encoder").mkdir()
    original = load_file(str(model / "transformer" / WEIGHTS))

    full = ship_model(model, model / "transformer", out=tmp_path / "full")
    half = ship_model(model, model / "transformer", out=tmp_path / "half", half=True)

    stored = load_file(str(half / "transformer" / WEIGHTS))
    assert {v.dtype for v in stored.values()} == {torch.float16}
    assert folder_megabytes(half / "transformer") < 0.6 * folder_megabytes(full / "transformer")

    loaded = load_transformer(inspect_model_folder(half), None)
    assert loaded.dtype == torch.float32
    name = "transformer_blocks.0.attn1.to_q.weight"
    torch.testing.assert_close(loaded.state_dict()[name], original[name].half().float(), rtol=0, atol=0)
    assert load_transformer(inspect_model_folder(half), torch.float16).dtype == torch.float16  # asked for: kept


def test_half_storage_needs_a_single_weights_file(tmp_path):
    model = make_tiny_model_folder(tmp_path / "model")
    (model / "face_encoder").mkdir()
    (model / "transformer" / WEIGHTS).rename(model / "transformer" / "weights.bin")
    with pytest.raises(UserError, match="float16"):
        ship_model(model, model / "transformer", out=tmp_path / "half", half=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]  # no staged copy left behind



def test_toy_ship_writes_the_recommended_sampling(tmp_path, monkeypatch, capsys):
    """`toy ship --guidance 3 --guidance-interval 0 500 --motion-contrast opposite` -> model_index.json's
    generation_defaults, which generate and demo then read (the shipped folder itself is not touched here)."""
    import json

    from proteus_id.cli.main import main
    from proteus_id.toyworld import ship

    model = make_tiny_model_folder(tmp_path / "model")
    (model / "face_encoder").mkdir()
    real = ship.ship_model
    monkeypatch.setattr(ship, "ship_model", lambda *a, **k: real(*a, **{**k, "out": tmp_path / "shipped"}))
    code = main(["toy", "ship", "--model", str(model), "--transformer", str(model / "transformer"), "--steps", "25",
                 "--guidance", "3", "--guidance-interval", "0", "500", "--motion-contrast", "opposite",
                 "--identity-guidance", "2"])
    assert code == 0, capsys.readouterr().err
    index = json.loads((tmp_path / "shipped" / "model_index.json").read_text())
    assert index["generation_defaults"] == {"steps": 25, "guidance": 3.0, "guidance_interval": [0.0, 500.0],
                                            "motion_contrast": "opposite", "identity_guidance": 2.0,
                                            "identity_guidance_negative": "face_latent"}
    code = main(["toy", "ship", "--model", str(model), "--transformer", str(model / "transformer"),
                 "--identity-guidance", "-1"])
    assert code == 2 and "--identity-guidance must be >= 0" in capsys.readouterr().err
