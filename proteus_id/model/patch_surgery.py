"""Halving a trained transformer's spatial patch size (2 x 2 -> 1 x 1): four times the video tokens, same weights.

Why: in the toy model a face spans about 3 x 4 tokens of 2 x 2 latent pixels, and the motions inside a face (nods,
smiles, blinks) were not learned by any training recipe tried on that grid (docs/toyworld.md, "Inside the face").
Training a finer grid from scratch costs the whole schedule again; this starts it from the trained coarse model:

    patch embedding   the 1 x 1 kernel is the 2 x 2 kernel summed, so a latent that is constant over a 2 x 2 block
                      embeds each of its four new tokens exactly as the old model embedded the block;
    output            each latent channel's output is the mean of the old outputs for its 4 sub-positions;
    RoPE              `rope_patch_size` = the old patch size, so positions run 0, 0.5, 1, ... on the old grid
                      instead of 0, 1, 2, ... (the attention's sense of distance is unchanged).

Everything else (blocks, MIF, TAII, the injection cross-attentions) works on tokens of the same width and is kept.
The result is a starting point to fine-tune, not an equivalent model: four copies of a token attend slightly
differently from one, and the averaged output is blurrier until trained.
"""

from __future__ import annotations

from pathlib import Path

import torch

from .checkpoint import CheckpointError, read_config, read_state_dict, write_transformer_folder

__all__ = ["halve_patch_size", "halve_patch_size_folder"]


def halve_patch_size(state_dict: dict[str, torch.Tensor], config: dict) -> tuple[dict[str, torch.Tensor], dict]:
    """The state dict and config of the same transformer with 1 x 1 patches (see the module docstring)."""
    if config.get("patch_size") != 2 or config.get("patch_size_t") is not None:
        raise CheckpointError(f"only 2 x 2 spatial patches without temporal patching can be halved, got patch_size="
                              f"{config.get('patch_size')}, patch_size_t={config.get('patch_size_t')}")
    if config.get("use_learned_positional_embeddings"):
        raise CheckpointError("a learned absolute position table is sized for the old grid; only RoPE models can be halved")
    out_channels = config.get("out_channels") or config["in_channels"]
    new = dict(state_dict)
    kernel = state_dict["patch_embed.proj.weight"]  # (width, in_channels, 2, 2)
    new["patch_embed.proj.weight"] = kernel.sum(dim=(2, 3), keepdim=True).contiguous()
    weight, bias = state_dict["proj_out.weight"], state_dict["proj_out.bias"]  # rows ordered (channel, p, p)
    new["proj_out.weight"] = weight.view(out_channels, 4, -1).mean(dim=1).contiguous()
    new["proj_out.bias"] = bias.view(out_channels, 4).mean(dim=1).contiguous()
    config = dict(config, patch_size=1, rope_patch_size=config.get("rope_patch_size") or 2)
    config.pop("_use_default_values", None)  # diffusers would otherwise restore the defaults of the keys set here
    return new, config


def halve_patch_size_folder(transformer_dir: str | Path, out_dir: str | Path) -> Path:
    """Read a transformer folder (config.json + safetensors), write its halved-patch version to `out_dir`."""
    config = read_config(transformer_dir)
    state_dict, config = halve_patch_size(read_state_dict(transformer_dir), config)
    return write_transformer_folder(out_dir, state_dict, config)
