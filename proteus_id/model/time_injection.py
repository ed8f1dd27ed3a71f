"""TAII, Time-Aware Identity Injection: a resampler whose queries and norms are modulated by the timestep.

    e_t   = MLP(sinusoid(t))                                               (B, 1, E)
    face  = MLP_vit([MLP_clip(id_cond) ; vit_hidden[-1]])                  (B, 1 + N_vit, D_img)
    L     = queries + Linear(SiLU(e_t));  F = Linear(W_fusion);  I = Linear(face)
    per block:
        L = L + MHA_fuse(q = AdaLN_1(L), kv = [AdaLN_1(L) ; AdaLN_fuse(F)])
        L = L + MHA_img (q = AdaLN_2(L), kv = [AdaLN_2(L) ; AdaLN_img(I)])
        L = L + MLP(AdaLN_ff(L))                                    # squared ReLU
    W_tfusion = LayerNorm(Linear(L))                                       (B, Q, D_out)

AdaLN(x) = LN(x) * (1 + scale) + shift, [shift, scale] = Linear(SiLU(e_t)), zero-initialised so that a fresh
module starts as plain LayerNorm. Attribute names follow the released checkpoint (`fuse_facital_attention.*`).
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from diffusers.models.embeddings import TimestepEmbedding, Timesteps
from torch import nn

from .attention import mlp3


class TimeAdaLayerNorm(nn.Module):
    def __init__(self, dim: int, time_embed_dim: int):
        super().__init__()
        self.linear = nn.Linear(time_embed_dim, 2 * dim)
        nn.init.zeros_(self.linear.weight)
        nn.init.zeros_(self.linear.bias)
        self.norm = nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6)

    def forward(self, x: torch.Tensor, time_emb: torch.Tensor) -> torch.Tensor:
        shift, scale = self.linear(nn.functional.silu(time_emb)).chunk(2, dim=-1)  # (B, 1, dim) each
        return self.norm(x) * (1 + scale) + shift


class SquaredReLU(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(x).square()


class TimeAwareBlock(nn.Module):
    def __init__(self, dim: int, heads: int, time_embed_dim: int):
        super().__init__()
        self.attn_fuse = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.attn_img = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.mlp = nn.Sequential(
            OrderedDict([("c_fc", nn.Linear(dim, 2 * dim)), ("sq_relu", SquaredReLU()), ("c_proj", nn.Linear(2 * dim, dim))])
        )
        self.ln_1 = TimeAdaLayerNorm(dim, time_embed_dim)
        self.ln_fuse = TimeAdaLayerNorm(dim, time_embed_dim)
        self.ln_2 = TimeAdaLayerNorm(dim, time_embed_dim)
        self.ln_img = TimeAdaLayerNorm(dim, time_embed_dim)
        self.ln_ff = TimeAdaLayerNorm(dim, time_embed_dim)

    def forward(self, latents: torch.Tensor, fused: torch.Tensor, face: torch.Tensor, time_emb: torch.Tensor) -> torch.Tensor:
        q = self.ln_1(latents, time_emb)
        kv = torch.cat([q, self.ln_fuse(fused, time_emb)], dim=1)
        latents = latents + self.attn_fuse(q, kv, kv, need_weights=False)[0]
        q = self.ln_2(latents, time_emb)
        kv = torch.cat([q, self.ln_img(face, time_emb)], dim=1)
        latents = latents + self.attn_img(q, kv, kv, need_weights=False)[0]
        return latents + self.mlp(self.ln_ff(latents, time_emb))


class TimeAwareResampler(nn.Module):
    """The `connector`: time-conditioned queries attending to the fused tokens, then to the face tokens."""

    def __init__(
        self,
        num_queries: int,
        query_dim: int,
        input_img_dim: int,
        input_fuse_dim: int,
        output_dim: int,
        layers: int,
        heads: int,
        time_embed_dim: int,
    ):
        super().__init__()
        self.latents = nn.Parameter(torch.randn(1, num_queries, query_dim) * query_dim**-0.5)
        self.time_aware_linear = nn.Linear(time_embed_dim, query_dim)
        self.proj_fuse = nn.Linear(input_fuse_dim, query_dim)
        self.proj_img = nn.Linear(input_img_dim, query_dim)
        self.perceiver_blocks = nn.Sequential(*[TimeAwareBlock(query_dim, heads, time_embed_dim) for _ in range(layers)])
        self.proj_out = nn.Sequential(nn.Linear(query_dim, output_dim), nn.LayerNorm(output_dim))

    def forward(self, fused: torch.Tensor, face: torch.Tensor, time_emb: torch.Tensor) -> torch.Tensor:
        latents = self.latents + self.time_aware_linear(nn.functional.silu(time_emb))  # (B, Q, d)
        fused, face = self.proj_fuse(fused), self.proj_img(face)
        for block in self.perceiver_blocks:
            latents = block(latents, fused, face, time_emb)
        return self.proj_out(latents)


class FaceFeatureFusion(nn.Module):
    """[MLP_clip(id_cond) ; last ViT hidden state] -> MLP_vit: the face tokens TAII attends to."""

    def __init__(self, clip_dim: int, vit_dim: int, out_dim: int):
        super().__init__()
        self.clip_embedding_mapping = mlp3(clip_dim, vit_dim, vit_dim)
        self.vit_embedding_mapping = mlp3(vit_dim, vit_dim, out_dim)

    def forward(self, id_cond: torch.Tensor, last_vit_hidden: torch.Tensor) -> torch.Tensor:
        return self.vit_embedding_mapping(torch.cat([self.clip_embedding_mapping(id_cond), last_vit_hidden], dim=1))


class TimeAwareIdentityInjection(nn.Module):
    def __init__(
        self,
        num_queries: int = 32,
        query_dim: int = 2048,
        input_img_dim: int = 2048,
        input_fuse_dim: int = 4096,
        output_dim: int = 2048,
        layers: int = 10,
        heads: int = 32,
        clip_dim: int = 1280,
        vit_dim: int = 1024,
        time_channel: int = 3072,
        time_embed_dim: int = 2048,
        timestep_activation_fn: str = "silu",
    ):
        super().__init__()
        # `latents` and `proj_out` here are never used by the forward; the released checkpoint holds them, so they
        # exist for strict loading (the resampler inside, `connector`, owns the ones that are used).
        self.latents = nn.Parameter(torch.randn(1, num_queries, query_dim) * query_dim**-0.5)
        self.proj_out = nn.Sequential(nn.Linear(query_dim, output_dim), nn.LayerNorm(output_dim))
        self.position = Timesteps(time_channel, flip_sin_to_cos=True, downscale_freq_shift=0)
        self.time_embedding = TimestepEmbedding(time_channel, time_embed_dim, act_fn=timestep_activation_fn)
        self.fuse_face_feature = FaceFeatureFusion(clip_dim, vit_dim, input_img_dim)
        self.connector = TimeAwareResampler(
            num_queries, query_dim, input_img_dim, input_fuse_dim, output_dim, layers, heads, time_embed_dim
        )

    def embed_time(self, timesteps: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        """Integer timesteps (B_t,) -> e_t (B_t, 1, time_embed_dim)."""
        return self.time_embedding(self.position(timesteps.reshape(-1)).to(dtype)).unsqueeze(1)

    def forward(
        self, fused_tokens: torch.Tensor, id_cond: torch.Tensor, id_vit_hidden: list[torch.Tensor], timesteps: torch.Tensor
    ) -> torch.Tensor:
        """W_fusion (B, Q, D_fuse) after the adapter, id_cond (B, 1, clip), ViT states, timesteps (B,) or (1,).

        A single timestep serves the whole identity batch; a single identity serves a batch of timesteps.
        """
        time_emb = self.embed_time(timesteps, fused_tokens.dtype)
        face = self.fuse_face_feature(id_cond, id_vit_hidden[-1])
        batch = max(fused_tokens.shape[0], time_emb.shape[0])
        expand = lambda x: x.expand(batch, *x.shape[1:])  # noqa: E731  (broadcast a batch of 1)
        return self.connector(expand(fused_tokens), expand(face), expand(time_emb))
