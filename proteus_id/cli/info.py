"""`proteus-id info --model DIR`: what a model folder holds and what it would take to run it."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", help="model folder in the released layout (default: the shipped model)")
    parser.add_argument("--dtype", default="bf16", choices=["bf16", "fp16", "fp32"], help="weight dtype for the memory estimate")


def run(args: argparse.Namespace) -> int:
    from ..pipeline.folder import OPTIONAL, REQUIRED, ModelFolderError, inspect_model_folder
    from ..pipeline.memory import BYTES, component_size, format_count, offload_estimates, transformer_size_from_config

    model = args.model or _default_model()
    folder = inspect_model_folder(model)
    print(f"model folder: {folder.root}")
    sizes = []
    for name in list(REQUIRED) + list(OPTIONAL):
        if name not in folder.found:
            continue
        path = folder.found[name]
        readable = name not in folder.problems  # damaged weights are reported below, not read
        if name in ("transformer", "transformer_ema"):
            size = transformer_size_from_config(path)
            stored = component_size(name, path) if readable else None
            dtypes = ", ".join(sorted(stored.dtypes)) if stored else "no readable safetensors"
        else:
            size = component_size(name, path) if readable else None
            dtypes = ", ".join(sorted(size.dtypes)) if size else "-"
        if size is None:
            print(f"  {name + '/':17s} found ({_describe(name, path)})")
            continue
        if name != "transformer_ema":
            sizes.append(size)
        print(f"  {name + '/':17s} {format_count(size.parameters):>9s} parameters  [{dtypes}]")
        if name == "transformer":
            for module, count in size.by_module.items():
                print(f"      {module:28s} {format_count(count):>9s}")
    for name, why in folder.problems.items():
        print(f"  {name + '/':17s} UNREADABLE: {why}")
    for name in folder.missing:
        if name in folder.problems:  # printed above, with the reason
            continue
        print(f"  {name + '/':17s} MISSING: {REQUIRED[name]}")
    total = sum(s.parameters for s in sizes)
    print(f"total: {format_count(total)} parameters")
    est = offload_estimates(sizes, BYTES[args.dtype])
    print(f"weights resident on the accelerator in {args.dtype} (activations come on top):")
    for preset, gib in est.items():
        print(f"  --offload {preset:10s} {gib:7.2f} GiB")
    print(f"face backend: {_face_backend_status(folder.root)}")
    print(f"  (identity features the model needs: {_spec_source(folder.root)})")
    if folder.missing or folder.problems:
        raise ModelFolderError(f"{folder.root} cannot generate until the missing parts above are added")
    return 0


def _describe(name: str, path: Path) -> str:
    files = sorted(p.name for p in path.iterdir())[:6]
    return ", ".join(files) if files else "empty"


def _face_backend_status(root: Path) -> str:
    try:
        from ..identity.backends import describe_backend_for_model  # provided by the face front end
    except ImportError:
        return "face front end not installed in this build"
    return describe_backend_for_model(root)


def _default_model() -> Path:
    from ..defaults import default_model_dir
    from ..errors import UserError

    model = default_model_dir()
    if model is None:
        raise UserError("no --model given and this build ships no default model: pass --model DIR")
    return model


def _spec_source(root: Path) -> str:
    from ..identity.features import SPEC_FILE

    if (root / "face_encoder" / SPEC_FILE).is_file():
        return f"from face_encoder/{SPEC_FILE}"
    return "from transformer/config.json (FT_clip_dim, FT_vit_dim, FT_num_scale; kind 'released')"
