"""Analytic parameter counts and FLOPs per sample of the CLIP models in the registry.

Conventions:
- One multiply-accumulate = 2 FLOPs. Counted: every matmul — patch embedding (as a matmul over the embedded
  patches), QKV, attention scores QK^T and the weighted sum AV over the full T x T matrix (causal kernels
  may skip half; we count what a dense kernel computes, as FlopCounterMode does), attention output, MLP,
  and both projections. Not counted: LayerNorm, GELU, softmax, embeddings lookups, residual adds (a few
  tenths of a percent), and the loss's logits matmul (it depends on the global batch, not the sample).
- ``image_tokens`` = patch tokens entering the image transformer (the class token is added here);
  ``embedded_patches`` = patches the convolution embeds (all of them, also when masking drops tokens);
  ``text_tokens`` = text sequence length.
- Training FLOPs per sample = 3 x forward (the backward pass computes two matmuls per forward matmul:
  input gradient and weight gradient). Autograd skips the patch embedding's input gradient because images
  need none, so a measured forward+backward is lower by that one matmul (under 1% for the standard sizes).
"""

from __future__ import annotations

from clipscale.models.registry import MODELS, ModelSpec, get_spec


def transformer_flops(tokens: int, width: int, layers: int, mlp_width: int) -> int:
    """Forward FLOPs of `layers` pre-LN blocks on one sequence of `tokens` tokens."""
    projections = 2 * tokens * width * (3 * width + width + 2 * mlp_width)  # QKV, out, MLP in and out
    attention = 2 * 2 * tokens * tokens * width  # QK^T and AV, summed over heads
    return layers * (projections + attention)


def image_tokens_at(spec: ModelSpec, image_size: int | tuple[int, int]) -> int:
    """Patch tokens of an image of side image_size (or (height, width))."""
    height, width = (image_size, image_size) if isinstance(image_size, int) else image_size
    patch = spec.image.patch_size
    return (height // patch) * (width // patch)


def forward_flops(spec: ModelSpec, image_tokens: int, text_tokens: int,
                  embedded_patches: int | None = None) -> dict[str, int]:
    """Forward FLOPs of one (image, text) sample: {'image', 'text', 'total'}."""
    image, text = spec.image, spec.text
    embedded_patches = image_tokens if embedded_patches is None else embedded_patches
    patch_embed = 2 * embedded_patches * 3 * image.patch_size ** 2 * image.width
    image_flops = (patch_embed
                   + transformer_flops(image_tokens + 1, image.width, image.layers, image.mlp_width)
                   + 2 * image.width * spec.embed_dim)
    text_flops = (transformer_flops(text_tokens, text.width, text.layers, text.mlp_width)
                  + 2 * text.width * spec.embed_dim)
    return {"image": image_flops, "text": text_flops, "total": image_flops + text_flops}


def train_flops_per_sample(spec: ModelSpec, image_tokens: int, text_tokens: int,
                           embedded_patches: int | None = None) -> int:
    """Training (forward + backward) FLOPs of one sample = 3 x forward; see the module docstring."""
    return 3 * forward_flops(spec, image_tokens, text_tokens, embedded_patches)["total"]


def _transformer_params(width: int, layers: int, mlp_width: int) -> int:
    attention = 3 * width * width + 3 * width + width * width + width
    mlp = width * mlp_width + mlp_width + mlp_width * width + width
    return layers * (attention + mlp + 2 * 2 * width)  # two LayerNorms per block


def param_counts(spec: ModelSpec) -> dict[str, int]:
    """Parameters of CLIP(spec): {'image', 'text', 'total'} (total adds logit_scale; SigLIP adds one bias)."""
    image, text = spec.image, spec.text
    image_params = (3 * image.patch_size ** 2 * image.width  # conv, no bias
                    + image.width  # class token; positions are fixed sin-cos
                    + 2 * image.width * 2  # ln_pre, ln_post
                    + _transformer_params(image.width, image.layers, image.mlp_width)
                    + image.width * spec.embed_dim)
    text_params = (text.vocab_size * text.width + text.context_length * text.width
                   + _transformer_params(text.width, text.layers, text.mlp_width)
                   + 2 * text.width  # ln_final
                   + text.width * spec.embed_dim)
    return {"image": image_params, "text": text_params, "total": image_params + text_params + 1}


def flops_table(names: list[str] | None = None, image_size: int | None = 224, text_tokens: int = 77,
                image_tokens: int | None = None) -> list[dict]:
    """One row per model: params, tokens, forward GFLOPs (image, text, total) and training GFLOPs per sample.

    image_size None = each model's native size; image_tokens overrides the kept patch tokens (masking),
    with the convolution still embedding every patch of image_size. Standard sizes use vocabulary 49408
    and text context 77; text_tokens above a model's context length is capped to it.
    """
    rows = []
    for name in names or list(MODELS):
        spec = get_spec(name)
        size = spec.image.image_size if image_size is None else image_size
        patches = image_tokens_at(spec, size)
        kept = patches if image_tokens is None else image_tokens
        if not 0 < kept <= patches:
            raise ValueError(f"{name}: image_tokens must be in 1..{patches} at {size}px, got {kept}")
        length = min(text_tokens, spec.text.context_length)
        forward = forward_flops(spec, kept, length, embedded_patches=patches)
        rows.append({
            "model": name,
            "params_m": param_counts(spec)["total"] / 1e6,
            "image_size": size,
            "image_tokens": kept,
            "text_tokens": length,
            "image_gflops": forward["image"] / 1e9,
            "text_gflops": forward["text"] / 1e9,
            "forward_gflops": forward["total"] / 1e9,
            "train_gflops": train_flops_per_sample(spec, kept, length, embedded_patches=patches) / 1e9,
        })
    return rows


_COLUMNS = [("model", "model", "{}"), ("params_m", "params (M)", "{:.2f}"), ("image_size", "px", "{}"),
            ("image_tokens", "image tok", "{}"), ("text_tokens", "text tok", "{}"),
            ("image_gflops", "image GF", "{:.3f}"), ("text_gflops", "text GF", "{:.3f}"),
            ("forward_gflops", "fwd GF", "{:.3f}"), ("train_gflops", "train GF", "{:.3f}")]


def format_flops_table(rows: list[dict]) -> str:
    """Aligned text table of flops_table rows (GFLOPs per sample; training = 3 x forward)."""
    cells = [[title for _, title, _ in _COLUMNS]]
    cells += [[fmt.format(row[key]) for key, _, fmt in _COLUMNS] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(_COLUMNS))]
    lines = ["  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths)))
             for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
