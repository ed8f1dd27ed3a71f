"""Numerical parity with the authors' released code (golden vectors in shared/golden), float32 on CPU."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file

from proteus_id import ProteusIDTransformer3DModel
from proteus_id.model.checkpoint import build_on_meta, parameter_counts


def rel_err(actual: torch.Tensor, expected: torch.Tensor) -> float:
    """max |a - e| / max |e|: the golden README's tolerance measure."""
    return ((actual - expected).abs().max() / expected.abs().max()).item()


@pytest.fixture(scope="module")
def golden_model(golden):
    return ProteusIDTransformer3DModel.from_pretrained(golden / "official_tiny_transformer")


@pytest.mark.parametrize("case", ["train_batch", "infer_cfg"])
def test_forward_reproduces_release(golden, golden_model, case):
    data = load_file(str(golden / f"{case}.safetensors"))
    is_infer = case == "infer_cfg"
    vit = [data[f"id_vit_hidden.{k}"] for k in range(golden_model.config.FT_num_scale)]
    with torch.no_grad():
        fused = golden_model.encode_identity(data["identity_prompt_embeds"], data["id_cond"], vit)
        text = golden_model.build_text_stream(data["encoder_hidden_states"], data["encoder_hidden_mask"], fused)
        taii_t = data["timestep"][:1] if is_infer else data["timestep"]
        taii = golden_model.time_aware_tokens(fused, data["id_cond"], vit, taii_t)
        sample = golden_model(
            hidden_states=data["hidden_states"],
            encoder_hidden_states=data["encoder_hidden_states"],
            encoder_hidden_mask=data["encoder_hidden_mask"],
            identity_prompt_embeds=data["identity_prompt_embeds"],
            timestep=data["timestep"],
            image_rotary_emb=(data["rope_cos"], data["rope_sin"]),
            id_cond=data["id_cond"],
            id_vit_hidden=vit,
            is_infer=is_infer,
            return_dict=False,
        )[0]
    assert rel_err(fused, data["expected.fused_tokens"]) < 1e-5
    assert rel_err(text, data["expected.text_stream"]) < 1e-5
    assert rel_err(taii, data["expected.taii_tokens"]) < 1e-5
    assert rel_err(sample, data["expected.sample"]) < 1e-5


def test_precomputed_fused_tokens_give_the_same_sample(golden, golden_model):
    """MIF has no timestep: passing W_fusion computed once must not change the output."""
    data = load_file(str(golden / "infer_cfg.safetensors"))
    vit = [data["id_vit_hidden.0"], data["id_vit_hidden.1"]]
    kwargs = dict(
        hidden_states=data["hidden_states"], encoder_hidden_states=data["encoder_hidden_states"],
        encoder_hidden_mask=data["encoder_hidden_mask"], timestep=data["timestep"],
        image_rotary_emb=(data["rope_cos"], data["rope_sin"]), id_cond=data["id_cond"], id_vit_hidden=vit,
        is_infer=True, return_dict=False,
    )
    with torch.no_grad():
        fused = golden_model.encode_identity(data["identity_prompt_embeds"], data["id_cond"], vit)
        once = golden_model(**kwargs, fused_tokens=fused)[0]
    assert rel_err(once, data["expected.sample"]) < 1e-5


def test_full_size_layout_matches_release(golden):
    layout = json.loads((golden / "official_5b_layout.json").read_text())
    model = build_on_meta(ProteusIDTransformer3DModel, layout["config"])
    shapes = {name: list(t.shape) for name, t in model.state_dict().items()}
    assert shapes == layout["tensors"]
    counts = parameter_counts(model)
    assert counts == layout["params_by_top_module"]
    assert round(sum(counts.values()) / 1e9, 3) == 8.816
