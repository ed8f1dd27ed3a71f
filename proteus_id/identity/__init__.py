"""Photo -> identity features: image loading, face backends, the features/spec contract."""

from .features import IdentityFeatures, IdentitySpec
from .image_io import ImageReadError, load_image

__all__ = ["IdentityFeatures", "IdentitySpec", "load_image", "ImageReadError"]
