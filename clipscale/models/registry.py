"""Model sizes: the standard open_clip ViT configs and tiny sizes that train on a CPU in minutes.

Widths, depths, heads and MLP ratios of the standard sizes are open_clip's model configs
(``open_clip/model_configs/<name>.json``) at vocabulary 49408 and context length 77. Tiny sizes share the
same architecture; their vocabulary is a placeholder that a run overrides with its tokenizer's size.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class ImageSpec(BaseModel):
    """ViT image tower."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    image_size: int = Field(224, gt=0, description="native resolution; any multiple of patch_size works")
    patch_size: int = Field(gt=0)
    width: int = Field(gt=0)
    layers: int = Field(gt=0)
    heads: int = Field(gt=0)
    mlp_ratio: float = Field(4.0, gt=0)

    @property
    def mlp_width(self) -> int:
        # open_clip truncates: int(width * mlp_ratio) (ViT-g-14: 1408 * 4.3637 -> 6144)
        return int(self.width * self.mlp_ratio)

    @model_validator(mode="after")
    def _heads_divide_width(self) -> "ImageSpec":
        if self.width % self.heads:
            raise ValueError(f"image width {self.width} is not divisible by heads {self.heads}")
        return self


class TextSpec(BaseModel):
    """Transformer text tower."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    vocab_size: int = Field(49408, gt=0)
    context_length: int = Field(77, gt=0)
    width: int = Field(gt=0)
    layers: int = Field(gt=0)
    heads: int = Field(gt=0)
    mlp_ratio: float = Field(4.0, gt=0)
    causal: bool = Field(True, description="causal attention mask (CLIP); False = bidirectional")
    pool: Literal["eot", "mean"] = Field("eot", description="last non-pad token, or mean over non-pad tokens")

    @property
    def mlp_width(self) -> int:
        return int(self.width * self.mlp_ratio)

    @model_validator(mode="after")
    def _heads_divide_width(self) -> "TextSpec":
        if self.width % self.heads:
            raise ValueError(f"text width {self.width} is not divisible by heads {self.heads}")
        return self


class ModelSpec(BaseModel):
    """A CLIP model: two towers projected into a shared embedding of size embed_dim."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = "custom"
    embed_dim: int = Field(gt=0)
    image: ImageSpec
    text: TextSpec


def _spec(name, embed_dim, image, text) -> ModelSpec:
    return ModelSpec(name=name, embed_dim=embed_dim, image=ImageSpec(**image), text=TextSpec(**text))


# open_clip configs. Vision heads are width // head_width (head_width 64, except H: 80, g: 88, bigG: 104).
MODELS: dict[str, ModelSpec] = {
    s.name: s
    for s in [
        # Steps of the CPU demo's size ladder below and between the tiny sizes (docs/recipe.md):
        # at a few tens of thousands of samples the capacity step must be small enough that each
        # size trains within the budget, and large enough to show in accuracy.
        _spec("tiny-xs", 32, dict(image_size=64, patch_size=8, width=32, layers=2, heads=2),
              dict(vocab_size=4096, context_length=32, width=32, layers=2, heads=2)),
        _spec("tiny-xm", 48, dict(image_size=64, patch_size=8, width=48, layers=3, heads=2),
              dict(vocab_size=4096, context_length=32, width=48, layers=3, heads=2)),
        _spec("tiny-s", 64, dict(image_size=64, patch_size=8, width=64, layers=4, heads=2),
              dict(vocab_size=4096, context_length=32, width=64, layers=4, heads=2)),
        _spec("tiny-m", 96, dict(image_size=64, patch_size=8, width=96, layers=4, heads=2),
              dict(vocab_size=4096, context_length=32, width=96, layers=4, heads=2)),
        _spec("tiny", 128, dict(image_size=64, patch_size=8, width=128, layers=4, heads=2),
              dict(vocab_size=4096, context_length=32, width=128, layers=4, heads=2)),
        _spec("tiny-l", 192, dict(image_size=64, patch_size=8, width=192, layers=6, heads=3),
              dict(vocab_size=4096, context_length=32, width=192, layers=6, heads=3)),
        _spec("ViT-S-16", 384, dict(patch_size=16, width=384, layers=12, heads=6),
              dict(width=384, layers=12, heads=6)),
        _spec("ViT-M-16", 512, dict(patch_size=16, width=512, layers=12, heads=8),
              dict(width=512, layers=12, heads=8)),
        _spec("ViT-B-32", 512, dict(patch_size=32, width=768, layers=12, heads=12),
              dict(width=512, layers=12, heads=8)),
        _spec("ViT-B-16", 512, dict(patch_size=16, width=768, layers=12, heads=12),
              dict(width=512, layers=12, heads=8)),
        _spec("ViT-L-14", 768, dict(patch_size=14, width=1024, layers=24, heads=16),
              dict(width=768, layers=12, heads=12)),
        _spec("ViT-H-14", 1024, dict(patch_size=14, width=1280, layers=32, heads=16),
              dict(width=1024, layers=24, heads=16)),
        _spec("ViT-g-14", 1024, dict(patch_size=14, width=1408, layers=40, heads=16, mlp_ratio=4.3637),
              dict(width=1024, layers=24, heads=16)),
        _spec("ViT-bigG-14", 1280, dict(patch_size=14, width=1664, layers=48, heads=16, mlp_ratio=4.9231),
              dict(width=1280, layers=32, heads=20)),
    ]
}

TINY_MODELS = ["tiny-xs", "tiny-xm", "tiny-s", "tiny-m", "tiny", "tiny-l"]
STANDARD_MODELS = ["ViT-S-16", "ViT-M-16", "ViT-B-32", "ViT-B-16", "ViT-L-14", "ViT-H-14", "ViT-g-14",
                   "ViT-bigG-14"]


def get_spec(name: str, **overrides: Any) -> ModelSpec:
    """The registered spec `name`, with fields overridden.

    Overrides: ``embed_dim``; ``image={...}`` / ``text={...}`` (partial dicts); ``image_<field>`` /
    ``text_<field>`` (e.g. ``image_patch_size=16``); and the text-only fields directly
    (``vocab_size``, ``context_length``, ``causal``, ``pool``), e.g. ``get_spec("tiny", vocab_size=8000)``.
    """
    if name not in MODELS:
        raise KeyError(f"unknown model {name!r}; known models: {', '.join(MODELS)}")
    spec = MODELS[name]
    image = spec.image.model_dump()
    text = spec.text.model_dump()
    top: dict[str, Any] = {}
    text_only = set(TextSpec.model_fields) - set(ImageSpec.model_fields)
    for key, value in overrides.items():
        if key == "embed_dim":
            top[key] = value
        elif key in ("image", "text"):
            target = image if key == "image" else text
            for sub, sub_value in dict(value).items():
                target[sub] = sub_value
        elif key == "image_size":
            image[key] = value
        elif key.startswith("image_") and key[len("image_"):] in ImageSpec.model_fields:
            image[key[len("image_"):]] = value
        elif key.startswith("text_") and key[len("text_"):] in TextSpec.model_fields:
            text[key[len("text_"):]] = value
        elif key in ImageSpec.model_fields and key in TextSpec.model_fields:
            raise ValueError(f"override {key!r} is ambiguous: write image_{key}=... or text_{key}=...")
        elif key in text_only:
            text[key] = value
        else:
            valid = sorted({"embed_dim", "image", "text", *text_only}
                           | {f"image_{f}" for f in ImageSpec.model_fields}
                           | {f"text_{f}" for f in TextSpec.model_fields})
            raise ValueError(f"unknown override {key!r}; valid: {', '.join(valid)}")
    return ModelSpec(name=spec.name, embed_dim=top.get("embed_dim", spec.embed_dim),
                     image=ImageSpec(**image), text=TextSpec(**text))
