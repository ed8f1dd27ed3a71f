"""Cost of Proteus-ID's identity modules over the plain CogVideoX DiT, and of the text-stream rebuild.

    python benchmarks/transformer_overhead.py

1. Forward time (no grad, float32, CPU) of ProteusIDTransformer3DModel vs diffusers' CogVideoXTransformer3DModel
   built with the same DiT config, at tiny-to-small sizes; the ratio is the identity modules' overhead (MIF, TAII,
   injection cross-attentions). Ours is timed with W_fusion precomputed, as the pipeline runs it (once per video).
2. The vectorised text-stream rebuild vs the release's per-sample Python loop at the released sizes (L=226, D=4096).
Prints medians over repeats; ratios > 1 mean "ours takes that many times longer".
"""

from __future__ import annotations

import statistics
import time

import torch
from diffusers import CogVideoXTransformer3DModel

from proteus_id import ProteusIDTransformer3DModel

torch.set_num_threads(2)


def median_time(fn, repeats: int = 5) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def dit_config(heads: int, head_dim: int, layers: int, text_dim: int, h: int, w: int, frames: int) -> dict:
    return dict(num_attention_heads=heads, attention_head_dim=head_dim, in_channels=32, out_channels=16,
                time_embed_dim=128, text_embed_dim=text_dim, num_layers=layers, sample_height=h, sample_width=w,
                sample_frames=frames, max_text_seq_length=64, use_rotary_positional_embeddings=True,
                use_learned_positional_embeddings=False)


def identity_config(inner: int, text_dim: int) -> dict:
    vit = text_dim // 4
    q = int(inner / 3 * 2)
    return dict(cross_attn_interval=2, cross_attn_dim_head=32, cross_attn_num_heads=4,
                FT_txt_dim=text_dim, FT_clip_dim=64, FT_vit_dim=vit, FT_num_querie=16, FT_depth=4, FT_dim_head=32,
                FT_num_heads=4, FT_output_dim=text_dim, FT_num_scale=2, FT_ff_mult=4,
                FFE_num_queries=16, FFE_query_dim=q, FFE_input_img_dim=q, FFE_input_fuse_dim=text_dim, FFE_output_dim=q,
                FFE_layers=2, FFE_heads=4, FFE_clip_dim=64, FFE_vit_dim=vit, FFE_time_channel=inner, FFE_time_embed_dim=q)


def bench_forward() -> None:
    print("1) forward time, ours (DiT + MIF + TAII + injection) vs diffusers CogVideoX DiT")
    print(f"{'size':28s} {'params ours/cog':>18s} {'cog s':>8s} {'ours s':>8s} {'ratio':>6s}")
    for name, heads, head_dim, layers, text_dim, h, w, frames in [
        ("tiny  3x32, 2 layers", 3, 32, 2, 64, 8, 8, 9),
        ("small 4x48, 6 layers", 4, 48, 6, 128, 16, 16, 17),
        ("mid   6x64, 8 layers", 6, 64, 8, 256, 16, 24, 17),
    ]:
        cfg = dit_config(heads, head_dim, layers, text_dim, h, w, frames)
        torch.manual_seed(0)
        cog = CogVideoXTransformer3DModel(**cfg).eval()
        ours = ProteusIDTransformer3DModel(**cfg, **identity_config(heads * head_dim, text_dim)).eval()
        latent_frames = (frames - 1) // 4 + 1
        x = torch.randn(2, latent_frames, 32, h, w)
        text = torch.randn(2, 64, text_dim)
        mask = torch.ones(2, 64, dtype=torch.long)
        t = torch.tensor([500, 500])
        id_cond = torch.randn(1, 1, 64)
        vit = [torch.randn(1, 65, text_dim // 4) for _ in range(2)]
        with torch.no_grad():
            fused = ours.encode_identity(torch.randn(1, 8, text_dim), id_cond, vit)
            t_cog = median_time(lambda: cog(x, text, t))
            t_ours = median_time(lambda: ours(x, text, mask, None, t, id_cond=id_cond, id_vit_hidden=vit,
                                               is_infer=True, fused_tokens=fused))
        n_cog = sum(p.numel() for p in cog.parameters())
        n_ours = sum(p.numel() for p in ours.parameters())
        print(f"{name:28s} {n_ours / 1e6:7.2f}M/{n_cog / 1e6:6.2f}M {t_cog:8.4f} {t_ours:8.4f} {t_ours / t_cog:6.2f}")


def loop_rebuild(states: torch.Tensor, mask: torch.Tensor, fused: torch.Tensor) -> torch.Tensor:
    """The release's per-sample loop."""
    batch, length, dim = states.shape
    num_fused = fused.shape[1]
    counts = torch.clamp(mask.sum(1), max=length - num_fused)
    out = torch.zeros(batch, length, dim)
    out[:, :num_fused] = fused
    for i in range(batch):
        positions = torch.where(mask[i] == 1)[0][: counts[i]]
        out[i, num_fused : num_fused + positions.numel()] = states[i, positions]
    return out


def bench_text_stream() -> None:
    print("\n2) text-stream rebuild at L=226, D=4096: release loop vs ours (vectorised)")
    print(f"{'batch':>6s} {'loop ms':>9s} {'ours ms':>9s} {'loop/ours':>10s}")
    for batch in (2, 8, 32):
        torch.manual_seed(0)
        states = torch.randn(batch, 226, 4096)
        lengths = torch.randint(5, 226, (batch,))
        mask = (torch.arange(226)[None] < lengths[:, None]).long()
        fused = torch.randn(1, 32, 4096)
        assert torch.equal(loop_rebuild(states, mask, fused), ProteusIDTransformer3DModel.build_text_stream(states, mask, fused))
        t_loop = median_time(lambda: loop_rebuild(states, mask, fused), 9)
        t_ours = median_time(lambda: ProteusIDTransformer3DModel.build_text_stream(states, mask, fused), 9)
        print(f"{batch:6d} {t_loop * 1e3:9.2f} {t_ours * 1e3:9.2f} {t_loop / t_ours:10.2f}")


if __name__ == "__main__":
    bench_forward()
    bench_text_stream()
