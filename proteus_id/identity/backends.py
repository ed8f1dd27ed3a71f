"""Face backends by name: a photo in, `IdentityFeatures` out.

A backend is any object with `kind: str` and `extract(image, name=None) -> IdentityFeatures` (image: path, PIL or
numpy). Backends register a factory `factory(face_encoder_dir: Path | None, device: str) -> backend` under their
kind; a model folder's `face_encoder/identity_spec.json` names the kind it was trained with.

Registered here (factories import their heavy dependencies lazily): see `_builtin_backends()`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Protocol

from ..errors import UserError
from .features import IdentityFeatures, IdentitySpec


class FaceBackend(Protocol):
    kind: str

    def extract(self, image, name: str | None = None) -> IdentityFeatures: ...


BackendFactory = Callable[[Path | None, str], FaceBackend]
_REGISTRY: dict[str, BackendFactory] = {}


def register_backend(kind: str, factory: BackendFactory) -> None:
    _REGISTRY[kind] = factory


def available_backends() -> list[str]:
    _builtin_backends()
    return sorted(_REGISTRY)


def get_backend(kind: str, face_encoder_dir: str | Path | None = None, device: str = "cpu") -> FaceBackend:
    _builtin_backends()
    if kind not in _REGISTRY:
        raise UserError(f"unknown face backend {kind!r}; available: {', '.join(sorted(_REGISTRY))}")
    return _REGISTRY[kind](Path(face_encoder_dir) if face_encoder_dir else None, device)


def backend_for_model(model_dir: str | Path, device: str = "cpu") -> FaceBackend:
    """The backend a model folder was trained with (its identity spec's kind), from its face_encoder/ folder."""
    spec = IdentitySpec.for_model(model_dir)
    face_dir = Path(model_dir) / "face_encoder"
    return get_backend(spec.kind, face_dir if face_dir.is_dir() else None, device)


def describe_backend_for_model(model_dir: str | Path) -> str:
    """One line for `proteus-id info`: which backend the model needs and whether it can run here."""
    spec = IdentitySpec.for_model(model_dir)
    vit = f"{spec.num_vit_states} x {spec.vit_dim}-d ViT states" if spec.num_vit_states else "no ViT states"
    head = f"{spec.kind} (id_cond {spec.id_cond_dim}-d, {vit})"
    try:
        backend = backend_for_model(model_dir)  # backends check files and packages here; weights load on first use
        produced = getattr(backend, "produces", None)
        if produced is not None:
            spec.check_backend(produced, spec.kind)
    except UserError as err:
        return f"{head}: NOT available: {err}"
    return f"{head}: available"


_BUILTINS_LOADED = False


def _builtin_backends() -> None:
    """Import the modules that register the built-in backends (each registers itself on import)."""
    global _BUILTINS_LOADED
    if _BUILTINS_LOADED:
        return
    _BUILTINS_LOADED = True
    import importlib

    for module in ("proteus_id.identity.released", "proteus_id.identity.dlib_backend", "proteus_id.toyworld.identity_encoder"):
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as err:
            if err.name != module:  # a real missing dependency inside an existing module
                raise
