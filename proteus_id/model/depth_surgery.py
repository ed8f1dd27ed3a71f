"""Deepening a trained transformer: more blocks, the same function at the start of fine-tuning.

Why: at 8 blocks x 192 wide the toy model trades identity against everything off the face whatever the loss's share
inside the face (docs/toyworld.md, "Inside the face"), which points at capacity. Training a deeper model from scratch
costs the whole schedule again; this grows the trained one (progressive stacking, Gong et al. 2019; zero-gated new
blocks as in DiT's adaLN-zero):

    groups     the blocks come in groups of `cross_attn_interval` (the identity cross-attention follows the first
               block of each group), so new blocks are added as whole groups and the injection pattern is kept;
    new group  a copy of the old group before it, with the gate rows of each block's two adaptive norms (attention
               and feed-forward, video and text streams) and the output projection of its cross-attention set to
               zero: every new block and injection adds exactly nothing until fine-tuning opens the gates, and the
               copied weights give the opened gates something already sensible to pass through.

Placement: the new groups are spread evenly, each after the old group whose index is closest to its share of the
depth (8 -> 12 blocks with interval 2: old, old, new, old, old, new).
"""

from __future__ import annotations

from pathlib import Path

import torch

from .checkpoint import CheckpointError, read_config, read_state_dict, write_transformer_folder

__all__ = ["deepen", "deepen_folder", "new_group_positions"]

_GATE_CHUNKS = (2, 5)  # CogVideoXLayerNormZero.linear -> (shift, scale, gate, enc_shift, enc_scale, enc_gate)


def new_group_positions(old_groups: int, new_groups: int) -> list[int]:
    """For each new group, the index of the old group it follows (evenly spread, the last one at the end)."""
    return [round((k + 1) * old_groups / new_groups) - 1 for k in range(new_groups)]


def _zero_gates(state: dict[str, torch.Tensor], prefix: str) -> None:
    for norm in ("norm1", "norm2"):
        weight, bias = state[f"{prefix}.{norm}.linear.weight"].clone(), state[f"{prefix}.{norm}.linear.bias"].clone()
        dim = weight.shape[0] // 6
        for chunk in _GATE_CHUNKS:
            weight[chunk * dim:(chunk + 1) * dim] = 0
            bias[chunk * dim:(chunk + 1) * dim] = 0
        state[f"{prefix}.{norm}.linear.weight"], state[f"{prefix}.{norm}.linear.bias"] = weight, bias


def deepen(state_dict: dict[str, torch.Tensor], config: dict, new_layers: int) -> tuple[dict[str, torch.Tensor], dict]:
    """The state dict and config of the transformer with `new_layers` more blocks (see the module docstring)."""
    interval, layers = config.get("cross_attn_interval", 2), config["num_layers"]
    if new_layers <= 0 or new_layers % interval:
        raise CheckpointError(f"new_layers must be a positive multiple of cross_attn_interval ({interval}): the blocks "
                              f"come in groups of {interval} with one identity cross-attention each, got {new_layers}")
    old_groups, new_groups = layers // interval, new_layers // interval
    after = new_group_positions(old_groups, new_groups)
    order: list[tuple[int, bool]] = []  # (source group, is new)
    for g in range(old_groups):
        order.append((g, False))
        order.extend((g, True) for k in range(new_groups) if after[k] == g)

    kept = {k: v for k, v in state_dict.items()
            if not k.startswith(("transformer_blocks.", "perceiver_cross_attention."))}
    for slot, (group, is_new) in enumerate(order):
        for j in range(interval):
            old, new = f"transformer_blocks.{group * interval + j}.", f"transformer_blocks.{slot * interval + j}."
            kept.update({new + k[len(old):]: v.clone() for k, v in state_dict.items() if k.startswith(old)})
            if is_new:
                _zero_gates(kept, new.rstrip("."))
        old, new = f"perceiver_cross_attention.{group}.", f"perceiver_cross_attention.{slot}."
        kept.update({new + k[len(old):]: v.clone() for k, v in state_dict.items() if k.startswith(old)})
        if is_new and new + "to_out.weight" in kept:
            kept[new + "to_out.weight"] = torch.zeros_like(kept[new + "to_out.weight"])
    config = dict(config, num_layers=layers + new_layers)
    config.pop("_use_default_values", None)  # diffusers would otherwise restore the default of the key set here
    return kept, config


def deepen_folder(transformer_dir: str | Path, out_dir: str | Path, new_layers: int) -> Path:
    """Read a transformer folder (config.json + safetensors), write its deepened version to `out_dir`."""
    state_dict, config = deepen(read_state_dict(transformer_dir), read_config(transformer_dir), new_layers)
    return write_transformer_folder(out_dir, state_dict, config)
