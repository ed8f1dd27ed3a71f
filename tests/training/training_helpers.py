"""A small deterministic face backend at the tiny model's sizes (id_cond 20-d, 2 ViT states of 16-d), for tests.

Registered as "tiny-test" by `register()`; subprocesses started by the tests import this module through
tests/training/launch_with_backend.py so they see the same backend.
"""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image

from proteus_id.identity.backends import register_backend
from proteus_id.identity.features import IdentityFeatures
from proteus_id.identity.image_io import load_image
from proteus_id.testing.tiny import TINY_TRANSFORMER_CONFIG

KIND = "tiny-test"


class TinyTestBackend:
    kind = KIND

    def __init__(self):
        g = torch.Generator().manual_seed(1234)
        cfg = TINY_TRANSFORMER_CONFIG
        self.cond_proj = torch.randn(cfg["FT_clip_dim"], 8 * 8 * 3, generator=g) / 14.0
        self.vit_proj = [torch.randn(cfg["FT_vit_dim"], 3, generator=g) for _ in range(cfg["FT_num_scale"])]

    def extract(self, image, name=None) -> IdentityFeatures:
        pixels = load_image(image, name=name)
        side = min(pixels.shape[:2])
        top, left = (pixels.shape[0] - side) // 2, (pixels.shape[1] - side) // 2
        crop = Image.fromarray(pixels[top : top + side, left : left + side]).resize((32, 32), Image.BILINEAR)
        x = torch.from_numpy(np.array(crop.resize((8, 8), Image.BILINEAR))).float() / 127.5 - 1
        id_cond = torch.tanh(self.cond_proj @ x.flatten())[None, None]
        patches = torch.from_numpy(np.array(crop.resize((5, 2), Image.BILINEAR))).float().reshape(10, 3) / 255
        vit = [torch.tanh(patches @ p.T)[None] for p in self.vit_proj]
        return IdentityFeatures(id_cond=id_cond, id_vit_hidden=vit, face_crop=crop, kind=KIND)


def register() -> None:
    register_backend(KIND, lambda face_dir, device: TinyTestBackend())


def write_config(path, **keys) -> "Path":
    """A small training config for the tiny model (YAML), nested keys given as dicts."""
    from pathlib import Path

    import yaml

    base = {
        "seed": 5, "max_steps": 8, "batch_size": 2, "mixed_precision": "no", "gradient_checkpointing": False,
        "optimizer": {"lr": 1e-3}, "lr_scheduler": {"warmup_steps": 2},
        "checkpoint": {"every_steps": 4, "keep_last": 2, "export_transformer": False},
        "validation": {"num_items": 0}, "logging": {"tensorboard": False},
    }
    for key, value in keys.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            base[key] = {**base[key], **value}
        else:
            base[key] = value
    path = Path(path)
    path.write_text(yaml.safe_dump(base))
    return path


def parameter_digest(model) -> dict:
    """name -> (sum, sum of squares) of every parameter, to compare weights across processes and runs."""
    return {n: [float(p.double().sum()), float((p.double() ** 2).sum())] for n, p in model.state_dict().items()}


# precompute settings shared by the training tests (the tiny model folder, a test face backend)
PRECOMPUTE = dict(identity_backend="tiny-test", dtype="fp32", frame_stride=1, height=32, width=32)
