"""The released checkpoint layout: strict loading with named errors, meta-device builds, parameter counts.

The release loaded weights with `strict=False` after silently dropping every tensor whose shape did not match.
Here a missing, unexpected or mis-shaped tensor stops the load with a message that names them.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch

__all__ = [
    "CheckpointError",
    "read_config",
    "read_state_dict",
    "write_transformer_folder",
    "check_state_dict",
    "load_model_strict",
    "build_on_meta",
    "parameter_counts",
]

SAFETENSORS_NAMES = ("diffusion_pytorch_model.safetensors", "model.safetensors")
PICKLE_NAMES = ("diffusion_pytorch_model.bin", "pytorch_model.bin")
_HARMLESS_KWARGS = {"low_cpu_mem_usage", "use_safetensors", "local_files_only", "variant", "revision", "cache_dir"}


class CheckpointError(ValueError):
    """A model folder whose tensors do not fit the model its config describes."""


def resolve_folder(path: str | os.PathLike, subfolder: str | None = None) -> Path:
    folder = Path(path) / subfolder if subfolder else Path(path)
    if not folder.is_dir():
        raise CheckpointError(
            f"{folder} is not a local folder. Proteus-ID loads weights only from local folders (model hubs are not "
            "contacted); download the checkpoint first and pass its path"
        )
    return folder


def read_config(folder: str | os.PathLike) -> dict[str, Any]:
    path = Path(folder) / "config.json"
    if not path.is_file():
        raise CheckpointError(f"{folder} has no config.json")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise CheckpointError(f"{path} is not valid JSON: {err}") from err


def weight_files(folder: Path) -> list[Path]:
    """The safetensors file, the shards named by a `*.safetensors.index.json`, or (last resort) a pickle file."""
    for name in SAFETENSORS_NAMES:
        index = folder / f"{name}.index.json"
        if index.is_file():
            shards = sorted(set(json.loads(index.read_text())["weight_map"].values()))
            missing = [s for s in shards if not (folder / s).is_file()]
            if missing:
                raise CheckpointError(f"{index} names shards that are not in {folder}: {', '.join(missing)}")
            return [folder / s for s in shards]
        if (folder / name).is_file():
            return [folder / name]
    for name in PICKLE_NAMES:
        if (folder / name).is_file():
            return [folder / name]
    raise CheckpointError(f"{folder} has no weights (expected {SAFETENSORS_NAMES[0]} or a sharded index)")


def read_state_dict(folder: str | os.PathLike, dtype: torch.dtype | None = None) -> dict[str, torch.Tensor]:
    """All tensors of a folder, cast to `dtype` file by file. Pickle files load only with weights_only=True."""
    from safetensors.torch import load_file

    state: dict[str, torch.Tensor] = {}
    for file in weight_files(Path(folder)):
        try:
            if file.suffix == ".safetensors":
                part = load_file(str(file))
            else:
                part = torch.load(file, map_location="cpu", weights_only=True)
        except Exception as err:  # a corrupt file: name it, keep the cause
            raise CheckpointError(f"cannot read weights from {file}: {err}") from err
        for key, value in part.items():
            state[key] = value.to(dtype) if dtype is not None and value.is_floating_point() else value
    return state


def write_transformer_folder(out_dir: str | os.PathLike, state_dict: dict[str, torch.Tensor], config: dict) -> Path:
    """Write a diffusers-style folder (diffusion_pytorch_model.safetensors + config.json), each file atomically."""
    from safetensors.torch import save_file

    from ..atomic import atomic_path, write_json_atomic

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    with atomic_path(out / SAFETENSORS_NAMES[0]) as tmp:
        save_file(state_dict, str(tmp))
    write_json_atomic(out / "config.json", config, indent=2, sort_keys=True)
    return out


def check_state_dict(model: torch.nn.Module, state: dict[str, torch.Tensor], where: str = "checkpoint") -> None:
    """Raise CheckpointError naming every missing, unexpected and mis-shaped tensor."""
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    mismatched = sorted(
        f"{k}: checkpoint {tuple(state[k].shape)} vs model {expected[k]}"
        for k in set(expected) & set(state)
        if tuple(state[k].shape) != expected[k]
    )
    if not (missing or unexpected or mismatched):
        return
    lines = [f"{where} does not fit the model its config describes:"]
    for title, items in (("missing", missing), ("unexpected", unexpected), ("mis-shaped", mismatched)):
        if items:
            shown = ", ".join(items[:8]) + (f", ... ({len(items) - 8} more)" if len(items) > 8 else "")
            lines.append(f"  {len(items)} {title}: {shown}")
    raise CheckpointError("\n".join(lines))


def build_on_meta(cls, config: dict[str, Any]) -> torch.nn.Module:
    """Instantiate a ConfigMixin model without allocating its parameters (buffers stay real)."""
    from accelerate import init_empty_weights

    with init_empty_weights(include_buffers=False):
        return cls.from_config(config)


def load_model_strict(
    cls,
    path: str | os.PathLike,
    subfolder: str | None = None,
    torch_dtype: torch.dtype | None = None,
    device: str | torch.device | None = None,
    **kwargs: Any,
) -> torch.nn.Module:
    """Build `cls` from `<path>/<subfolder>/config.json` and load its weights strictly."""
    unknown = set(kwargs) - _HARMLESS_KWARGS
    if unknown:
        raise TypeError(f"unsupported loading options: {', '.join(sorted(unknown))}")
    folder = resolve_folder(path, subfolder)
    model = build_on_meta(cls, read_config(folder))
    state = read_state_dict(folder, torch_dtype)
    check_state_dict(model, state, where=str(folder))
    model.load_state_dict(state, strict=True, assign=True)
    if torch_dtype is not None:
        cast_model(model, torch_dtype)
    if device is not None:
        model.to(device)
    return model.eval()


def cast_model(model: torch.nn.Module, dtype: torch.dtype) -> torch.nn.Module:
    """`model.to(dtype)` without diffusers' warning about modules kept in float32.

    diffusers' `ModelMixin.to` warns on every dtype cast, even when the model keeps no module in float32 (it turns a
    missing list into `[]` and then warns whenever the list is not None), so each load of a float16-stored folder
    printed a warning that asks the user to do what we already did. With nothing to keep, torch's own `Module.to`
    casts the same tensors silently; a model that does keep modules in float32 goes through diffusers' path."""
    if getattr(model, "_keep_in_fp32_modules", None):
        return model.to(dtype)
    return torch.nn.Module.to(model, dtype)


def parameter_counts(model: torch.nn.Module) -> dict[str, int]:
    """Elements per top-level module of everything the checkpoint stores (parameters and persistent buffers such
    as CogVideoX's learned positional embedding), in registration order. Works on meta-device models."""
    counts: dict[str, int] = {}
    seen: set[int] = set()
    for name, tensor in model.state_dict(keep_vars=True).items():
        if id(tensor) in seen:  # tied weights (e.g. T5's shared embedding) are stored once
            continue
        seen.add(id(tensor))
        top = name.split(".", 1)[0]
        counts[top] = counts.get(top, 0) + tensor.numel()
    return counts
