"""Everything the transformer's training step needs that does not depend on its weights, computed from one row.

`FeatureExtractor.compute(row)` runs the frozen models once: VAE (clip and face crop), text encoder (caption and
identity prompt, through `pipeline.text.encode_text` so training and inference see the same embeddings), the face
backend on the reference, optical flow for the AML weight. `proteus-id precompute` stores the result; the benchmark
calls it inside the step to measure the release's way (all of it every step).
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..errors import UserError
from .clips import ItemError, load_clip
from .manifest import ManifestRow
from .motion_weight import MOTION_WEIGHT_MODES, motion_weight_pixels, to_latent_grid

logger = logging.getLogger("proteus_id")

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


@dataclass
class FeatureSettings:
    """What a cache is made with; stored in its settings.json and compared on every rerun."""

    model: str
    height: int | None = None  # None: the transformer's sample size x the VAE's spatial factor
    width: int | None = None
    num_frames: int | None = None  # None: the transformer's sample_frames
    frame_stride: int = 3  # the release samples every 3rd frame
    flow: str = "dis"
    flow_options: dict = field(default_factory=dict)
    motion_weight: str = "released"
    identity_backend: str | None = None  # None: the model folder's identity spec
    identity_prompt_length: int = 32
    latent_sampling: str = "posterior"  # posterior: store mean and std, sample each step (as the release); mean
    dtype: str = "bf16"  # storage dtype of latents and embeddings (weights stay float32)
    vae_tiling: bool = False

    def check(self) -> None:
        if self.motion_weight not in MOTION_WEIGHT_MODES:
            raise UserError(f"motion_weight must be one of {', '.join(MOTION_WEIGHT_MODES)}, got {self.motion_weight!r}")
        if self.latent_sampling not in ("posterior", "mean"):
            raise UserError(f"latent_sampling must be 'posterior' or 'mean', got {self.latent_sampling!r}")
        if self.dtype not in DTYPES:
            raise UserError(f"dtype must be one of {', '.join(DTYPES)}, got {self.dtype!r}")
        if self.frame_stride < 1:
            raise UserError(f"frame_stride must be >= 1, got {self.frame_stride}")


def model_fingerprint(model_dir: str | Path) -> str:
    """A hash of the frozen parts' configs and weight-file sizes: a cache made with another VAE/text encoder/tokenizer
    must not be trained with silently. (Weights are not hashed: T5-XXL alone is 9.5 GB.)"""
    from ..pipeline.folder import inspect_model_folder

    folder = inspect_model_folder(model_dir)
    digest = hashlib.sha256()
    for name in ("tokenizer", "text_encoder", "vae"):
        path = folder.found.get(name)
        if path is None:
            continue
        for file in sorted(p for p in path.rglob("*") if p.is_file()):
            rel = f"{name}/{file.relative_to(path)}"
            digest.update(rel.encode())
            if file.suffix in (".json", ".txt", ".model"):
                digest.update(file.read_bytes())
            else:
                digest.update(str(file.stat().st_size).encode())
    return digest.hexdigest()[:16]


class FeatureExtractor:
    def __init__(self, settings: FeatureSettings, device: torch.device | str = "cpu", face_backend=None):
        from ..motion.flow import get_flow_backend
        from ..pipeline import folder as model_folder

        settings.check()
        self.settings, self.device = settings, torch.device(device)
        folder = model_folder.inspect_model_folder(settings.model)
        folder.require_complete()
        self.transformer_config = json.loads((folder.found["transformer"] / "config.json").read_text())
        self.tokenizer = model_folder.load_tokenizer(folder)
        self.text_encoder = model_folder.load_text_encoder(folder, None).to(self.device)
        self.vae = model_folder.load_vae(folder, None).to(self.device)
        if settings.vae_tiling:
            self.vae.enable_tiling()
        self.spatial = 2 ** (len(self.vae.config.block_out_channels) - 1)
        self.temporal = self.vae.config.temporal_compression_ratio
        cfg = self.transformer_config
        self.height = settings.height or cfg["sample_height"] * self.spatial
        self.width = settings.width or cfg["sample_width"] * self.spatial
        self.num_frames = settings.num_frames or cfg["sample_frames"]
        if self.height % self.spatial or self.width % self.spatial or (self.num_frames - 1) % self.temporal:
            raise UserError(
                f"training size {self.height}x{self.width}x{self.num_frames} must be multiples of {self.spatial} "
                f"(height, width) and {self.temporal}k+1 frames for this VAE"
            )
        self.max_text_length = cfg.get("max_text_seq_length", 226)
        flow_options = dict(settings.flow_options)
        if settings.flow == "raft":  # RAFT-large runs where the VAE runs unless the options say otherwise
            flow_options.setdefault("device", str(self.device))
        self.flow = get_flow_backend(settings.flow, **flow_options)
        if face_backend is None:
            from ..identity.backends import backend_for_model, get_backend

            face_dir = Path(settings.model) / "face_encoder"
            face_backend = (get_backend(settings.identity_backend, face_dir if face_dir.is_dir() else None, str(self.device))
                            if settings.identity_backend else backend_for_model(settings.model, str(self.device)))
        self.face_backend = face_backend
        self.store_dtype = DTYPES[settings.dtype]

    def resolved(self) -> dict:
        """settings.json content: the settings with every default resolved, plus the model's fingerprint."""
        data = asdict(self.settings)
        data.update(height=self.height, width=self.width, num_frames=self.num_frames, face_backend=self.face_backend.kind,
                    max_text_length=self.max_text_length, model_fingerprint=model_fingerprint(self.settings.model),
                    latent_channels=self.vae.config.latent_channels,
                    text_dim=getattr(self.text_encoder.config, "d_model", None) or self.text_encoder.config.hidden_size)
        data.pop("model")  # the cache may move with its model; the fingerprint is what must match
        return data

    # ------------------------------------------------------------------ pieces

    @torch.no_grad()
    def encode_texts(self, caption: str, identity_prompt: str) -> dict[str, torch.Tensor]:
        from ..pipeline.text import encode_text

        embeds, mask = encode_text(self.tokenizer, self.text_encoder, [caption], self.max_text_length, self.device, what="caption")
        valid = int(mask[0].sum())
        identity, _ = encode_text(self.tokenizer, self.text_encoder, [identity_prompt], self.settings.identity_prompt_length,
                                  self.device, what="identity prompt")
        return {"prompt_embeds": embeds[0, :valid].to(self.store_dtype), "identity_prompt_embeds": identity[0].to(self.store_dtype)}

    def null_text(self) -> dict[str, torch.Tensor]:
        return self.encode_texts("", "")

    def _scale(self) -> float:
        factor = self.vae.config.scaling_factor
        return 1.0 / factor if getattr(self.vae.config, "invert_scale_latents", False) else factor

    @torch.no_grad()
    def encode_video(self, frames: np.ndarray) -> dict[str, torch.Tensor]:
        """uint8 (F, H, W, 3) -> posterior mean/std (F_lat, C, h, w), times the scaling factor."""
        pixels = torch.from_numpy(frames).to(self.device).permute(3, 0, 1, 2)[None].float() / 127.5 - 1.0
        dist = self.vae.encode(pixels.to(self.vae.dtype)).latent_dist
        factor = self.vae.config.scaling_factor
        out = {"latents_mean": (dist.mean * factor)[0].permute(1, 0, 2, 3)}
        if self.settings.latent_sampling == "posterior":
            out["latents_std"] = (dist.std * factor)[0].permute(1, 0, 2, 3)
        return {k: v.to(self.store_dtype) for k, v in out.items()}

    @torch.no_grad()
    def encode_face_crop(self, crop) -> dict[str, torch.Tensor]:
        """The backend's face crop, plainly resized to the video size (as the release) -> posterior (1, C, h, w)."""
        from diffusers.video_processor import VideoProcessor

        pixels = VideoProcessor(vae_scale_factor=self.spatial).preprocess(crop, height=self.height, width=self.width)
        dist = self.vae.encode(pixels.to(self.device, self.vae.dtype)[:, :, None]).latent_dist
        scale = self._scale()
        out = {"image_latents_mean": (dist.mean * scale)[0].permute(1, 0, 2, 3)}
        if self.settings.latent_sampling == "posterior":
            out["image_latents_std"] = (dist.std * scale)[0].permute(1, 0, 2, 3)
        return {k: v.to(self.store_dtype) for k, v in out.items()}

    def identity(self, reference: np.ndarray, item_id: str) -> dict[str, torch.Tensor]:
        try:
            features = self.face_backend.extract(reference, name=f"{item_id} reference")
        except UserError as err:
            raise ItemError(f"face backend on the reference: {err}") from err
        if features.face_crop is None:
            raise ItemError("the face backend returned no face crop for the reference")
        out = {"id_cond": features.id_cond.reshape(1, -1).float(),
               "face_crop": torch.from_numpy(np.asarray(features.face_crop.convert("RGB")).copy())}
        for k, hidden in enumerate(features.id_vit_hidden):
            out[f"id_vit_hidden.{k}"] = hidden.reshape(hidden.shape[-2], hidden.shape[-1]).to(self.store_dtype)
        out.update(self.encode_face_crop(features.face_crop))
        return out

    def weights(self, clip, latent_shape: tuple[int, int, int]) -> dict[str, torch.Tensor]:
        from ..motion.flow import flow_magnitudes

        magnitude = torch.from_numpy(flow_magnitudes(self.flow(clip.frames)))[None]
        person = torch.from_numpy(clip.person_mask)[None]
        motion = to_latent_grid(motion_weight_pixels(magnitude, person, self.settings.motion_weight), *latent_shape)[0]
        if clip.face_mask is None:
            face = torch.ones(latent_shape)
        else:
            face = to_latent_grid(torch.from_numpy(clip.face_mask)[None], *latent_shape)[0]
        return {"motion_weight": motion.float(), "face_weight": face.float()}

    # ------------------------------------------------------------------ one row

    def compute(self, row: ManifestRow) -> tuple[dict[str, torch.Tensor], dict]:
        """-> (tensors, meta). Raises ItemError (a counted skip reason) for rows that cannot be used."""
        if not row.trainable:
            raise ItemError("no caption or identity prompt")
        clip = load_clip(row, self.height, self.width, self.num_frames, self.settings.frame_stride)
        tensors = self.encode_video(clip.frames)
        tensors.update(self.encode_texts(row.caption, row.identity_prompt))
        tensors.update(self.identity(clip.reference, row.id))
        latent_frames, _, h, w = tensors["latents_mean"].shape
        tensors.update(self.weights(clip, (latent_frames, h, w)))
        meta = {"caption": row.caption, "identity_prompt": row.identity_prompt, **clip.notes}
        return tensors, meta
