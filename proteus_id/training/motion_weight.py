"""AML (Adaptive Motion Learning): a per-element loss weight M from optical flow on the moving person.

    released (default; the release's formula, checked against shared/golden/aml_loss.safetensors):
        m = |flow| between consecutive frames (pixels), the last map duplicated so there is one per frame
        m = m * person_mask;  m[m != 0] = sigmoid(m[m != 0])      -> 0 off the moving body, (0.5, 1) on it
    clip_normalized (alternative):
        m = |flow| * person_mask / q99(|flow| on the person, over the clip), clipped to [0, 1]
        The released sigmoid saturates: sub-pixel jitter already gets 0.5 and anything above ~3 px about 1, so M is
        close to a binary "moving body" mask. Normalising by the clip's own 99th percentile keeps the ranking of
        motion inside the clip (fast hands > slow torso) and is insensitive to the frame size.
    none: M = 0 (the loss without AML).

Both are resized to the latent grid with trilinear interpolation (align_corners False) and repeated over the latent
channels when the loss is computed (`expand_over_channels`). The face weight F is the face mask resized the same way.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

MOTION_WEIGHT_MODES = ("released", "clip_normalized", "none")


def per_frame_magnitude(flow_magnitude: torch.Tensor) -> torch.Tensor:
    """(..., F-1, H, W) magnitudes between consecutive frames -> (..., F, H, W) with the last map duplicated."""
    return torch.cat([flow_magnitude, flow_magnitude[..., -1:, :, :]], dim=-3)


def motion_weight_pixels(flow_magnitude: torch.Tensor, person_mask: torch.Tensor, mode: str = "released") -> torch.Tensor:
    """flow magnitude (B, F-1, H, W) and person mask (B, F, H, W) -> M on the pixel grid (B, F, H, W)."""
    if mode not in MOTION_WEIGHT_MODES:
        raise ValueError(f"unknown motion weight {mode!r}; choose one of {', '.join(MOTION_WEIGHT_MODES)}")
    magnitude = per_frame_magnitude(flow_magnitude) * person_mask
    if mode == "none":
        return torch.zeros_like(magnitude)
    if mode == "released":
        moving = magnitude != 0
        out = magnitude.clone()
        out[moving] = torch.sigmoid(magnitude[moving])
        return out
    out = torch.zeros_like(magnitude)
    for b in range(magnitude.shape[0]):
        on_person = magnitude[b][person_mask[b] > 0]
        scale = torch.quantile(on_person.float(), 0.99) if on_person.numel() else magnitude.new_zeros(())
        if scale > 0:
            out[b] = (magnitude[b] / scale).clamp(0, 1)
    return out


def to_latent_grid(maps: torch.Tensor, latent_frames: int, height: int, width: int) -> torch.Tensor:
    """(B, F, H, W) pixel-grid maps -> (B, F_lat, h, w) by trilinear interpolation (align_corners False)."""
    resized = F.interpolate(maps.unsqueeze(1).float(), size=(latent_frames, height, width), mode="trilinear", align_corners=False)
    return resized.squeeze(1)


def expand_over_channels(weight: torch.Tensor, channels: int, patch_size_t: int | None = None) -> torch.Tensor:
    """(B, F_lat, h, w) -> (B, F_lat * C * h * w), the layout of latents (B, F, C, h, w) flattened per sample.

    With temporal patching (CogVideoX 1.5) the first latent frame is repeated in front, as the latents are."""
    if patch_size_t is not None and weight.shape[1] % patch_size_t:
        extra = weight.shape[1] % patch_size_t
        weight = torch.cat([weight[:, :1].repeat(1, extra, 1, 1), weight], dim=1)
    batch = weight.shape[0]
    return weight.unsqueeze(2).expand(-1, -1, channels, -1, -1).reshape(batch, -1)
