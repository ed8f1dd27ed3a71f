"""Attention blocks of the identity modules, written to read like their equations.

All of them use the release's *split-scaled* attention: q and k are each multiplied by d_head^-1/4 before
q @ k^T (numerically gentler in half precision than dividing afterwards), the softmax runs in float32 and is cast
back. The perceiver attention of MIF and the DiT-injection cross-attention are diffusers' ConsisID modules
(same parameter names, same numerics), re-exported here so the rest of the package has one place to look.
"""

from __future__ import annotations

import torch
from diffusers.models.transformers.consisid_transformer_3d import PerceiverAttention, PerceiverCrossAttention
from torch import nn

__all__ = ["split_scaled_attention", "PromptSelfAttention", "PerceiverAttention", "PerceiverCrossAttention", "mlp3"]


def split_scaled_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, heads: int) -> torch.Tensor:
    """softmax((q d^-1/4)(k d^-1/4)^T) v over `heads` heads; inputs (B, N, heads*d), output (B, N_q, heads*d).

    A batch of 1 on either side broadcasts against the other (torch.matmul semantics).
    """
    b_q, n_q, inner = q.shape
    dim_head = inner // heads

    def split(x: torch.Tensor) -> torch.Tensor:  # (B, N, H*d) -> (B, H, N, d)
        return x.reshape(x.shape[0], -1, heads, dim_head).transpose(1, 2)

    scale = dim_head**-0.25
    weight = (split(q) * scale) @ (split(k) * scale).transpose(-2, -1)
    weight = torch.softmax(weight.float(), dim=-1).type(weight.dtype)
    out = weight @ split(v)
    return out.permute(0, 2, 1, 3).reshape(out.shape[0], n_q, inner)


class PromptSelfAttention(nn.Module):
    """Pre-norm self-attention over MIF's [queries ; identity-prompt tokens]: x -> Out(Attn(Q(LN x), K(LN x), V(LN x)))."""

    def __init__(self, dim: int, dim_head: int, heads: int):
        super().__init__()
        inner = dim_head * heads
        self.heads = heads
        self.norm = nn.LayerNorm(dim)
        self.to_q = nn.Linear(dim, inner, bias=False)
        self.to_k = nn.Linear(dim, inner, bias=False)
        self.to_v = nn.Linear(dim, inner, bias=False)
        self.to_out = nn.Linear(inner, dim, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.norm(x)
        return self.to_out(split_scaled_attention(self.to_q(x), self.to_k(x), self.to_v(x), self.heads))


def mlp3(in_dim: int, hidden_dim: int, out_dim: int) -> nn.Sequential:
    """The release's three-layer mapping MLP: Linear, LayerNorm, LeakyReLU, Linear, LayerNorm, LeakyReLU, Linear.

    Indices 0/1/3/4/6 carry parameters, which is what the checkpoint's tensor names (`.0.weight`, `.6.bias`) refer to.
    """
    return nn.Sequential(
        nn.Linear(in_dim, hidden_dim),
        nn.LayerNorm(hidden_dim),
        nn.LeakyReLU(),
        nn.Linear(hidden_dim, hidden_dim),
        nn.LayerNorm(hidden_dim),
        nn.LeakyReLU(),
        nn.Linear(hidden_dim, out_dim),
    )
