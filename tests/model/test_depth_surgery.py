"""Adding blocks to a trained transformer: the deepened model starts as exactly the same function, and its new
blocks and injections are live (opening a gate changes the output)."""

from __future__ import annotations

import pytest
import torch

from proteus_id import ProteusIDTransformer3DModel
from proteus_id.model.checkpoint import CheckpointError
from proteus_id.model.depth_surgery import deepen, deepen_folder, new_group_positions
from proteus_id.testing import tiny_identity_features, tiny_transformer


def _run(model, seed: int = 0):
    torch.manual_seed(seed)
    x = torch.randn(2, 3, 8, 8, 8)
    text, mask = torch.randn(2, 16, 32), torch.ones(2, 16, dtype=torch.long)
    id_cond, vit = tiny_identity_features(seed=2)
    with torch.no_grad():
        return model(x, text, mask, torch.randn(1, 5, 32), torch.tensor([700, 40]), id_cond=id_cond,
                     id_vit_hidden=vit, is_infer=True).sample


@pytest.fixture(scope="module")
def pair():
    shallow = tiny_transformer(seed=3, num_layers=4, cross_attn_interval=2)
    state, config = deepen(shallow.state_dict(), dict(shallow.config), new_layers=4)
    deep = ProteusIDTransformer3DModel.from_config(config).eval()
    deep.load_state_dict(state)  # strict: every block and cross-attention of the new depth has its tensors
    return shallow, deep


def test_new_groups_spread_evenly():
    assert new_group_positions(4, 2) == [1, 3]  # 8 -> 12 blocks, interval 2: old old new old old new
    assert new_group_positions(4, 1) == [3]
    assert new_group_positions(2, 2) == [0, 1]


def test_deepened_model_is_the_same_function(pair):
    shallow, deep = pair
    assert deep.config.num_layers == 8 and len(deep.perceiver_cross_attention) == 4
    torch.testing.assert_close(_run(deep), _run(shallow), rtol=1e-5, atol=1e-5)
    # old groups 0, 1 sit in slots 0 and 2; slots 1 and 3 are copies of them with closed gates
    old, new = shallow.state_dict(), deep.state_dict()
    torch.testing.assert_close(new["transformer_blocks.4.attn1.to_q.weight"], old["transformer_blocks.2.attn1.to_q.weight"])
    torch.testing.assert_close(new["transformer_blocks.6.attn1.to_q.weight"], old["transformer_blocks.2.attn1.to_q.weight"])
    assert new["perceiver_cross_attention.3.to_out.weight"].abs().sum() == 0
    assert old["transformer_blocks.2.norm1.linear.bias"].abs().sum() > 0


@pytest.mark.parametrize("name", ["transformer_blocks.2.norm1.linear.bias", "transformer_blocks.7.norm2.linear.bias",
                                  "perceiver_cross_attention.1.to_out.weight"])
def test_new_blocks_and_injections_are_live(pair, name):
    shallow, deep = pair
    opened = ProteusIDTransformer3DModel.from_config(deep.config).eval()
    state = {k: v.clone() for k, v in deep.state_dict().items()}
    state[name].normal_(0, 0.5, generator=torch.Generator().manual_seed(0))
    opened.load_state_dict(state)
    assert (_run(opened) - _run(shallow)).abs().max() > 1e-3


def test_folder_round_trip_and_refusals(tmp_path, pair, capsys):
    from proteus_id.cli.main import main

    shallow, _ = pair
    shallow.save_pretrained(tmp_path / "shallow")
    out = deepen_folder(tmp_path / "shallow", tmp_path / "deep", new_layers=2)
    loaded = ProteusIDTransformer3DModel.from_pretrained(out)
    assert loaded.config.num_layers == 6
    torch.testing.assert_close(_run(loaded.eval()), _run(shallow), rtol=1e-5, atol=1e-5)
    assert not list(tmp_path.glob("deep/.*.tmp"))
    with pytest.raises(CheckpointError, match="multiple of cross_attn_interval"):
        deepen(shallow.state_dict(), dict(shallow.config), new_layers=3)
    assert main(["toy", "add-blocks", "--transformer", str(out), "--out", str(tmp_path / "x"), "--new-layers", "1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "multiple of cross_attn_interval" in err[0]
    assert main(["toy", "add-blocks", "--transformer", str(out), "--out", str(tmp_path / "y"), "--new-layers", "2"]) == 0
    assert ProteusIDTransformer3DModel.from_pretrained(tmp_path / "y").config.num_layers == 8
