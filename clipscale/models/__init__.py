"""Image and text towers, CLIP, the size registry and analytic FLOPs."""

from clipscale.models.clip import CLIP
from clipscale.models.registry import MODELS, STANDARD_MODELS, TINY_MODELS, ImageSpec, ModelSpec, TextSpec, get_spec

__all__ = ["CLIP", "MODELS", "STANDARD_MODELS", "TINY_MODELS", "ImageSpec", "ModelSpec", "TextSpec", "get_spec"]
