"""`proteus-id toy build-model`: the absolute position table is the only difference it makes (same seed, same other
weights), the folder says which it holds, and an existing transformer of other settings is never relabelled."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file

from proteus_id.defaults import DEFAULT_MODEL_DIR
from proteus_id.errors import UserError
from proteus_id.model.transformer import ProteusIDTransformer3DModel
from proteus_id.toyworld.model_folder import build_model_folder

PARTS = {"vae_dir": DEFAULT_MODEL_DIR / "vae", "face_encoder_dir": DEFAULT_MODEL_DIR / "face_encoder"}


def weights(folder):
    return load_file(folder / "transformer" / "diffusion_pytorch_model.safetensors")


def test_absolute_positions_add_only_the_position_table(tmp_path):
    plain = build_model_folder(tmp_path / "plain", **PARTS, seed=3)
    table = build_model_folder(tmp_path / "table", **PARTS, seed=3, absolute_positions=True)
    a, b = weights(plain), weights(table)
    assert set(b) - set(a) == {"patch_embed.pos_embedding"} and set(a) <= set(b)
    assert all(torch.equal(a[k], b[k]) for k in a)  # the table takes no random draws
    assert json.loads((table / "model_index.json").read_text())["toyworld"]["absolute_positions"] is True
    assert json.loads((table / "transformer" / "config.json").read_text())["use_learned_positional_embeddings"]

    # the table marks frames apart: with the same noise in every latent frame (and no rotary tables passed), the
    # frames come out different only with it
    for folder, should_differ in ((plain, False), (table, True)):
        model = ProteusIDTransformer3DModel.from_pretrained(folder / "transformer").eval()
        torch.manual_seed(0)
        one = torch.randn(1, 1, 8, 16, 16)
        hidden = torch.cat([one.expand(1, 5, 8, 16, 16), torch.zeros(1, 5, 8, 16, 16)], dim=2)
        with torch.no_grad():
            out = model(hidden_states=hidden, encoder_hidden_states=torch.zeros(1, 64, 384), timestep=500,
                        use_identity=False, return_dict=False)[0]
        spread = float((out[:, 1:] - out[:, :1]).abs().max())
        assert (spread > 1e-3) == should_differ, (folder.name, spread)


def test_existing_transformer_of_other_settings_is_an_error(tmp_path):
    out = build_model_folder(tmp_path / "m", **PARTS, seed=3)
    before = weights(out)
    with pytest.raises(UserError, match="use_learned_positional_embeddings"):
        build_model_folder(out, **PARTS, seed=3, absolute_positions=True)
    with pytest.raises(UserError, match="use_mif"):
        build_model_folder(out, **PARTS, variant="consisid_like")
    with pytest.raises(UserError, match="init seed 3"):
        build_model_folder(out, **PARTS, seed=4)
    build_model_folder(out, **PARTS, seed=3)  # the same settings: kept as it is
    after = weights(out)
    assert all(torch.equal(before[k], after[k]) for k in before)
