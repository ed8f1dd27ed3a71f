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


def read_case(path):
    """One forward case of the golden format, whatever its config: every `id_vit_hidden.<k>` in order (the scale
    count is the model's, not ours), `ofs` when the file has one (CogVideoX 1.5 style models), `is_infer` from the
    file's metadata (falling back to the case name). Returns (forward kwargs, expected tensors)."""
    from safetensors import safe_open

    with safe_open(str(path), "pt") as f:
        meta = f.metadata() or {}
    data = load_file(str(path))
    scales = sorted(int(k.rsplit(".", 1)[1]) for k in data if k.startswith("id_vit_hidden."))
    is_infer = meta.get("is_infer", str(path.stem == "infer_cfg")).strip().lower() == "true"
    kwargs = dict(
        hidden_states=data["hidden_states"],
        encoder_hidden_states=data["encoder_hidden_states"],
        encoder_hidden_mask=data.get("encoder_hidden_mask"),
        identity_prompt_embeds=data["identity_prompt_embeds"],
        timestep=data["timestep"],
        ofs=data.get("ofs"),
        timestep_cond=data.get("timestep_cond"),
        image_rotary_emb=(data["rope_cos"], data["rope_sin"]) if "rope_cos" in data else None,
        id_cond=data["id_cond"],
        id_vit_hidden=[data[f"id_vit_hidden.{k}"] for k in scales],
        is_infer=is_infer,
        return_dict=False,
    )
    expected = {k.split(".", 1)[1]: v for k, v in data.items() if k.startswith("expected.")}
    return kwargs, expected


@pytest.mark.parametrize("case", ["train_batch", "infer_cfg"])
def test_forward_reproduces_release(golden, golden_model, case):
    kw, expected = read_case(golden / f"{case}.safetensors")
    vit = kw["id_vit_hidden"]
    with torch.no_grad():
        fused = golden_model.encode_identity(kw["identity_prompt_embeds"], kw["id_cond"], vit)
        text = golden_model.build_text_stream(kw["encoder_hidden_states"], kw["encoder_hidden_mask"], fused)
        taii_t = kw["timestep"][:1] if kw["is_infer"] else kw["timestep"]
        taii = golden_model.time_aware_tokens(fused, kw["id_cond"], vit, taii_t)
        sample = golden_model(**kw)[0]
    assert rel_err(fused, expected["fused_tokens"]) < 1e-5
    assert rel_err(text, expected["text_stream"]) < 1e-5
    assert rel_err(taii, expected["taii_tokens"]) < 1e-5
    assert rel_err(sample, expected["sample"]) < 1e-5


def test_precomputed_fused_tokens_give_the_same_sample(golden, golden_model):
    """MIF has no timestep: passing W_fusion computed once must not change the output."""
    kw, expected = read_case(golden / "infer_cfg.safetensors")
    with torch.no_grad():
        fused = golden_model.encode_identity(kw["identity_prompt_embeds"], kw["id_cond"], kw["id_vit_hidden"])
        once = golden_model(**{**kw, "identity_prompt_embeds": None}, fused_tokens=fused)[0]
    assert rel_err(once, expected["sample"]) < 1e-5


def test_case_reader_follows_the_file_not_the_tiny_config(tmp_path):
    """A case with three ViT scales, an `ofs` input and is_infer in the metadata is read as such (the held-back
    reference vectors use another config than the shipped golden files)."""
    from safetensors.torch import save_file

    tensors = {"hidden_states": torch.zeros(3, 1, 2, 2, 2), "encoder_hidden_states": torch.zeros(3, 4, 2),
               "encoder_hidden_mask": torch.zeros(3, 4, dtype=torch.long), "identity_prompt_embeds": torch.zeros(1, 2, 2),
               "timestep": torch.tensor([5, 5, 5]), "ofs": torch.tensor([2.0]), "id_cond": torch.zeros(1, 1, 2),
               **{f"id_vit_hidden.{k}": torch.full((1, 2, 2), float(k)) for k in (2, 0, 1, 10)}}
    save_file(tensors, str(tmp_path / "train_batch.safetensors"), metadata={"is_infer": "True"})
    kw, _ = read_case(tmp_path / "train_batch.safetensors")
    assert [h[0, 0, 0].item() for h in kw["id_vit_hidden"]] == [0, 1, 2, 10]
    assert kw["ofs"].item() == 2.0 and kw["is_infer"] is True and kw["image_rotary_emb"] is None


def test_full_size_layout_matches_release(golden):
    layout = json.loads((golden / "official_5b_layout.json").read_text())
    model = build_on_meta(ProteusIDTransformer3DModel, layout["config"])
    shapes = {name: list(t.shape) for name, t in model.state_dict().items()}
    assert shapes == layout["tensors"]
    counts = parameter_counts(model)
    assert counts == layout["params_by_top_module"]
    assert round(sum(counts.values()) / 1e9, 3) == 8.816
