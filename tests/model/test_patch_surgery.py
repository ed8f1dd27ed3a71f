"""Halving the patch size of a trained transformer: the embedding, output and RoPE keep the old model's meaning."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F

from proteus_id import ProteusIDTransformer3DModel
from proteus_id.model.checkpoint import CheckpointError
from proteus_id.model.patch_surgery import halve_patch_size, halve_patch_size_folder
from proteus_id.pipeline.pipeline import ProteusIDPipeline
from proteus_id.testing import tiny_transformer


@pytest.fixture(scope="module")
def pair():
    coarse = tiny_transformer(seed=5)
    state, config = halve_patch_size(coarse.state_dict(), dict(coarse.config))
    fine = ProteusIDTransformer3DModel.from_config(config).eval()
    fine.load_state_dict(state)
    return coarse, fine


def _rotary(model, height: int, width: int, frames: int):
    holder = SimpleNamespace(transformer=SimpleNamespace(config=model.config), vae_scale_factor_spatial=4)
    return ProteusIDPipeline.rotary_embeddings(holder, height, width, frames, torch.device("cpu"))


def test_block_constant_latent_embeds_as_before(pair):
    coarse, fine = pair
    frames, channels, h, w = 3, coarse.config.in_channels, 4, 4
    blocks = torch.randn(1, frames, channels, h, w)
    latent = blocks.repeat_interleave(2, dim=3).repeat_interleave(2, dim=4)  # constant over each 2 x 2 block
    text = torch.randn(1, 5, coarse.config.text_embed_dim)
    with torch.no_grad():
        old = coarse.patch_embed(text, latent)[:, 5:].reshape(1, frames, h, w, -1)
        new = fine.patch_embed(text, latent)[:, 5:].reshape(1, frames, 2 * h, 2 * w, -1)
    for dy in (0, 1):
        for dx in (0, 1):
            torch.testing.assert_close(new[:, :, dy::2, dx::2], old, rtol=1e-5, atol=1e-5)


def test_output_is_the_mean_of_the_four_sub_positions(pair):
    coarse, fine = pair
    frames, h, w = 2, 3, 4
    tokens = torch.randn(1, frames * h * w, coarse.config.num_attention_heads * coarse.config.attention_head_dim)
    with torch.no_grad():
        old = coarse._unpatchify(coarse.proj_out(tokens), 1, frames, 2 * h, 2 * w)
        copies = tokens.reshape(1, frames, h, w, -1).repeat_interleave(2, dim=2).repeat_interleave(2, dim=3)
        new = fine._unpatchify(fine.proj_out(copies.flatten(1, 3)), 1, frames, 2 * h, 2 * w)
    pooled = F.avg_pool2d(old.flatten(0, 1), 2).repeat_interleave(2, dim=-2).repeat_interleave(2, dim=-1)
    torch.testing.assert_close(new.flatten(0, 1), pooled, rtol=1e-5, atol=1e-6)


def test_rope_positions_stay_on_the_old_grid(pair):
    coarse, fine = pair
    assert fine.config.patch_size == 1 and fine.config.rope_patch_size == 2
    assert fine.config.sample_height == coarse.config.sample_height  # the default video size is unchanged
    size, frames = 32, 3  # 32 px / VAE 4 = 8 latent pixels: a 4 x 4 coarse grid, an 8 x 8 fine one
    old = [t.reshape(frames, 4, 4, -1) for t in _rotary(coarse, size, size, frames)]
    new = [t.reshape(frames, 8, 8, -1) for t in _rotary(fine, size, size, frames)]
    for a, b in zip(old, new):
        torch.testing.assert_close(b[:, ::2, ::2], a)  # fine token (2i, 2j) sits where coarse token (i, j) did
        assert not torch.allclose(b[:, 1::2, 1::2], a)  # and the others in between
    plain = ProteusIDTransformer3DModel.from_config({**dict(fine.config), "rope_patch_size": None})
    assert not torch.allclose(_rotary(plain, size, size, frames)[0], _rotary(fine, size, size, frames)[0])


def test_folder_round_trip_and_refusals(tmp_path, pair):
    coarse, _ = pair
    coarse.save_pretrained(tmp_path / "coarse")
    out = halve_patch_size_folder(tmp_path / "coarse", tmp_path / "fine")
    loaded = ProteusIDTransformer3DModel.from_pretrained(out)  # strict: every tensor fits the new config
    assert loaded.config.patch_size == 1 and loaded.patch_embed.proj.weight.shape[-2:] == (1, 1)
    assert not list(tmp_path.glob("fine/.*.tmp"))
    with pytest.raises(CheckpointError, match="2 x 2"):
        halve_patch_size(loaded.state_dict(), dict(loaded.config))
    with pytest.raises(CheckpointError, match="learned absolute position"):
        halve_patch_size(coarse.state_dict(), {**dict(coarse.config), "use_learned_positional_embeddings": True})
    with pytest.raises(ValueError, match="rope_patch_size"):
        tiny_transformer(rope_patch_size=3)
    with pytest.raises(ValueError, match="patch_size_t"):
        tiny_transformer(rope_patch_size=4, patch_size_t=2)


def test_command_writes_the_folder_and_refuses_bad_input(tmp_path, pair, capsys):
    from proteus_id.cli.main import main

    coarse, _ = pair
    coarse.save_pretrained(tmp_path / "coarse")
    assert main(["toy", "halve-patches", "--transformer", str(tmp_path / "coarse"), "--out", str(tmp_path / "fine")]) == 0
    assert ProteusIDTransformer3DModel.from_pretrained(tmp_path / "fine").config.patch_size == 1
    assert main(["toy", "halve-patches", "--transformer", str(tmp_path / "fine"), "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "2 x 2" in err[0]
