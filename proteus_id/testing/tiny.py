"""A complete model folder in the released layout at toy size, built in code from a seed.

The tokenizer is a word-level one over a small English vocabulary (unknown words map to <unk>), wrapped as a
transformers fast tokenizer that appends </s> like T5's; the text encoder is a 2-layer T5 encoder.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

TINY_TRANSFORMER_CONFIG = dict(
    num_attention_heads=2, attention_head_dim=16, in_channels=8, out_channels=4, time_embed_dim=16,
    text_embed_dim=32, num_layers=2, sample_width=8, sample_height=8, sample_frames=9, patch_size=2,
    max_text_seq_length=16, use_rotary_positional_embeddings=True, use_learned_positional_embeddings=False,
    cross_attn_interval=1, cross_attn_dim_head=8, cross_attn_num_heads=2,
    FT_txt_dim=32, FT_clip_dim=20, FT_vit_dim=16, FT_num_querie=4, FT_depth=2, FT_dim_head=8, FT_num_heads=2,
    FT_output_dim=32, FT_num_scale=2, FT_ff_mult=2,
    FFE_num_queries=4, FFE_query_dim=16, FFE_input_img_dim=16, FFE_input_fuse_dim=32, FFE_output_dim=21,
    FFE_layers=2, FFE_heads=2, FFE_clip_dim=20, FFE_vit_dim=16, FFE_time_channel=24, FFE_time_embed_dim=16,
)

_WORDS = (
    "a an the man woman person boy girl old young with and in on at of is are his her short long brown black blonde "
    "red grey hair beard glasses smiling smiles walking walks talking talks turning turns head left right camera "
    "slowly pans zooms park street room office beach city night day light wearing shirt jacket hat sweater white "
    "blue green ponytail face looks towards away closer nods waves hand"
).split()


def make_tiny_tokenizer(words: list[str] | None = None):
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    vocab = {"<pad>": 0, "</s>": 1, "<unk>": 2}
    for w in words or _WORDS:
        vocab.setdefault(w, len(vocab))
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Whitespace(), pre_tokenizers.Punctuation()])
    tok.post_processor = processors.TemplateProcessing(single="$A </s>", special_tokens=[("</s>", 1)])
    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", eos_token="</s>", unk_token="<unk>")


def tiny_transformer(seed: int = 0, **overrides):
    from ..model.transformer import ProteusIDTransformer3DModel

    torch.manual_seed(seed)
    model = ProteusIDTransformer3DModel(**{**TINY_TRANSFORMER_CONFIG, **overrides})
    # AdaLN modulations start at zero; randomise them so tests exercise the time path
    with torch.no_grad():
        for name, p in model.named_parameters():
            if ".ln_" in name and p.abs().sum() == 0:
                p.normal_(0, 0.05)
    return model.eval()


def tiny_identity_features(seed: int = 0, batch: int = 1, config: dict | None = None):
    """Random id_cond / id_vit_hidden shaped for a (tiny) transformer config."""
    cfg = {**TINY_TRANSFORMER_CONFIG, **(config or {})}
    g = torch.Generator().manual_seed(seed)
    id_cond = torch.randn(batch, 1, cfg["FT_clip_dim"], generator=g)
    vit = [torch.randn(batch, 10, cfg["FT_vit_dim"], generator=g) for _ in range(cfg["FT_num_scale"])]
    return id_cond, vit


def make_tiny_model_folder(path: str | Path, seed: int = 0, **transformer_overrides) -> Path:
    """Write tokenizer/ text_encoder/ vae/ scheduler/ transformer/ and model_index.json under `path`."""
    from diffusers import AutoencoderKLCogVideoX, CogVideoXDPMScheduler
    from transformers import T5Config, T5EncoderModel

    from .. import __version__

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    tokenizer = make_tiny_tokenizer()
    tokenizer.save_pretrained(path / "tokenizer")
    t5 = T5EncoderModel(
        T5Config(vocab_size=len(tokenizer), d_model=32, d_kv=8, d_ff=64, num_layers=2, num_heads=4,
                 relative_attention_num_buckets=8, feed_forward_proj="relu", pad_token_id=0, eos_token_id=1)
    ).eval()
    t5.save_pretrained(path / "text_encoder")
    vae = AutoencoderKLCogVideoX(
        in_channels=3, out_channels=3, latent_channels=4, block_out_channels=(16, 16, 32, 32), layers_per_block=1,
        norm_num_groups=4, temporal_compression_ratio=4, sample_height=64, sample_width=64,
        down_block_types=("CogVideoXDownBlock3D",) * 4, up_block_types=("CogVideoXUpBlock3D",) * 4,
        use_quant_conv=False, use_post_quant_conv=False,
    ).eval()
    vae.save_pretrained(path / "vae")
    CogVideoXDPMScheduler(
        beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", clip_sample=False, set_alpha_to_one=True,
        prediction_type="v_prediction", rescale_betas_zero_snr=True, timestep_spacing="trailing", snr_shift_scale=1.0,
    ).save_pretrained(path / "scheduler")
    tiny_transformer(seed, **transformer_overrides).save_pretrained(path / "transformer")
    index = {
        "_class_name": "ProteusIDPipeline", "_proteus_id_version": __version__,
        "scheduler": ["diffusers", "CogVideoXDPMScheduler"], "text_encoder": ["transformers", "T5EncoderModel"],
        "tokenizer": ["transformers", "PreTrainedTokenizerFast"], "transformer": ["proteus_id", "ProteusIDTransformer3DModel"],
        "vae": ["diffusers", "AutoencoderKLCogVideoX"],
    }
    (path / "model_index.json").write_text(json.dumps(index, indent=2))
    return path
