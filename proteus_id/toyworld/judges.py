"""The world's judges: a face locator, an identity recogniser (this world's FaceSim), attribute classifiers and a
motion classifier (this world's text alignment), trained independently of the conditioning identity encoder.

Independence from the encoder (identity_encoder.py), so that a model cannot score well by matching its own
conditioning features: other data (identities of the `judge` split, clips rather than reference renders), other
architecture (BatchNorm ResNets at 40 px vs the encoder's GroupNorm plain CNN at 64 px), other loss (ArcFace
additive angular margin vs CosFace), other seed. None of them sees the 150 evaluation identities in training; their
accuracy is measured on those identities' true renders (`judge_metrics.json`).

    judges = JudgeSet.load(folder)
    boxes = judges.locate(frames)                               # (F, 4) face boxes
    sims = judges.identity_similarity(reference_crop, frames)   # per-frame max(0, cos)
    judges.attributes(frames), judges.motion(frames)            # predicted scene attributes, motion and speed
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .judge_data import ATTRIBUTES, cached_judge_set, degrade, face_crops, to_float
from .traits import DEFAULT_WORLD_SEED, MOTIONS, SPEEDS

logger = logging.getLogger("proteus_id")

FRAME = 64
ID_CROP = 40
MOTION_CROP = 32
NUM_FRAMES = 17


def conv_bn(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class ResBlock(nn.Module):
    def __init__(self, c: int):
        super().__init__()
        self.body = nn.Sequential(conv_bn(c, c), nn.Conv2d(c, c, 3, 1, 1, bias=False), nn.BatchNorm2d(c))

    def forward(self, x):
        return F.relu(x + self.body(x))


class FaceLocator(nn.Module):
    """64 x 64 frame -> face box (cx, cy, w, h) / 64."""

    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(conv_bn(3, 16, 2), conv_bn(16, 32, 2), ResBlock(32), conv_bn(32, 64, 2), ResBlock(64),
                                 conv_bn(64, 64, 2), nn.Flatten(), nn.Linear(64 * 16, 4))

    def forward(self, x):
        return self.net(x)


class IdentityJudge(nn.Module):
    """40 x 40 face crop -> 96-d embedding."""

    def __init__(self, dim: int = 96):
        super().__init__()
        self.net = nn.Sequential(conv_bn(3, 32), ResBlock(32), nn.MaxPool2d(2), conv_bn(32, 64), ResBlock(64),
                                 nn.MaxPool2d(2), conv_bn(64, 96), ResBlock(96), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                                 nn.Linear(96, dim))

    def forward(self, x):
        return self.net(x)


class AttributeJudge(nn.Module):
    """64 x 64 frame -> logits per attribute (garment, clothes colour, hat, hat colour, background, lighting)."""

    def __init__(self):
        super().__init__()
        self.trunk = nn.Sequential(conv_bn(3, 24, 2), ResBlock(24), conv_bn(24, 48, 2), ResBlock(48), conv_bn(48, 64, 2),
                                   ResBlock(64), nn.AdaptiveAvgPool2d(2), nn.Flatten())
        self.heads = nn.ModuleDict({name: nn.Linear(256, len(values)) for name, values in ATTRIBUTES.items()})

    def forward(self, x):
        h = self.trunk(x)
        return {name: head(h) for name, head in self.heads.items()}


class MotionJudge(nn.Module):
    """Per frame: the frame at 32 px and the face crop at 32 px (6 channels) plus the face box trajectory, then a
    temporal convolution over the 17 frames -> motion logits (11) and speed logits (3)."""

    def __init__(self):
        super().__init__()
        self.frame = nn.Sequential(conv_bn(6, 32, 2), conv_bn(32, 48, 2), ResBlock(48), conv_bn(48, 64),
                                   nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(256, 64))
        self.temporal = nn.Sequential(nn.Conv1d(2 * (64 + 6), 96, 3, padding=1), nn.ReLU(),
                                      nn.Conv1d(96, 96, 3, padding=2, dilation=2), nn.ReLU())
        self.motion_head = nn.Linear(192, len(MOTIONS))
        self.speed_head = nn.Linear(192, len(SPEEDS))

    def forward(self, pixels: torch.Tensor, track: torch.Tensor):
        """pixels (B, T, 6, 32, 32), track (B, T, 6) -> (motion logits, speed logits)."""
        b, t = pixels.shape[:2]
        h = torch.cat([self.frame(pixels.flatten(0, 1)).view(b, t, -1), track], dim=-1)
        h = torch.cat([h, h - h[:, :1]], dim=-1).transpose(1, 2)
        h = self.temporal(h)
        h = torch.cat([h.mean(dim=2), h.amax(dim=2)], dim=1)
        return self.motion_head(h), self.speed_head(h)


def box_track(boxes: np.ndarray) -> np.ndarray:
    """(B, T, 4) pixel boxes -> (B, T, 6) features: centre and log size, absolute and relative to frame 0."""
    boxes = np.asarray(boxes, np.float32)
    cx, cy = (boxes[..., 0] + boxes[..., 2]) / (2 * FRAME), (boxes[..., 1] + boxes[..., 3]) / (2 * FRAME)
    size = np.log(np.maximum((boxes[..., 3] - boxes[..., 1]) / FRAME, 1e-3))
    feats = np.stack([cx, cy, size], axis=-1)
    return np.concatenate([feats, 4 * (feats - feats[:, :1])], axis=-1)


def motion_inputs(frames: np.ndarray, boxes: np.ndarray, rng: np.random.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, T, 64, 64, 3) frames + (B, T, 4) boxes -> pixels (B, T, 6, 32, 32), track (B, T, 6)."""
    b, t = frames.shape[:2]
    flat = frames.reshape(b * t, *frames.shape[2:])
    crops = face_crops(flat, boxes.reshape(b * t, 4), MOTION_CROP, rng, jitter=0.02)
    small = F.avg_pool2d(to_float(flat), 2)
    pixels = torch.cat([small, to_float(crops)], dim=1).view(b, t, 6, MOTION_CROP, MOTION_CROP)
    return pixels, torch.from_numpy(box_track(boxes))


class ArcFaceHead(nn.Module):
    def __init__(self, dim: int, classes: int, scale: float = 30.0, margin: float = 0.3):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(classes, dim) * 0.01)
        self.scale, self.margin = scale, margin

    def forward(self, embedding: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        cos = (F.normalize(embedding, dim=-1) @ F.normalize(self.weight, dim=-1).T).clamp(-1 + 1e-6, 1 - 1e-6)
        target = torch.cos(torch.acos(cos) + self.margin)
        onehot = F.one_hot(labels, cos.shape[1]).float()
        return F.cross_entropy(self.scale * (onehot * target + (1 - onehot) * cos), labels)


# ---------------------------------------------------------------- training


def _fit(name: str, model: nn.Module, extra: nn.Module | None, batch_loss, steps: int, lr: float, out: Path,
         seed: int, progress: bool) -> nn.Module:
    """Adam + cosine decay with checkpoints every 100 steps (resumable) and a loss log."""
    from tqdm import tqdm

    params = list(model.parameters()) + (list(extra.parameters()) if extra is not None else [])
    optimiser = torch.optim.AdamW(params, lr=lr, weight_decay=1e-4)
    ckpt, step = out / f"{name}_checkpoint.pt", 0
    if ckpt.is_file():
        state = torch.load(ckpt, map_location="cpu", weights_only=True)
        model.load_state_dict(state["model"])
        if extra is not None:
            extra.load_state_dict(state["extra"])
        optimiser.load_state_dict(state["optimiser"])
        step = state["step"]
    rng = np.random.default_rng([seed, step])
    generator = torch.Generator().manual_seed(seed * 104729 + step)
    model.train()
    with open(out / f"{name}_losses.jsonl", "a") as log:
        for step in tqdm(range(step, steps), initial=step, total=steps, desc=name, disable=not progress):
            for group in optimiser.param_groups:
                group["lr"] = lr * min(1.0, (step + 1) / 50) * 0.5 * (1 + math.cos(math.pi * step / steps))
            started = time.time()
            loss = batch_loss(rng, generator)
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            if (step + 1) % 20 == 0:
                log.write(json.dumps({"step": step + 1, "loss": float(loss.detach()),
                                      "seconds": round(time.time() - started, 3)}) + "\n")
                log.flush()
            if (step + 1) % 100 == 0 or step + 1 == steps:
                state = {"model": model.state_dict(), "optimiser": optimiser.state_dict(), "step": step + 1}
                if extra is not None:
                    state["extra"] = extra.state_dict()
                tmp = ckpt.with_name(f".{ckpt.name}.tmp")
                torch.save(state, tmp)
                os.replace(tmp, ckpt)
    return model.eval()


STEPS = {"locator": 800, "identity": 1500, "attributes": 1000, "motion": 1500}


def train_judges(out_dir: str | Path, seed: int = 7, only: str | None = None, scale: float = 1.0,
                 world_seed: int = DEFAULT_WORLD_SEED, identities: int = 2000, progress: bool = True) -> Path:
    """Train the judges (or the one named by `only`) into out_dir/judges/ and measure them on the evaluation
    identities' true renders (out_dir/judges/judge_metrics.json)."""
    from safetensors.torch import save_file

    out = Path(out_dir)
    folder = out / "judges"
    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    data = cached_judge_set(out / "judge_clips.npz", split="judge", identities=identities, clips_per_identity=2,
                            world_seed=world_seed, progress=progress)
    n_clips = len(data["frames"])
    names = [only] if only else list(STEPS)
    for name in names:
        steps = max(1, round(STEPS[name] * scale))
        if name == "locator":
            model, extra = FaceLocator(), None

            def loss_fn(rng, gen, model=model):
                c, f = rng.integers(0, n_clips, 64), rng.integers(0, NUM_FRAMES, 64)
                x = degrade(to_float(data["frames"][c, f]), gen)
                b = data["boxes"][c, f] / FRAME
                target = torch.from_numpy(np.stack([(b[:, 0] + b[:, 2]) / 2, (b[:, 1] + b[:, 3]) / 2,
                                                    b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]], 1)).float()
                return F.smooth_l1_loss(model(x), target, beta=0.02)
        elif name == "identity":
            model = IdentityJudge()
            extra = ArcFaceHead(96, int(data["identity"].max()) + 1)

            def loss_fn(rng, gen, model=model, extra=extra):
                c = rng.integers(0, n_clips, 128)
                f = rng.integers(0, NUM_FRAMES, 128)
                crops = face_crops(data["frames"][c, f], data["boxes"][c, f], ID_CROP, rng, jitter=0.05)
                use_ref = rng.random(128) < 0.25  # reference crops too: they are what the reference side sees
                if use_ref.any():
                    refs = np.stack([np.asarray(_resize(r, ID_CROP)) for r in data["references"][c[use_ref]]])
                    crops[use_ref] = refs
                x = degrade(to_float(crops), gen)
                return extra(model(x), torch.from_numpy(data["identity"][c]).long())
        elif name == "attributes":
            model, extra = AttributeJudge(), None

            def loss_fn(rng, gen, model=model):
                c, f = rng.integers(0, n_clips, 64), rng.integers(0, NUM_FRAMES, 64)
                logits = model(degrade(to_float(data["frames"][c, f]), gen))
                loss = 0.0
                for key, value in logits.items():
                    target = torch.from_numpy(data[key][c]).long()
                    loss = loss + F.cross_entropy(value, target, ignore_index=-1)
                return loss
        else:
            model, extra = MotionJudge(), None

            def loss_fn(rng, gen, model=model):
                c = rng.integers(0, n_clips, 24)
                frames, boxes = data["frames"][c], data["boxes"][c]
                noisy = boxes + rng.normal(0, 0.6, boxes.shape)  # the locator's error at test time
                pixels, track = motion_inputs(frames, noisy, rng)
                pixels = degrade(pixels.flatten(0, 1).reshape(-1, 3, MOTION_CROP, MOTION_CROP), gen).view(pixels.shape)
                motion, speed = model(pixels, track.float())
                return F.cross_entropy(motion, torch.from_numpy(data["motion"][c]).long()) + 0.5 * F.cross_entropy(
                    speed, torch.from_numpy(data["speed"][c]).long())
        model = _fit(name, model, extra, loss_fn, steps, 2e-3, out, seed + len(name), progress)
        save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(folder / f"{name}.safetensors"))
    (folder / "judges.json").write_text(json.dumps({
        "format": 1, "world_seed": world_seed, "frame": FRAME, "id_crop": ID_CROP, "motion_crop": MOTION_CROP,
        "num_frames": NUM_FRAMES, "attributes": {k: list(v) for k, v in ATTRIBUTES.items()},
        "motions": list(MOTIONS), "speeds": list(SPEEDS), "trained_on": f"judge split, {identities} identities x 2 clips",
        "seed": seed}, indent=2))
    if all((folder / f"{n}.safetensors").is_file() for n in STEPS):
        from .judge_eval import measure_judges

        metrics = measure_judges(folder, out / "judge_eval_clips.npz", world_seed=world_seed, progress=progress)
        (folder / "judge_metrics.json").write_text(json.dumps(metrics, indent=2))
    return folder


def _resize(image: np.ndarray, size: int):
    from PIL import Image

    return Image.fromarray(image).resize((size, size), Image.Resampling.BILINEAR)
