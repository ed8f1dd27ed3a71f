"""Putting the trained toy model, its example faces and the judges into the package (proteus_id/assets/).

    proteus_id/assets/proteus-id-toy/     the model folder in the released layout (<= 50 MB), model card README.md
    proteus_id/assets/toyworld-faces/     example reference faces (evaluation identities, never trained on) +
                                          faces.json (identity prompt, a suggested prompt, the traits)
    proteus_id/assets/toyworld-judges/    the world's judges (evaluation metrics; not part of the model)
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from ..defaults import DEFAULT_MODEL_DIR
from ..errors import UserError
from .traits import DEFAULT_WORLD_SEED

ASSETS = DEFAULT_MODEL_DIR.parent
FACES_DIR = ASSETS / "toyworld-faces"
JUDGES_DIR = ASSETS / "toyworld-judges"
MAX_MODEL_MB = 50.0
# evaluation identities shown as examples: varied hair, glasses, beards, marks, skin tones
EXAMPLE_IDENTITIES = (3, 11, 24, 42, 77, 128)
EXAMPLE_PROMPTS = (
    # the first is the demo's default: a walk, the motion the shipped model does best (docs/toyworld.md)
    "A {g} in a blue jacket walks from left to right on a city street, in warm sunset light.",
    "A {g} wearing a red hoodie turns {pos} head to the left in a park, in bright daylight.",
    "A {g} wearing a yellow t-shirt nods {pos} head in an office, in bright daylight.",
    "A {g} in a green sweater and a black cap moves closer to the camera on a beach, in bright daylight.",
    "A {g} wearing a white collared shirt smiles in a studio, lit from the left.",
    "A {g} in a purple jacket talks in a city at night, in cool blue light.",
)


def folder_megabytes(path: Path) -> float:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 1e6


def _replace_dir(staged: Path, final: Path) -> None:
    old = final.with_name(f".{final.name}.old")
    if old.exists():
        shutil.rmtree(old)
    if final.exists():
        os.replace(final, old)
    os.replace(staged, final)
    if old.exists():
        shutil.rmtree(old)


def ship_model(model_dir: str | Path, transformer_dir: str | Path, card: str | Path | None = None,
               out: Path = DEFAULT_MODEL_DIR, generation_defaults: dict | None = None, half: bool = False) -> Path:
    """Copy a trained model folder (its transformer replaced by `transformer_dir`, e.g. the EMA export) to `out`.
    `generation_defaults` ({"steps", "guidance", "guidance_interval", "motion_contrast", "identity_guidance",
    "identity_guidance_negative", "fps"}) go into
    model_index.json: `generate` and `demo` use them when the user gives none. `half` stores the transformer's float32
    tensors in float16 (half the bytes; the loader computes in float32 again when no dtype is asked for)."""
    model_dir, transformer_dir = Path(model_dir), Path(transformer_dir)
    if not (transformer_dir / "config.json").is_file():
        raise UserError(f"{transformer_dir} is not a transformer folder (no config.json)")
    staged = out.with_name(f".{out.name}.staged")
    if staged.exists():
        shutil.rmtree(staged)
    staged.mkdir(parents=True)
    try:
        _stage_model(staged, model_dir, transformer_dir, card, out, generation_defaults, half)
    except BaseException:
        shutil.rmtree(staged)  # nothing half-staged is left beside the package's model
        raise
    _replace_dir(staged, out)
    return out


def _stage_model(staged: Path, model_dir: Path, transformer_dir: Path, card: str | Path | None, out: Path,
                 generation_defaults: dict | None, half: bool) -> None:
    for name in ("tokenizer", "text_encoder", "vae", "scheduler", "face_encoder"):
        shutil.copytree(model_dir / name, staged / name)
    shutil.copytree(transformer_dir, staged / "transformer")
    if half:
        _store_half(staged / "transformer" / "diffusion_pytorch_model.safetensors")
    index = json.loads((model_dir / "model_index.json").read_text())
    if generation_defaults:
        index["generation_defaults"] = dict(generation_defaults)
    (staged / "model_index.json").write_text(json.dumps(index, indent=2) + "\n")
    if card is not None:
        shutil.copy2(card, staged / "README.md")
    elif (out / "README.md").is_file():
        shutil.copy2(out / "README.md", staged / "README.md")
    size = folder_megabytes(staged)
    if size > MAX_MODEL_MB:
        raise UserError(f"the model folder would be {size:.1f} MB, more than the {MAX_MODEL_MB:.0f} MB budget")


def _store_half(path: Path) -> None:
    import torch
    from safetensors.torch import load_file, save_file

    if not path.is_file():
        raise UserError(f"{path.parent} has no single diffusion_pytorch_model.safetensors to store in float16")
    tensors = {k: v.half() if v.dtype == torch.float32 else v for k, v in load_file(str(path)).items()}
    # in place: `path` is in the staged folder, a real copy (copytree follows links), never the training run's export
    save_file(tensors, str(path), metadata={"format": "pt"})


def write_example_faces(out: Path = FACES_DIR, world_seed: int = DEFAULT_WORLD_SEED) -> Path:
    """Reference crops of a few evaluation identities + faces.json with their identity prompts and a prompt each."""
    import numpy as np

    from .captions import identity_prompt
    from .traits import sample_identity
    from .world import render_reference

    out.mkdir(parents=True, exist_ok=True)
    entries = []
    for k, number in enumerate(EXAMPLE_IDENTITIES):
        identity = sample_identity(number, world_seed)
        name = f"eval{number:03d}"
        render_reference(identity, variant=0, world_seed=world_seed).save(out / f"{name}.png")
        pos = "his" if identity.gender == "man" else "her"
        entries.append({
            "name": name, "image": f"{name}.png", "identity": number,
            "identity_prompt": identity_prompt(identity, np.random.default_rng([world_seed, number])),
            "prompt": EXAMPLE_PROMPTS[k % len(EXAMPLE_PROMPTS)].format(g=identity.gender, pos=pos),
            "traits": {k2: v for k2, v in identity.to_dict().items() if k2 not in ("mark_points", "skin_rgb", "hair_rgb")},
        })
    (out / "faces.json").write_text(json.dumps({"world_seed": world_seed, "faces": entries}, indent=2) + "\n")
    return out


def ship_judges(judges_dir: str | Path, out: Path = JUDGES_DIR) -> Path:
    judges_dir = Path(judges_dir)
    if not (judges_dir / "judges.json").is_file():
        raise UserError(f"{judges_dir} has no judges.json; train the judges with `proteus-id toy train-judges`")
    staged = out.with_name(f".{out.name}.staged")
    if staged.exists():
        shutil.rmtree(staged)
    shutil.copytree(judges_dir, staged)
    _replace_dir(staged, out)
    return out
