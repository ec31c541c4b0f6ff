"""clipscale's CLIP expressed as open_clip 3.3's CLIP: its config and its parameter names.

The towers are the same architecture (pre-LN blocks, exact GELU, LayerNorm eps 1e-5, bias-free patch
conv, class token pooled after ``ln_post``, text pooled at the EOT token, projections without bias), so
the mapping is a renaming plus three reshapes:
- attention: clipscale's ``qkv``/``out`` Linear layers are ``nn.MultiheadAttention``'s
  ``in_proj_*``/``out_proj`` (same q, k, v order and head split);
- image positions: clipscale adds fixed 2-D sin-cos positions computed for the input's grid; open_clip
  keeps a table ``visual.positional_embedding`` [1 + grid^2, width] with ``pos_embed_type: sin_cos_2d``
  (frozen there too). Its own sin-cos table lists columns before rows, so the exported table is
  clipscale's, computed for the export resolution, with the zero row of the class token;
- ``logit_scale``/``logit_bias`` are 0-dim in open_clip, [1] in clipscale.
Text pooling ``eot`` is open_clip's ``pool_type: eos`` with ``eos_id`` = clipscale's EOT id (the last
non-pad token is always EOT). What open_clip's CLIP cannot express is refused with the field named:
mean text pooling (``model.text_pool``) and bidirectional text attention over pads
(``model.causal_text``: open_clip's pad mask is not reachable from its config).
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import torch

from clipscale.data.images import IMAGE_MEAN, IMAGE_STD
from clipscale.errors import ClipscaleError
from clipscale.models.registry import ModelSpec
from clipscale.text.tokenizer import EOT_ID, PAD_ID

OPEN_CLIP_CONFIG = "open_clip_config.json"
OPEN_CLIP_WEIGHTS = "open_clip_model.safetensors"
TOKENIZER_FILE = "tokenizer.model"
# clipscale/data/images.py: shorter side resized (bicubic) and centre-cropped, OpenAI's mean/std
PREPROCESS_CFG = {"mean": list(IMAGE_MEAN), "std": list(IMAGE_STD), "interpolation": "bicubic",
                  "resize_mode": "shortest"}


class ExportError(ClipscaleError, ValueError):
    """A model open_clip cannot express, or an export that cannot be written; names the field or file."""


def check_expressible(spec: ModelSpec) -> None:
    if spec.text.pool != "eot":
        raise ExportError(f"model.text_pool={spec.text.pool!r}: open_clip's text towers pool the first, "
                          f"last, argmax or eos token, not the mean over tokens; only 'eot' exports")
    if not spec.text.causal:
        raise ExportError("model.causal_text=false: open_clip's CLIP config cannot switch on the pad mask a "
                          "bidirectional text tower needs (use_pad_mask is not a text_cfg field); only "
                          "causal text towers export")
    if spec.image.width % 4:
        raise ExportError(f"model image width {spec.image.width}: 2-D sin-cos positions need a multiple of 4")


def model_cfg(spec: ModelSpec, image_size: int, loss: str) -> dict:
    """open_clip's ``model_cfg`` for this spec at ``image_size`` pixels."""
    check_expressible(spec)
    if image_size % spec.image.patch_size:
        raise ExportError(f"image_size={image_size} is not a multiple of the patch size {spec.image.patch_size}")
    image, text = spec.image, spec.text
    cfg = {
        "embed_dim": spec.embed_dim,
        "quick_gelu": False,
        "vision_cfg": {"image_size": image_size, "patch_size": image.patch_size, "width": image.width,
                       "layers": image.layers, "head_width": image.width // image.heads,
                       "mlp_ratio": image.mlp_ratio, "pos_embed_type": "sin_cos_2d", "pool_type": "tok",
                       "final_ln_after_pool": False},
        "text_cfg": {"context_length": text.context_length, "vocab_size": text.vocab_size,
                     "width": text.width, "heads": text.heads, "layers": text.layers,
                     "mlp_ratio": text.mlp_ratio, "pad_id": PAD_ID, "eos_id": EOT_ID, "pool_type": "eos",
                     "no_causal_mask": False, "proj_type": "linear", "proj_bias": False},
    }
    if loss == "sigmoid":  # SigLIP: open_clip creates logit_bias only when init_logit_bias is set
        cfg["init_logit_bias"] = -10.0
    return cfg


def _rename(key: str) -> str:
    """clipscale parameter name -> open_clip CLIP parameter name."""
    key = re.sub(r"^text\.", "", key)  # CLIP keeps the text tower's modules at the top level
    key = key.replace("visual.conv.", "visual.conv1.")
    key = key.replace(".transformer.blocks.", ".transformer.resblocks.")
    key = re.sub(r"^transformer\.blocks\.", "transformer.resblocks.", key)
    key = key.replace(".attn.qkv.weight", ".attn.in_proj_weight").replace(".attn.qkv.bias", ".attn.in_proj_bias")
    key = key.replace(".attn.out.", ".attn.out_proj.")
    key = key.replace(".mlp.0.", ".mlp.c_fc.").replace(".mlp.2.", ".mlp.c_proj.")
    return key


def to_open_clip(state_dict: dict[str, torch.Tensor], spec: ModelSpec, image_size: int) -> dict[str, torch.Tensor]:
    """clipscale CLIP weights -> open_clip CLIP weights (fp32, contiguous, for safetensors)."""
    from clipscale.models.vit import sincos_2d_position_embedding

    out = {}
    for key, value in state_dict.items():
        value = value.detach().float()
        if key in ("logit_scale", "logit_bias"):
            value = value.reshape(())
        out[_rename(key)] = value.contiguous()
    grid = image_size // spec.image.patch_size
    positions = sincos_2d_position_embedding(grid, grid, spec.image.width)
    out["visual.positional_embedding"] = torch.cat([torch.zeros(1, spec.image.width), positions]).contiguous()
    return out


def from_open_clip(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """open_clip CLIP weights written by ``to_open_clip`` -> clipscale CLIP weights."""
    inverse = {}
    for key, value in state_dict.items():
        if key == "visual.positional_embedding":  # clipscale recomputes its fixed positions
            continue
        k = key
        if not k.startswith("visual.") and k not in ("logit_scale", "logit_bias"):
            k = "text." + k
        k = k.replace("visual.conv1.", "visual.conv.").replace(".transformer.resblocks.", ".transformer.blocks.")
        k = k.replace(".attn.in_proj_weight", ".attn.qkv.weight").replace(".attn.in_proj_bias", ".attn.qkv.bias")
        k = k.replace(".attn.out_proj.", ".attn.out.").replace(".mlp.c_fc.", ".mlp.0.").replace(".mlp.c_proj.", ".mlp.2.")
        inverse[k] = value.reshape(1) if k in ("logit_scale", "logit_bias") else value
    return inverse


def load_export(folder: Path):
    """A folder written by ``clipscale export`` as a ``TrainedModel`` (clipscale's own CLIP class)."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    from clipscale.train.checkpoint import TrainState
    from clipscale.trained import EXPORT_MANIFEST, CheckpointError, TrainedModel, build_model

    manifest_file = folder / EXPORT_MANIFEST
    try:
        manifest = json.loads(manifest_file.read_text())
        spec = ModelSpec(**manifest["spec"])
        state = TrainState(**manifest["train_state"])
        loss = manifest["loss"]
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as e:
        raise CheckpointError(f"{manifest_file}: not a clipscale export manifest ({e})") from None
    weights = folder / OPEN_CLIP_WEIGHTS
    if not weights.is_file():
        raise CheckpointError(f"{weights}: missing")
    try:
        open_clip_weights = load_file(str(weights))
    except (SafetensorError, OSError) as e:
        raise CheckpointError(f"{weights}: corrupt safetensors file ({e})") from None
    tokenizer = folder / TOKENIZER_FILE
    if not tokenizer.is_file():
        raise CheckpointError(f"{tokenizer}: missing (the model's tokenizer)")
    model = build_model(spec, loss, from_open_clip(open_clip_weights), weights)
    return TrainedModel(model=model, spec=spec, loss=loss, tokenizer_path=tokenizer, state=state,
                        run_config=manifest.get("run_config"), source=folder, kind="export", checkpoint=None)
