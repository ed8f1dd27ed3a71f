"""The vectorised text-stream rebuild equals the release's per-sample loop, including overflow and empty prompts."""

from __future__ import annotations

import torch

from proteus_id import ProteusIDTransformer3DModel


def reference_loop(states: torch.Tensor, mask: torch.Tensor, fused: torch.Tensor) -> torch.Tensor:
    """The release's algorithm, written as a plain loop (the definition we test against)."""
    batch, length, dim = states.shape
    num_fused = fused.shape[1]
    out = torch.zeros(batch, length, dim)
    out[:, :num_fused] = fused
    for b in range(batch):
        valid = torch.where(mask[b] == 1)[0][: length - num_fused]
        out[b, num_fused : num_fused + len(valid)] = states[b, valid]
    return out


def test_matches_loop_on_ragged_masks():
    torch.manual_seed(0)
    states = torch.randn(4, 12, 8)
    mask = torch.zeros(4, 12, dtype=torch.long)
    mask[0, :3] = 1  # short prompt
    mask[1, :] = 1  # overflows the room left after 4 fused tokens
    mask[2, [1, 4, 5, 9]] = 1  # holes: valid tokens are gathered in order
    # row 3: empty prompt (all padding)
    fused = torch.randn(1, 4, 8)
    got = ProteusIDTransformer3DModel.build_text_stream(states, mask, fused)
    torch.testing.assert_close(got, reference_loop(states, mask, fused), rtol=0, atol=0)
    assert got[3, 4:].abs().sum() == 0  # an empty prompt leaves only the fused tokens


def test_gradients_reach_the_fused_tokens_and_valid_tokens_only():
    states = torch.randn(2, 6, 3, requires_grad=True)
    fused = torch.randn(2, 2, 3, requires_grad=True)
    mask = torch.tensor([[1, 1, 0, 0, 0, 0], [1, 1, 1, 1, 1, 1]])
    ProteusIDTransformer3DModel.build_text_stream(states, mask, fused).sum().backward()
    assert torch.all(fused.grad == 1)
    assert torch.equal(states.grad[0, :, 0], torch.tensor([1.0, 1, 0, 0, 0, 0]))
    assert torch.equal(states.grad[1, :, 0], torch.tensor([1.0, 1, 1, 1, 0, 0]))  # room for 4 after 2 fused
