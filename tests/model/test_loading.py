"""Strict loading: every missing, unexpected or mis-shaped tensor is named; configs are validated."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from safetensors.torch import load_file, save_file

from proteus_id import ProteusIDTransformer3DModel
from proteus_id.model.checkpoint import CheckpointError
from proteus_id.testing import tiny_transformer


@pytest.fixture()
def saved(tmp_path):
    model = tiny_transformer(seed=3)
    model.save_pretrained(tmp_path / "transformer")
    return tmp_path / "transformer", model


def _rewrite(folder, edit):
    path = folder / "diffusion_pytorch_model.safetensors"
    state = load_file(str(path))
    edit(state)
    save_file(state, str(path))


def test_round_trip_is_exact(saved):
    folder, model = saved
    loaded = ProteusIDTransformer3DModel.from_pretrained(folder)
    for (name, a), (_, b) in zip(model.state_dict().items(), loaded.state_dict().items()):
        assert torch.equal(a, b), name
    config = json.loads((folder / "config.json").read_text())
    assert config["is_fuse_token_v2"] is True and "LFE_depth" in config  # loadable by the release's class


def test_dtype_on_load_casts_every_tensor_without_a_warning(saved, monkeypatch):
    """torch_dtype casts parameters and buffers alike, and diffusers' spurious "kept in float32: []" warning, which
    every load of the float16-stored toy model printed, is not raised."""
    from diffusers.models import modeling_utils

    warnings = []
    monkeypatch.setattr(modeling_utils.logger, "warning", lambda msg, *a, **k: warnings.append(str(msg)))
    folder, model = saved
    loaded = ProteusIDTransformer3DModel.from_pretrained(folder, torch_dtype=torch.float16)
    assert {t.dtype for t in loaded.state_dict().values()} == {torch.float16}
    for (name, a), (_, b) in zip(model.state_dict().items(), loaded.state_dict().items()):
        assert torch.equal(a.half(), b), name
    assert not [w for w in warnings if "float32" in w]


def test_missing_tensor_is_named(saved):
    folder, _ = saved
    _rewrite(folder, lambda s: s.pop("perceiver_cross_attention.1.to_q.weight"))
    with pytest.raises(CheckpointError, match=r"1 missing: perceiver_cross_attention\.1\.to_q\.weight"):
        ProteusIDTransformer3DModel.from_pretrained(folder)


def test_unexpected_and_misshaped_tensors_are_named(saved):
    folder, _ = saved

    def edit(state):
        state["local_facial_extractor.latents"] = torch.zeros(1, 2, 3)
        state["proj_out.bias"] = torch.zeros(5)

    _rewrite(folder, edit)
    with pytest.raises(CheckpointError) as err:
        ProteusIDTransformer3DModel.from_pretrained(folder)
    assert "1 unexpected: local_facial_extractor.latents" in str(err.value)
    assert "proj_out.bias: checkpoint (5,) vs model (16,)" in str(err.value)


def test_pickle_weights_load_with_weights_only(saved, tmp_path):
    folder, model = saved
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    shutil.copy(folder / "config.json", bin_dir / "config.json")
    torch.save(model.state_dict(), bin_dir / "diffusion_pytorch_model.bin")
    loaded = ProteusIDTransformer3DModel.from_pretrained(bin_dir)
    assert torch.equal(loaded.proj_out.weight, model.proj_out.weight)


def test_not_a_folder_is_a_clear_error(tmp_path):
    with pytest.raises(CheckpointError, match="not a local folder"):
        ProteusIDTransformer3DModel.from_pretrained("fateforward/Proteus-ID", subfolder="transformer")


def test_legacy_lfe_keys_are_accepted_and_kept(saved):
    folder, _ = saved
    config = json.loads((folder / "config.json").read_text())
    config["LFE_num_scale"] = 7  # unused by the model: must be accepted
    (folder / "config.json").write_text(json.dumps(config))
    assert ProteusIDTransformer3DModel.from_pretrained(folder).config.LFE_num_scale == 7


def test_inconsistent_config_is_refused():
    with pytest.raises(ValueError, match="multiple of cross_attn_interval"):
        tiny_transformer(num_layers=3, cross_attn_interval=2)
    with pytest.raises(ValueError, match="not a Proteus-ID transformer"):
        tiny_transformer(is_fuse_token_v2=False)
