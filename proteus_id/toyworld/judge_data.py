"""Training and held-out data of the judges: rendered clips of the `judge` split (never the conditioning encoder's
`encoder` split, never the `eval` identities), with every label the world knows, and the degradations generated
videos show (4:2:0 chroma, blur, noise) as augmentations so the judges read decoded mp4s of generated clips too."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from .traits import (BACKGROUNDS, CLOTHES_COLOURS, DEFAULT_WORLD_SEED, GARMENTS, HATS, LIGHTINGS, MOTIONS, SPEEDS,
                     identity_numbers)

ATTRIBUTES = {
    "garment": GARMENTS, "clothes_colour": tuple(CLOTHES_COLOURS), "hat": HATS, "hat_colour": tuple(CLOTHES_COLOURS),
    "background": BACKGROUNDS, "lighting": LIGHTINGS,
}


def build_judge_set(split: str, identities: int, clips_per_identity: int, first_clip: int = 0,
                    world_seed: int = DEFAULT_WORLD_SEED, progress: bool = True) -> dict[str, np.ndarray]:
    """Clips with labels: frames (N, 17, 64, 64, 3) uint8, boxes (N, 17, 4), identity (N,), one array per attribute
    (class index; hat_colour -1 without a hat), motion, speed, and one reference crop per clip (N, 64, 64, 3)."""
    from tqdm import tqdm

    from .world import make_clip, render_clip, render_reference

    out: dict[str, list] = {k: [] for k in ("frames", "boxes", "identity", "motion", "speed", "references", *ATTRIBUTES)}
    for label, number in enumerate(tqdm(identity_numbers(split, identities), desc=f"judge data ({split})",
                                        disable=not progress)):
        for k in range(clips_per_identity):
            spec = make_clip(number, first_clip + k, world_seed)
            clip = render_clip(spec)
            out["frames"].append(clip.frames)
            out["boxes"].append(clip.face_boxes)
            out["identity"].append(label)
            out["motion"].append(MOTIONS.index(spec.scene.motion))
            out["speed"].append(SPEEDS.index(spec.scene.speed))
            out["references"].append(np.asarray(render_reference(spec.identity, 20_000 + first_clip + k,
                                                                 world_seed=world_seed)))
            scene = spec.scene.to_dict()
            for name, values in ATTRIBUTES.items():
                value = scene[name]
                out[name].append(values.index(value) if value in values else -1)
    return {k: np.asarray(v) for k, v in out.items()}


def cached_judge_set(path: Path, **kwargs) -> dict[str, np.ndarray]:
    if path.is_file():
        with np.load(path) as data:
            return {k: data[k] for k in data.files}
    data = build_judge_set(**kwargs)
    tmp = path.with_name(f".{path.name}.tmp.npz")
    np.savez(tmp, **data)
    os.replace(tmp, path)
    return data


# ---------------------------------------------------------------- tensors and degradations


def to_float(images: np.ndarray) -> torch.Tensor:
    """uint8 (..., H, W, 3) -> float (..., 3, H, W) in [-1, 1]."""
    x = torch.from_numpy(np.array(images)).float().div(127.5).sub(1.0)
    return x.movedim(-1, -3)


def degrade(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Random 4:2:0 chroma subsampling, blur and noise on (B, 3, H, W) images in [-1, 1] (each half the time)."""
    b = x.shape[0]
    pick = lambda p: (torch.rand(b, 1, 1, 1, generator=generator) < p).float()  # noqa: E731
    # chroma: YCbCr, Cb/Cr averaged over 2x2 blocks, back to RGB
    r, g, bl = x[:, 0:1], x[:, 1:2], x[:, 2:3]
    y = 0.299 * r + 0.587 * g + 0.114 * bl
    cb, cr = bl - y, r - y
    cb = F.interpolate(F.avg_pool2d(cb, 2), scale_factor=2, mode="nearest")
    cr = F.interpolate(F.avg_pool2d(cr, 2), scale_factor=2, mode="nearest")
    r2, b2 = cr + y, cb + y
    g2 = (y - 0.299 * r2 - 0.114 * b2) / 0.587
    m = pick(0.5)
    x = m * torch.cat([r2, g2, b2], 1) + (1 - m) * x
    kernel = torch.tensor([1.0, 2.0, 1.0])
    kernel = (kernel[:, None] * kernel[None]) / 16
    blurred = F.conv2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), kernel.expand(3, 1, 3, 3).contiguous(), groups=3)
    m = pick(0.4)
    x = m * blurred + (1 - m) * x
    x = x + pick(0.4) * 0.04 * torch.randn(x.shape, generator=generator)
    gain = 1 + 0.1 * (torch.rand(b, 1, 1, 1, generator=generator) - 0.5)
    return (x * gain).clamp(-1, 1)


def face_crops(frames: np.ndarray, boxes: np.ndarray, size: int, jitter_rng: np.random.Generator | None = None,
               jitter: float = 0.05) -> np.ndarray:
    """Reference-style crops (N, size, size, 3) of frames (N, H, W, 3) at boxes (N, 4), optionally jittered."""
    from .world import crop_face

    out = []
    for frame, box in zip(frames, boxes):
        j = None if jitter_rng is None else jitter_rng.normal(0, [jitter, jitter, 1.5 * jitter])
        out.append(crop_face(frame, box, size, j))
    return np.stack(out)
