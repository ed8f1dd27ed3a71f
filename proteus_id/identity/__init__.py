"""Photo -> identity features: image loading, face backends, the features/spec contract, the analyzer facade.

Heavy parts (dlib, onnxruntime, facexlib, EVA-CLIP) load inside the backends, on first use.
"""

from .detection import NoFaceError
from .features import IdentityFeatures, IdentitySpec
from .image_io import ImageReadError, load_image


def __getattr__(name: str):
    if name == "FaceAnalyzer":  # imports torch-side backends registry; keep `import proteus_id.identity` cheap
        from .analyzer import FaceAnalyzer

        return FaceAnalyzer
    if name == "derive_identity_prompt":
        from .identity_prompt import derive_identity_prompt

        return derive_identity_prompt
    raise AttributeError(f"module 'proteus_id.identity' has no attribute {name!r}")


__all__ = ["FaceAnalyzer", "IdentityFeatures", "IdentitySpec", "ImageReadError", "NoFaceError", "derive_identity_prompt",
           "load_image"]
