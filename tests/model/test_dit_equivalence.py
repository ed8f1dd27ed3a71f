"""Our DiT path is diffusers' CogVideoX DiT: with the identity injection off and the same text stream, the outputs
are equal, across the configurations the released code supports (1.0 and 1.5 patching, ofs embedding, learned
positional embeddings, non-square grids, ragged prompt masks, an empty prompt)."""

from __future__ import annotations

import pytest
import torch
from diffusers import CogVideoXTransformer3DModel
from diffusers.models.embeddings import get_3d_rotary_pos_embed

from proteus_id.testing import TINY_TRANSFORMER_CONFIG, tiny_identity_features, tiny_transformer

COGVIDEOX_KEYS = set(CogVideoXTransformer3DModel.__init__.__wrapped__.__code__.co_varnames) - {"self"}


@pytest.mark.parametrize(
    "overrides, frames, height, width",
    [
        ({}, 3, 8, 12),  # CogVideoX 1.0, RoPE, non-square
        ({"patch_size_t": 2, "ofs_embed_dim": 16, "num_layers": 4, "cross_attn_interval": 2}, 4, 12, 8),  # 1.5 style
        ({"use_rotary_positional_embeddings": False}, 3, 8, 8),  # sinusoidal positions
    ],
)
def test_dit_matches_diffusers_without_identity(overrides, frames, height, width):
    model = tiny_transformer(seed=7, **overrides)
    dit_config = {k: v for k, v in model.config.items() if k in COGVIDEOX_KEYS}
    reference = CogVideoXTransformer3DModel(**dit_config).eval()
    missing, unexpected = reference.load_state_dict(model.state_dict(), strict=False)
    assert not missing and all(k.split(".")[0] in {"fuse_token_former", "fuse_token_adapter", "fuse_facital_attention", "perceiver_cross_attention"} for k in unexpected)

    torch.manual_seed(0)
    batch = 3
    x = torch.randn(batch, frames, model.config.in_channels, height, width)
    text = torch.randn(batch, 16, 32)
    mask = torch.zeros(batch, 16, dtype=torch.long)
    mask[0, :5], mask[1, :16] = 1, 1  # row 2: an empty prompt
    t = torch.tensor([999, 500, 3])
    ofs = torch.full((1,), 2.0) if model.config.ofs_embed_dim else None
    rope = None
    if model.config.use_rotary_positional_embeddings:
        p, p_t = model.config.patch_size, model.config.patch_size_t
        temporal = frames if p_t is None else (frames + p_t - 1) // p_t
        rope = get_3d_rotary_pos_embed(model.config.attention_head_dim, ((0, 0), (height // p, width // p)),
                                       (height // p, width // p), temporal)
    num_fused = model.config.FT_num_querie
    zeros = torch.zeros(1, num_fused, 32)
    stream = model.build_text_stream(text, mask, zeros)
    with torch.no_grad():
        ours = model(x, text, mask, timestep=t, ofs=ofs, image_rotary_emb=rope, use_identity=False).sample
        theirs = reference(x, stream, t, ofs=ofs, image_rotary_emb=rope).sample
    torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-5)


def test_identity_changes_the_output_and_batches_broadcast():
    model = tiny_transformer(seed=1)
    torch.manual_seed(0)
    x = torch.randn(3, 3, 8, 8, 8)
    text, mask = torch.randn(3, 16, 32), torch.ones(3, 16, dtype=torch.long)
    id_prompt = torch.randn(1, 5, 32)
    id_cond, vit = tiny_identity_features(seed=2)
    t = torch.tensor([400, 400, 400])
    with torch.no_grad():
        one = model(x, text, mask, id_prompt, t, id_cond=id_cond, id_vit_hidden=vit, is_infer=True).sample
        per_row = model(x, text, mask, id_prompt.expand(3, -1, -1), t, id_cond=id_cond.expand(3, -1, -1),
                        id_vit_hidden=[h.expand(3, -1, -1) for h in vit]).sample
        without = model(x, text, mask, timestep=t, use_identity=False).sample
    torch.testing.assert_close(one, per_row, rtol=1e-5, atol=1e-5)  # one identity row serves the batch exactly
    assert (one - without).abs().max() > 1e-3
