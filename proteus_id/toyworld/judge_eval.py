"""Using the trained judges on videos (any size / length: frames are resized to 64 x 64 and resampled to 17), and
measuring them on the evaluation identities' true renders."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from ..errors import UserError
from .judge_data import ATTRIBUTES, face_crops, to_float
from .judges import (FRAME, ID_CROP, NUM_FRAMES, AttributeJudge, FaceLocator, IdentityJudge, MotionJudge,
                     motion_inputs)
from .traits import DEFAULT_WORLD_SEED, MOTIONS, SPEEDS


def standardise(frames: np.ndarray, num_frames: int | None = NUM_FRAMES) -> np.ndarray:
    """uint8 (F, H, W, 3) -> (num_frames, 64, 64, 3): centred square crop, resize, uniform frame resampling."""
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or len(frames) == 0:
        raise UserError(f"expected frames shaped (F, H, W, 3), got {frames.shape}")
    if num_frames is not None and len(frames) != num_frames:
        frames = frames[np.linspace(0, len(frames) - 1, num_frames).round().astype(int)]
    h, w = frames.shape[1:3]
    if (h, w) != (FRAME, FRAME):
        side = min(h, w)
        top, left = (h - side) // 2, (w - side) // 2
        frames = np.stack([np.asarray(Image.fromarray(f[top : top + side, left : left + side]).resize(
            (FRAME, FRAME), Image.Resampling.BILINEAR)) for f in frames])
    return frames


class JudgeSet:
    def __init__(self, folder: Path, locator, identity, attributes, motion, info: dict):
        self.folder, self.info = folder, info
        self.locator, self.identity_net, self.attribute_net, self.motion_net = locator, identity, attributes, motion

    @classmethod
    def load(cls, folder: str | Path) -> "JudgeSet":
        from safetensors.torch import load_file

        folder = Path(folder)
        nets = {"locator": FaceLocator(), "identity": IdentityJudge(), "attributes": AttributeJudge(), "motion": MotionJudge()}
        missing = [n for n in nets if not (folder / f"{n}.safetensors").is_file()]
        if missing or not (folder / "judges.json").is_file():
            raise UserError(f"{folder} lacks the judges' files ({', '.join(missing) or 'judges.json'}); "
                            "train them with `proteus-id toy train-judges`")
        for name, net in nets.items():
            net.load_state_dict(load_file(str(folder / f"{name}.safetensors")), strict=True)
            net.eval()
        return cls(folder, nets["locator"], nets["identity"], nets["attributes"], nets["motion"],
                   json.loads((folder / "judges.json").read_text()))

    @torch.no_grad()
    def locate(self, frames: np.ndarray) -> np.ndarray:
        """(F, 64, 64, 3) -> (F, 4) face boxes in pixels."""
        p = self.locator(to_float(frames)).numpy() * FRAME
        cx, cy, w, h = p[:, 0], p[:, 1], np.maximum(p[:, 2], 4), np.maximum(p[:, 3], 4)
        return np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1)

    @torch.no_grad()
    def embed(self, crops: np.ndarray) -> np.ndarray:
        """(N, 40, 40, 3) uint8 face crops -> (N, 96) embeddings."""
        return self.identity_net(to_float(crops)).numpy()

    def embed_reference(self, reference) -> np.ndarray:
        """A reference face crop (path, PIL or array; its centred square is used, as the toyworld backend does)."""
        from .identity_encoder import face_crop_of

        crop, _ = face_crop_of(reference)
        return self.embed(np.asarray(crop.resize((ID_CROP, ID_CROP), Image.Resampling.BILINEAR))[None])[0]

    def identity_similarity(self, reference, frames: np.ndarray) -> np.ndarray:
        """Per given frame: max(0, cos(judge(reference), judge(located face))). Frames are used as given (the
        caller samples them), resized to 64 x 64."""
        frames = standardise(frames, num_frames=None)
        ref = self.embed_reference(reference)
        crops = face_crops(frames, self.locate(frames), ID_CROP)
        emb = self.embed(crops)
        cos = emb @ ref / np.maximum(np.linalg.norm(emb, axis=1) * np.linalg.norm(ref), 1e-12)
        return np.maximum(cos, 0.0)

    @torch.no_grad()
    def attributes(self, frames: np.ndarray) -> dict[str, str]:
        """Video-level attributes: logits averaged over the frames; hat colour only when a hat is seen."""
        frames = standardise(frames)
        logits = self.attribute_net(to_float(frames))
        out = {name: ATTRIBUTES[name][int(v.mean(0).argmax())] for name, v in logits.items()}
        if out["hat"] == "none":
            out.pop("hat_colour")
        return out

    @torch.no_grad()
    def motion(self, frames: np.ndarray) -> dict[str, object]:
        frames = standardise(frames)
        pixels, track = motion_inputs(frames[None], self.locate(frames)[None])
        motion, speed = self.motion_net(pixels, track.float())
        pm, ps = F.softmax(motion[0], -1).numpy(), F.softmax(speed[0], -1).numpy()
        return {"motion": MOTIONS[int(pm.argmax())], "speed": SPEEDS[int(ps.argmax())],
                "motion_probs": dict(zip(MOTIONS, pm.round(4).tolist()))}

    def text_alignment(self, frames: np.ndarray, prompt: str) -> dict[str, float]:
        """Which of the attributes the prompt asks for (read with the world's phrase tables) the judges see:
        per attribute 1/0, plus `text_alignment` = their mean (NaN-free: only asked-for attributes count)."""
        from .captions import parse_prompt

        asked = parse_prompt(prompt)
        if not asked:
            raise UserError("the prompt names none of the world's attributes (clothes, hat, place, light, motion)")
        seen = {**self.attributes(frames), **{k: v for k, v in self.motion(frames).items() if k in ("motion", "speed")}}
        hits = {k: float(seen.get(k, "none" if k == "hat" else None) == v) for k, v in asked.items()}
        hits["text_alignment"] = float(np.mean([hits[k] for k in asked if k != "speed"]))
        return hits


def measure_judges(folder: str | Path, cache: str | Path, world_seed: int = DEFAULT_WORLD_SEED,
                   progress: bool = True) -> dict:
    """Held-out accuracy on true renders of the 150 evaluation identities (2 clips each, clip indices no model
    training uses): locator error, identity top-1 (gallery: one reference crop per identity; probes: located
    faces in frames), attributes, motion and speed; each with its chance level."""
    from .judge_data import cached_judge_set

    judges = JudgeSet.load(folder)
    data = cached_judge_set(Path(cache), split="eval", identities=150, clips_per_identity=2, first_clip=9_000,
                            world_seed=world_seed, progress=progress)
    n = len(data["frames"])
    frames = data["frames"].reshape(-1, FRAME, FRAME, 3)
    boxes = judges.locate(frames)
    true = data["boxes"].reshape(-1, 4)
    centre_err = np.hypot((boxes[:, 0] + boxes[:, 2] - true[:, 0] - true[:, 2]) / 2,
                          (boxes[:, 1] + boxes[:, 3] - true[:, 1] - true[:, 3]) / 2)
    # identity: gallery = the first clip's reference of each identity; probes = 4 located frames of every clip
    ids = data["identity"]
    first = np.array([np.flatnonzero(ids == i)[0] for i in range(ids.max() + 1)])
    gallery = judges.embed(np.stack([np.asarray(Image.fromarray(r).resize((ID_CROP, ID_CROP), Image.Resampling.BILINEAR))
                                     for r in data["references"][first]]))
    picks = np.array([0, 5, 10, 16])
    probe_frames = data["frames"][:, picks].reshape(-1, FRAME, FRAME, 3)
    probe_boxes = boxes.reshape(n, NUM_FRAMES, 4)[:, picks].reshape(-1, 4)
    probes = judges.embed(face_crops(probe_frames, probe_boxes, ID_CROP))
    g = gallery / np.linalg.norm(gallery, axis=1, keepdims=True)
    p = probes / np.linalg.norm(probes, axis=1, keepdims=True)
    sims = p @ g.T
    truth = np.repeat(ids, len(picks))
    genuine = sims[np.arange(len(truth)), truth]
    mask = np.ones_like(sims, bool)
    mask[np.arange(len(truth)), truth] = False
    impostor = sims[mask]
    result = {
        "identities": int(ids.max() + 1), "clips": int(n),
        "locator_centre_error_px": float(centre_err.mean()),
        "identity_top1": float((sims.argmax(1) == truth).mean()), "identity_chance": 1.0 / (ids.max() + 1),
        "facesim_genuine_mean": float(np.maximum(genuine, 0).mean()),
        "facesim_impostor_mean": float(np.maximum(impostor, 0).mean()),
    }
    attr_hits = {name: [] for name in ATTRIBUTES}
    motion_hits, speed_hits = [], []
    for k in range(n):
        seen = judges.attributes(data["frames"][k])
        for name, values in ATTRIBUTES.items():
            if data[name][k] >= 0:
                attr_hits[name].append(seen.get(name) == values[data[name][k]])
        m = judges.motion(data["frames"][k])
        motion_hits.append(m["motion"] == MOTIONS[data["motion"][k]])
        if MOTIONS[data["motion"][k]] != "still":
            speed_hits.append(m["speed"] == SPEEDS[data["speed"][k]])
    for name, values in ATTRIBUTES.items():
        result[f"{name}_accuracy"] = float(np.mean(attr_hits[name]))
        result[f"{name}_chance"] = 1.0 / len(values)
    result.update({"motion_accuracy": float(np.mean(motion_hits)), "motion_chance": 1.0 / len(MOTIONS),
                   "speed_accuracy": float(np.mean(speed_hits)), "speed_chance": 1.0 / len(SPEEDS)})
    return result
