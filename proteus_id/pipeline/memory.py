"""Parameter counts and weight-memory estimates of a model folder, without loading any weights.

Counts come from the safetensors headers (or, for the transformer, from its config on the meta device), so the
numbers for a 9 GB checkpoint appear in a second. Memory per offload preset, for the weights alone (activations
come on top and grow with frames x height x width):
    none        every component resident on the accelerator
    model       one whole component at a time (diffusers' enable_model_cpu_offload): the largest component
    sequential  one leaf module at a time (enable_sequential_cpu_offload): the largest single block
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch

BYTES = {"bf16": 2, "fp16": 2, "fp32": 4}


@dataclass
class ComponentSize:
    name: str
    parameters: int
    largest_block: int
    dtypes: set[str]
    by_module: dict[str, int]


def _safetensors_files(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.safetensors"))


def component_size(name: str, folder: Path) -> ComponentSize | None:
    """Sizes read from safetensors headers; None when the folder has no safetensors file."""
    from safetensors import safe_open

    files = _safetensors_files(folder)
    if not files:
        return None
    by_module: dict[str, int] = {}
    blocks: dict[str, int] = {}
    dtypes: set[str] = set()
    for file in files:
        with safe_open(str(file), "pt") as f:
            for key in f.keys():
                sl = f.get_slice(key)
                numel = 1
                for d in sl.get_shape():
                    numel *= d
                dtypes.add(str(sl.get_dtype()))
                top = key.split(".", 1)[0]
                by_module[top] = by_module.get(top, 0) + numel
                block = ".".join(key.split(".")[:2]) if key.split(".")[1:2] and key.split(".")[1].isdigit() else key.rsplit(".", 1)[0]
                blocks[block] = blocks.get(block, 0) + numel
    return ComponentSize(name, sum(by_module.values()), max(blocks.values(), default=0), dtypes, by_module)


def transformer_size_from_config(folder: Path) -> ComponentSize:
    """Exact counts of the transformer from its config, built on the meta device (no weights read)."""
    from ..model.checkpoint import build_on_meta, parameter_counts, read_config
    from ..model.transformer import ProteusIDTransformer3DModel

    model = build_on_meta(ProteusIDTransformer3DModel, read_config(folder))
    by_module = parameter_counts(model)
    largest = max(sum(p.numel() for p in m.parameters()) for m in model.transformer_blocks)
    return ComponentSize("transformer", sum(by_module.values()), largest, {"(from config)"}, by_module)


def offload_estimates(sizes: list[ComponentSize], bytes_per_param: int = 2) -> dict[str, float]:
    """GiB of weights resident on the accelerator per preset."""
    gib = 1024**3
    total = sum(s.parameters for s in sizes)
    return {
        "none": total * bytes_per_param / gib,
        "model": max((s.parameters for s in sizes), default=0) * bytes_per_param / gib,
        "sequential": max((s.largest_block for s in sizes), default=0) * bytes_per_param / gib,
    }


def format_count(n: int) -> str:
    for unit, size in (("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if n >= size:
            return f"{n / size:.3f}{unit}"
    return str(n)


def torch_dtype(name: str | None) -> torch.dtype | None:
    table = {"bf16": torch.bfloat16, "bfloat16": torch.bfloat16, "fp16": torch.float16, "float16": torch.float16,
             "fp32": torch.float32, "float32": torch.float32, None: None, "auto": None}
    if name not in table:
        raise ValueError(f"unknown dtype {name!r}; choose bf16, fp16 or fp32")
    return table[name]


def read_json(path: Path) -> dict:
    return json.loads(path.read_text()) if path.is_file() else {}
