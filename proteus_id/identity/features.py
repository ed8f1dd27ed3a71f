"""What the face front end hands to the model, and what a model folder says it needs.

`IdentityFeatures` is the contract between face backends and the pipeline/trainer:
    id_cond        (1, 1, C)            global identity vector (released: ArcFace 512 + EVA-CLIP 768 = 1280)
    id_vit_hidden  list of (1, N, V)    intermediate ViT states (released: 5 x (1, 577, 1024))
    face_crop      PIL RGB              the crop the pipeline VAE-encodes as latent frame 0 (released backend: the
                                        white-background colour crop, as the release feeds it; dlib: the aligned crop)
plus, when the backend has them: aligned_crop (the 512 x 512 aligned colour crop before parsing), parsed_crop (the
white-background colour crop), 5 keypoints and the face box (both in the pixels of the photo as analysed).

`IdentitySpec` is read from `<model>/face_encoder/identity_spec.json` (kind and sizes the model was trained with);
when the file is absent the transformer config's FT_clip_dim / FT_vit_dim / FT_num_scale are used.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ..atomic import atomic_path, write_json_atomic
from ..errors import UserError

SPEC_FILE = "identity_spec.json"


@dataclass
class IdentityFeatures:
    id_cond: torch.Tensor
    id_vit_hidden: list[torch.Tensor]
    face_crop: Image.Image | None = None
    parsed_crop: Image.Image | None = None
    keypoints: np.ndarray | None = None
    face_box: tuple[int, int, int, int] | None = None
    kind: str = "unknown"
    aligned_crop: Image.Image | None = None

    @property
    def spec(self) -> "IdentitySpec":
        """The sizes these features have, as an IdentitySpec of their kind."""
        vit = self.id_vit_hidden[0].shape[-1] if self.id_vit_hidden else 0
        return IdentitySpec(self.kind, int(self.id_cond.shape[-1]), int(vit), len(self.id_vit_hidden))

    def save(self, path: str | Path) -> None:
        """safetensors with id_cond, id_vit_hidden.K and (if present) face_crop as uint8; written atomically."""
        from safetensors.torch import save_file

        tensors = {"id_cond": self.id_cond.float().contiguous()}
        for k, h in enumerate(self.id_vit_hidden):
            tensors[f"id_vit_hidden.{k}"] = h.float().contiguous()
        if self.face_crop is not None:
            tensors["face_crop"] = torch.from_numpy(np.asarray(self.face_crop.convert("RGB")).copy())
        if self.keypoints is not None:
            tensors["keypoints"] = torch.as_tensor(self.keypoints, dtype=torch.float32)
        if self.face_box is not None:
            tensors["face_box"] = torch.as_tensor(self.face_box, dtype=torch.float32)
        with atomic_path(path) as tmp:
            save_file(tensors, str(tmp), metadata={"kind": self.kind})

    @classmethod
    def load(cls, path: str | Path) -> "IdentityFeatures":
        from safetensors import safe_open

        path = Path(path)
        if not path.is_file():
            raise UserError(f"face-features file {path} does not exist")
        try:
            with safe_open(str(path), "pt") as f:
                keys = set(f.keys())
                meta = f.metadata() or {}
                tensors = {k: f.get_tensor(k) for k in keys}
        except Exception as err:
            raise UserError(f"{path} is not a readable safetensors file of face features ({err})") from err
        if "id_cond" not in tensors:  # ViT states may be absent: the dlib backend has none
            raise UserError(f"{path} lacks id_cond: not a face-features file (write one with IdentityFeatures.save)")
        vit = [tensors[f"id_vit_hidden.{k}"] for k in range(len(keys)) if f"id_vit_hidden.{k}" in tensors]
        crop = Image.fromarray(tensors["face_crop"].numpy()) if "face_crop" in tensors else None
        kps = tensors["keypoints"].numpy() if "keypoints" in tensors else None
        box = tuple(int(round(v)) for v in tensors["face_box"].tolist()) if "face_box" in tensors else None
        return cls(tensors["id_cond"], vit, face_crop=crop, keypoints=kps, face_box=box, kind=meta.get("kind", "unknown"))


@dataclass
class IdentitySpec:
    kind: str = "released"
    id_cond_dim: int = 1280
    vit_dim: int = 1024
    num_vit_states: int = 5
    extra: dict = field(default_factory=dict)

    @classmethod
    def for_model(cls, model_dir: str | Path, transformer_config: dict | None = None) -> "IdentitySpec":
        spec_path = Path(model_dir) / "face_encoder" / SPEC_FILE
        if spec_path.is_file():
            try:
                data = json.loads(spec_path.read_text())
            except (OSError, json.JSONDecodeError) as err:
                raise UserError(f"{spec_path} is not readable JSON ({err}); it should name the identity features "
                                'the model needs, e.g. {"kind": "released", "id_cond_dim": 1280, ...}') from err
            known = {k: data.pop(k) for k in ("kind", "id_cond_dim", "vit_dim", "num_vit_states") if k in data}
            return cls(**known, extra=data)
        if transformer_config is None:
            cfg_path = Path(model_dir) / "transformer" / "config.json"
            transformer_config = json.loads(cfg_path.read_text()) if cfg_path.is_file() else {}
        return cls(
            kind="released",
            id_cond_dim=transformer_config.get("FT_clip_dim", 1280),
            vit_dim=transformer_config.get("FT_vit_dim", 1024),
            num_vit_states=transformer_config.get("FT_num_scale", 5),
        )

    def write(self, model_dir: str | Path) -> Path:
        """Record this spec in `<model>/face_encoder/identity_spec.json` (atomically), for models trained on it."""
        path = Path(model_dir) / "face_encoder" / SPEC_FILE
        data = {**self.extra, "kind": self.kind, "id_cond_dim": self.id_cond_dim, "vit_dim": self.vit_dim,
                "num_vit_states": self.num_vit_states}
        return write_json_atomic(path, data, indent=2)

    def describe(self) -> str:
        vit = f"{self.num_vit_states} x {self.vit_dim}-d ViT states" if self.num_vit_states else "no ViT states"
        return f"{self.id_cond_dim}-d id_cond, {vit}"

    def check_backend(self, produced: "IdentitySpec", backend: str) -> None:
        """Before running a face backend: raise UserError when what it produces cannot feed this model."""
        if (produced.id_cond_dim, produced.vit_dim, produced.num_vit_states) == (self.id_cond_dim, self.vit_dim, self.num_vit_states):
            return
        raise UserError(
            f"the '{backend}' face backend gives {produced.describe()}, but this model ({self.kind}) needs "
            f"{self.describe()}: use the '{self.kind}' face backend (its models in <model>/face_encoder/) "
            "or --face-features computed with it"
        )

    def check(self, features: IdentityFeatures, source: str = "face features") -> None:
        """Raise UserError naming what the model needs when `features` do not have its sizes."""
        got_cond = features.id_cond.shape[-1]
        got_vit = {tuple(h.shape[-1:]) for h in features.id_vit_hidden}
        problems = []
        if got_cond != self.id_cond_dim:
            problems.append(f"id_cond is {got_cond}-d, the model needs {self.id_cond_dim}-d")
        if len(features.id_vit_hidden) != self.num_vit_states:
            problems.append(f"{len(features.id_vit_hidden)} ViT states, the model needs {self.num_vit_states}")
        if got_vit and got_vit != {(self.vit_dim,)}:
            problems.append(f"ViT states are {sorted(d[0] for d in got_vit)}-d, the model needs {self.vit_dim}-d")
        if problems:
            raise UserError(
                f"{source} ({features.kind}) do not fit this model ({self.kind}): " + "; ".join(problems)
                + f". Use the '{self.kind}' face backend or features computed with it"
            )
