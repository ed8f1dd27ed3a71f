"""The world's identity encoder (the ArcFace + EVA-CLIP analogue) and its face backend, kind "toyworld".

A small CNN on a 64 x 64 face crop, trained by us with metric learning (CosFace: normalised softmax with an additive
margin) over identities of the `encoder` split, never the evaluation ones. It returns what the released face front
end returns, at toy size:

    id_cond        (1, 1, 128)   the embedding (not normalised, like ArcFace's)
    id_vit_hidden  2 x (1, 17, 64)   token maps of two depths: 16 spatial tokens (4 x 4 pooled) + their mean

The backend finds the face as follows: a PNG written by the world carries its face box in the text chunk
`toyworld_face_box` ("x0,y0,x1,y1" in pixels) and is cropped there; any other image is taken as a face crop
already, and its centred square is used (this backend has no face detector: give it a crop like the shipped
examples, or a world frame saved with its box).
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..identity.backends import register_backend
from ..identity.features import SPEC_FILE, IdentityFeatures, IdentitySpec
from .traits import DEFAULT_WORLD_SEED

logger = logging.getLogger("proteus_id")

CROP_SIZE = 64
WEIGHTS_FILE = "toyworld_identity_encoder.safetensors"
CONFIG_FILE = "toyworld_identity_encoder.json"
FACE_BOX_KEY = "toyworld_face_box"


def _block(cin: int, cout: int, stride: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False), nn.GroupNorm(8, cout), nn.SiLU(),
        nn.Conv2d(cout, cout, 3, padding=1, bias=False), nn.GroupNorm(8, cout), nn.SiLU(),
    )


class ToyIdentityEncoder(nn.Module):
    """64 x 64 crop -> (embedding (B, embed_dim), [token maps (B, 17, width) x 2])."""

    def __init__(self, width: int = 64, embed_dim: int = 128):
        super().__init__()
        self.config = {"width": width, "embed_dim": embed_dim}
        self.stem = _block(3, 24, 2)  # 32 x 32
        self.stage1 = _block(24, width, 2)  # 16 x 16
        self.stage2 = _block(width, width, 2)  # 8 x 8
        self.stage3 = _block(width, width, 2)  # 4 x 4
        self.head = nn.Sequential(nn.Flatten(), nn.Dropout(0.1), nn.Linear(width * 16, embed_dim))

    @staticmethod
    def _tokens(fmap: torch.Tensor) -> torch.Tensor:
        grid = F.adaptive_avg_pool2d(fmap, 4).flatten(2).transpose(1, 2)  # (B, 16, C)
        return torch.cat([grid.mean(dim=1, keepdim=True), grid], dim=1)  # a "CLS" first, as EVA's states

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        h1 = self.stage1(self.stem(x))
        h3 = self.stage3(self.stage2(h1))
        return self.head(h3), [self._tokens(h1), self._tokens(h3)]


def crop_to_tensor(crops: np.ndarray) -> torch.Tensor:
    """uint8 (B, H, W, 3) -> float (B, 3, H, W), normalised to about [-1, 1]."""
    return torch.from_numpy(np.array(crops)).permute(0, 3, 1, 2).float().div(127.5).sub(1.0)


# ---------------------------------------------------------------- training data


def identity_crops(number: int, count: int, rng: np.random.Generator, world_seed: int = DEFAULT_WORLD_SEED,
                   frame_share: float = 0.4) -> list[np.ndarray]:
    """`count` 64 x 64 crops of one person: reference renders (other settings) and crops of clip frames (any
    motion, hats, detector-like jitter), so the embedding ignores what the prompt controls."""
    from .traits import sample_identity
    from .world import crop_face, make_clip, render_clip, render_reference

    identity = sample_identity(number, world_seed)
    out = []
    for _ in range(count):
        if rng.random() < frame_share:
            clip = render_clip(make_clip(number, int(rng.integers(0, 100_000)), world_seed), num_frames=5)
            k = int(rng.integers(len(clip.frames)))
            jitter = rng.normal(0, [0.04, 0.04, 0.06])
            out.append(crop_face(clip.frames[k], clip.face_boxes[k], CROP_SIZE, jitter))
        else:
            out.append(np.asarray(render_reference(identity, int(rng.integers(0, 100_000)), CROP_SIZE, world_seed)))
    return out


def build_crop_set(split: str, identities: int, per_identity: int, seed: int, world_seed: int = DEFAULT_WORLD_SEED,
                   frame_share: float = 0.4, progress: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """(N, 64, 64, 3) uint8 crops and their labels 0..identities-1 for the first identities of `split`."""
    from tqdm import tqdm

    from .traits import identity_numbers

    rng = np.random.default_rng(seed)
    crops, labels = [], []
    for label, number in enumerate(tqdm(identity_numbers(split, identities), desc=f"{split} crops", disable=not progress)):
        crops += identity_crops(number, per_identity, rng, world_seed, frame_share)
        labels += [label] * per_identity
    return np.stack(crops), np.asarray(labels)


# ---------------------------------------------------------------- training


@dataclass
class EncoderTrainConfig:
    identities: int = 3000
    per_identity: int = 8
    steps: int = 3000
    batch: int = 128
    lr: float = 2e-3
    margin: float = 0.25
    scale: float = 24.0
    seed: int = 1
    world_seed: int = DEFAULT_WORLD_SEED
    checkpoint_every: int = 100
    log_every: int = 20


class CosFaceHead(nn.Module):
    def __init__(self, embed_dim: int, classes: int, scale: float, margin: float):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(classes, embed_dim) * 0.01)
        self.scale, self.margin = scale, margin

    def forward(self, embedding: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        cos = F.normalize(embedding, dim=-1) @ F.normalize(self.weight, dim=-1).T
        logits = self.scale * (cos - self.margin * F.one_hot(labels, cos.shape[1]))
        return F.cross_entropy(logits, labels)


def _augment(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Brightness/contrast jitter and a shift of up to 3 pixels (no flips: marks are not symmetric)."""
    b = x.shape[0]
    gain = 1 + 0.2 * (torch.rand(b, 1, 1, 1, generator=generator) - 0.5)
    bias = 0.2 * (torch.rand(b, 1, 1, 1, generator=generator) - 0.5)
    x = (x * gain + bias).clamp(-1, 1)
    dx, dy = (int(v) for v in torch.randint(-3, 4, (2,), generator=generator))
    return torch.roll(x, shifts=(dy, dx), dims=(2, 3))


def train_encoder(out_dir: str | Path, cfg: EncoderTrainConfig, progress: bool = True) -> Path:
    """Train (or resume) the encoder; writes out_dir/face_encoder/ (weights, config, identity_spec.json) and
    out_dir/encoder_metrics.json (held-out identification accuracy)."""
    from tqdm import tqdm

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "encoder_train_config.json").write_text(json.dumps(asdict(cfg), indent=2))
    data_file = out / "crops.npz"
    if data_file.is_file():
        data = np.load(data_file)
        crops, labels = data["crops"], data["labels"]
    else:
        crops, labels = build_crop_set("encoder", cfg.identities, cfg.per_identity, cfg.seed, cfg.world_seed,
                                       progress=progress)
        tmp = out / ".crops.tmp.npz"
        np.savez(tmp, crops=crops, labels=labels)
        os.replace(tmp, data_file)
    torch.manual_seed(cfg.seed)
    model = ToyIdentityEncoder()
    head = CosFaceHead(model.config["embed_dim"], cfg.identities, cfg.scale, cfg.margin)
    params = list(model.parameters()) + list(head.parameters())
    optimiser = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=5e-4)
    step, ckpt = 0, out / "encoder_checkpoint.pt"
    if ckpt.is_file():
        state = torch.load(ckpt, map_location="cpu", weights_only=True)
        model.load_state_dict(state["model"])
        head.load_state_dict(state["head"])
        optimiser.load_state_dict(state["optimiser"])
        step = state["step"]
        logger.info("resuming the identity encoder from step %d", step)
    generator = torch.Generator().manual_seed(cfg.seed * 7919 + step)
    model.train()
    bar = tqdm(total=cfg.steps, initial=step, desc="encoder", disable=not progress)
    with open(out / "encoder_losses.jsonl", "a") as log:
        while step < cfg.steps:
            index = torch.randint(0, len(crops), (cfg.batch,), generator=generator).numpy()
            x = _augment(crop_to_tensor(crops[index]), generator)
            y = torch.from_numpy(labels[index]).long()
            warm = min(1.0, (step + 1) / 100)
            for group in optimiser.param_groups:
                group["lr"] = cfg.lr * warm * 0.5 * (1 + math.cos(math.pi * step / cfg.steps))
            started = time.time()
            loss = head(model(x)[0], y)
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            step += 1
            bar.update()
            if step % cfg.log_every == 0 or step == cfg.steps:
                log.write(json.dumps({"step": step, "loss": float(loss.detach()), "seconds": round(time.time() - started, 3)}) + "\n")
                log.flush()
            if step % cfg.checkpoint_every == 0 or step == cfg.steps:
                tmp = ckpt.with_name(".encoder_checkpoint.tmp")
                torch.save({"model": model.state_dict(), "head": head.state_dict(), "optimiser": optimiser.state_dict(),
                            "step": step}, tmp)
                os.replace(tmp, ckpt)
    bar.close()
    model.eval()
    face_dir = save_encoder(model, out / "face_encoder")
    metrics = identification_accuracy(lambda c: embed_crops(model, c), split="eval", world_seed=cfg.world_seed)
    (out / "encoder_metrics.json").write_text(json.dumps(metrics, indent=2))
    logger.info("identity encoder: top-1 identification %.1f%% over %d held-out identities",
                100 * metrics["top1_frames"], metrics["identities"])
    return face_dir


def save_encoder(model: ToyIdentityEncoder, face_dir: str | Path) -> Path:
    """Weights, architecture config and identity_spec.json: a model folder's face_encoder/."""
    from safetensors.torch import save_file

    face_dir = Path(face_dir)
    face_dir.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(face_dir / WEIGHTS_FILE))
    (face_dir / CONFIG_FILE).write_text(json.dumps(model.config, indent=2))
    spec = {"kind": "toyworld", "id_cond_dim": model.config["embed_dim"], "vit_dim": model.config["width"],
            "num_vit_states": 2, "crop_size": CROP_SIZE, "tokens_per_state": 17}
    (face_dir / SPEC_FILE).write_text(json.dumps(spec, indent=2))
    return face_dir


@torch.no_grad()
def embed_crops(model: ToyIdentityEncoder, crops: np.ndarray, batch: int = 256) -> np.ndarray:
    model.eval()
    return np.concatenate([model(crop_to_tensor(crops[i : i + batch]))[0].numpy() for i in range(0, len(crops), batch)])


def identification_accuracy(embed, split: str = "eval", identities: int = 150, world_seed: int = DEFAULT_WORLD_SEED,
                            probes_per_identity: int = 4, seed: int = 12345) -> dict:
    """Top-1 identification among `identities` held-out people: gallery = one reference crop each; probes = crops of
    clip frames (any motion, hat, jitter) and other reference crops. `embed(crops uint8) -> (N, D)`."""
    from .traits import identity_numbers, sample_identity
    from .world import render_reference

    rng = np.random.default_rng(seed)
    numbers = identity_numbers(split, identities)
    gallery = np.stack([np.asarray(render_reference(sample_identity(n, world_seed), 50_000, CROP_SIZE, world_seed))
                        for n in numbers])
    frame_probes, ref_probes = [], []
    for n in numbers:
        frame_probes += identity_crops(n, probes_per_identity, rng, world_seed, frame_share=1.0)
        ref_probes += identity_crops(n, probes_per_identity, rng, world_seed, frame_share=0.0)
    truth = np.repeat(np.arange(len(numbers)), probes_per_identity)
    g = embed(gallery)
    g = g / np.linalg.norm(g, axis=1, keepdims=True)
    result = {"split": split, "identities": len(numbers), "probes_per_identity": probes_per_identity,
              "chance": 1.0 / len(numbers)}
    for name, probes in (("frames", frame_probes), ("references", ref_probes)):
        p = embed(np.stack(probes))
        p = p / np.linalg.norm(p, axis=1, keepdims=True)
        result[f"top1_{name}"] = float(np.mean((p @ g.T).argmax(axis=1) == truth))
    return result


# ---------------------------------------------------------------- the face backend


def load_encoder(face_encoder_dir: str | Path) -> ToyIdentityEncoder:
    from safetensors.torch import load_file

    from ..errors import UserError

    folder = Path(face_encoder_dir)
    weights, config = folder / WEIGHTS_FILE, folder / CONFIG_FILE
    if not weights.is_file() or not config.is_file():
        raise UserError(f"{folder} has no toyworld identity encoder ({WEIGHTS_FILE}, {CONFIG_FILE}); "
                        "train one with `proteus-id toy train-encoder`")
    model = ToyIdentityEncoder(**json.loads(config.read_text()))
    model.load_state_dict(load_file(str(weights)), strict=True)
    return model.eval()


def face_crop_of(image, name: str | None = None):
    """(crop PIL 64 x 64, box in source pixels): the world's saved face box when the PNG has one, else the centred
    square of the image."""
    from PIL import Image

    from ..identity.image_io import load_image

    box = None
    if isinstance(image, (str, os.PathLike)) and str(image).lower().endswith(".png"):
        with Image.open(image) as img:
            text = img.info.get(FACE_BOX_KEY)
        box = [float(v) for v in text.split(",")] if text else None
    elif isinstance(image, Image.Image) and image.info.get(FACE_BOX_KEY):
        box = [float(v) for v in image.info[FACE_BOX_KEY].split(",")]
    rgb = load_image(image, name=name)
    if box is not None:
        from .world import crop_face

        crop = crop_face(rgb, box, CROP_SIZE)
        return Image.fromarray(crop), tuple(int(round(v)) for v in box)
    h, w = rgb.shape[:2]
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    square = Image.fromarray(rgb[top : top + side, left : left + side])
    return square.resize((CROP_SIZE, CROP_SIZE), Image.Resampling.LANCZOS), (left, top, left + side, top + side)


def save_world_frame(frame: np.ndarray, box, path: str | Path) -> Path:
    """A world frame as PNG with its face box in the `toyworld_face_box` text chunk (what this backend reads)."""
    from PIL import Image
    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    info.add_text(FACE_BOX_KEY, ",".join(f"{float(v):.2f}" for v in box[:4]))
    path = Path(path)
    Image.fromarray(np.asarray(frame, np.uint8)).save(path, pnginfo=info)
    return path


class ToyworldFaceBackend:
    kind = "toyworld"

    def __init__(self, face_encoder_dir: str | Path, device: str = "cpu"):
        self.model = load_encoder(face_encoder_dir).to(device)
        self.device = device
        self.produces = IdentitySpec(kind="toyworld", id_cond_dim=self.model.config["embed_dim"],
                                     vit_dim=self.model.config["width"], num_vit_states=2)

    @torch.no_grad()
    def extract(self, image, name: str | None = None) -> IdentityFeatures:
        crop, box = face_crop_of(image, name)
        x = crop_to_tensor(np.asarray(crop)[None]).to(self.device)
        embedding, states = self.model(x)
        return IdentityFeatures(
            id_cond=embedding.view(1, 1, -1).cpu(), id_vit_hidden=[s.cpu() for s in states], face_crop=crop,
            aligned_crop=crop, face_box=box, kind=self.kind,
        )


def _factory(face_encoder_dir, device: str) -> ToyworldFaceBackend:
    from ..errors import UserError

    if face_encoder_dir is None:
        raise UserError("the toyworld face backend needs the model's face_encoder/ folder (its trained encoder)")
    return ToyworldFaceBackend(face_encoder_dir, device)


register_backend("toyworld", _factory)
