"""MIF, Multimodal Identity Fusion: a Q-Former that fuses the identity prompt with the face features.

    tokens  = [queries (Q) ; identity-prompt tokens]                         (B, Q + L_id, D_txt)
    ctx_k   = [MLP_id(id_cond) ; MLP_k(vit_hidden_k)]   for scale k          (B, 1 + N_vit, D_txt)
    per scale k, depth/num_scale layers of
        tokens = SelfAttn(tokens) + tokens
        tokens = PerceiverAttn(ctx_k, tokens) + tokens      # k/v over [ctx_k ; tokens]
        tokens = FF(tokens) + tokens
    W_fusion = Adapter(tokens[:, :Q] @ P)                                    (B, Q, D_out)

Attribute names follow the released checkpoint (`fuse_token_former.*`, `fuse_token_adapter.*`).
"""

from __future__ import annotations

import torch
from torch import nn

from .attention import PerceiverAttention, PromptSelfAttention, mlp3


class MultimodalIdentityFusion(nn.Module):
    def __init__(
        self,
        text_dim: int = 4096,
        clip_dim: int = 1280,
        vit_dim: int = 1024,
        num_queries: int = 32,
        depth: int = 10,
        dim_head: int = 64,
        heads: int = 64,
        output_dim: int = 4096,
        num_scale: int = 5,
        ff_mult: int = 4,
    ):
        super().__init__()
        if depth % num_scale != 0:
            raise ValueError(f"MIF depth ({depth}) must be a multiple of its number of scales ({num_scale})")
        if vit_dim * ff_mult != text_dim:
            raise ValueError(f"MIF maps ViT features to vit_dim*ff_mult = {vit_dim * ff_mult}, which must equal the text width {text_dim}")
        self.num_queries = num_queries
        self.num_scale = num_scale
        self.layers_per_scale = depth // num_scale
        scale = text_dim**-0.5
        # Queries and the output projection are scaled once here, at initialisation (not in the forward).
        self.latents = nn.Parameter(torch.randn(1, num_queries, text_dim) * scale)
        self.proj_out = nn.Parameter(torch.randn(text_dim, output_dim) * scale)
        self.layers = nn.ModuleList(
            nn.ModuleList(
                [
                    PromptSelfAttention(text_dim, dim_head, heads),
                    PerceiverAttention(dim=text_dim, dim_head=dim_head, heads=heads),
                    nn.Sequential(
                        nn.LayerNorm(text_dim),
                        nn.Linear(text_dim, text_dim, bias=False),
                        nn.GELU(),
                        nn.Linear(text_dim, text_dim, bias=False),
                    ),
                ]
            )
            for _ in range(depth)
        )
        for k in range(num_scale):
            setattr(self, f"mapping_{k}", mlp3(vit_dim, vit_dim, vit_dim * ff_mult))
        self.img_embedding_mapping = mlp3(clip_dim, vit_dim, vit_dim * ff_mult)

    def forward(
        self, identity_prompt_embeds: torch.Tensor | None, id_cond: torch.Tensor, id_vit_hidden: list[torch.Tensor]
    ) -> torch.Tensor:
        """(B, L_id, D_txt), (B, 1, clip), num_scale x (B, N_vit, vit) -> (B, Q, output_dim), before the adapter.

        identity_prompt_embeds=None runs the queries alone (the "visual only" ablation)."""
        if len(id_vit_hidden) < self.num_scale:
            raise ValueError(f"MIF needs {self.num_scale} ViT hidden states, got {len(id_vit_hidden)}")
        batch = id_cond.shape[0]
        tokens = self.latents.expand(batch, -1, -1)
        if identity_prompt_embeds is not None:
            tokens = torch.cat([tokens, identity_prompt_embeds], dim=1)
        id_tokens = self.img_embedding_mapping(id_cond)
        for k in range(self.num_scale):
            context = torch.cat([id_tokens, getattr(self, f"mapping_{k}")(id_vit_hidden[k])], dim=1)
            for self_attn, perceiver_attn, ff in self.layers[k * self.layers_per_scale : (k + 1) * self.layers_per_scale]:
                tokens = self_attn(tokens) + tokens
                tokens = perceiver_attn(context, tokens) + tokens
                tokens = ff(tokens) + tokens
        return tokens[:, : self.num_queries] @ self.proj_out


class FusedTokenAdapter(nn.Module):
    """Maps MIF's queries into the text-encoder embedding space (no residual, as released)."""

    def __init__(self, in_dim: int = 4096, hidden_dim: int = 4096, out_dim: int = 4096):
        super().__init__()
        self.feature_mapping = mlp3(in_dim, hidden_dim, out_dim)

    def forward(self, fused_tokens: torch.Tensor) -> torch.Tensor:
        return self.feature_mapping(fused_tokens)
