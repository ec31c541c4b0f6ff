"""Run a model over the evaluation sets and return flat, per-language metrics.

Metric names: ``zeroshot_top1_<lang>``, ``zeroshot_top1_mean`` (over the languages),
``zeroshot_top1_non_en`` (over the languages other than English), ``i2t_r1_<lang>``,
``i2t_r5_<lang>``, ``t2i_r1_<lang>``, ``t2i_r5_<lang>``. English top-1 is ``zeroshot_top1_en``.
Beside them the sizes the analysis needs for binomial intervals and chance levels: ``zeroshot_n_<lang>``
and ``retrieval_n_<lang>`` (items scored per language) and ``zeroshot_classes``.
The model needs only ``encode_image(float NCHW) -> [B, D]`` and ``encode_text(long [B, L]) ->
[B, D]``; features are normalised here.
"""
from __future__ import annotations

import os

import numpy as np
import torch

from clipscale.data.images import to_tensor_batch
from clipscale.evaluation.metrics import ensemble_class_features, retrieval_recall, zeroshot_top1
from clipscale.evaluation.sets import EvalSets


def _image_features(model, images: np.ndarray, batch_size, device, dtype) -> torch.Tensor:
    feats = []
    for i in range(0, len(images), batch_size):
        x = to_tensor_batch(images[i:i + batch_size]).to(device)
        feats.append(model.encode_image(x.to(dtype) if dtype else x).float().cpu())
    return torch.cat(feats)


def _text_features(model, tokenizer, texts: list[str], context_length, batch_size,
                   device) -> torch.Tensor:
    feats = []
    for i in range(0, len(texts), batch_size):
        tokens = tokenizer.encode_batch(texts[i:i + batch_size], context_length).to(device)
        feats.append(model.encode_text(tokens).float().cpu())
    return torch.cat(feats)


def _fill(template: str, name: str) -> str:
    return template.replace("{x}", name).replace("{}", name)


def evaluate(model, tokenizer, eval_dir, image_size: int, context_length: int,
             batch_size: int = 256, device="cpu", dtype: torch.dtype | None = None) -> dict:
    """``eval_dir`` is a folder or an already loaded ``EvalSets``; ``tokenizer`` a loaded
    Tokenizer or its path. ``dtype`` casts image batches (bf16 towers). The model is put in eval
    mode for the duration when it is an nn.Module, and restored."""
    from clipscale.text.tokenizer import load_tokenizer

    sets = eval_dir if isinstance(eval_dir, EvalSets) else EvalSets.load(eval_dir, image_size)
    if isinstance(tokenizer, (str, os.PathLike)):
        tokenizer = load_tokenizer(tokenizer)
    was_training = isinstance(model, torch.nn.Module) and model.training
    if isinstance(model, torch.nn.Module):
        model.eval()
    try:
        with torch.no_grad():
            return _metrics(model, tokenizer, sets, context_length, batch_size, device, dtype)
    finally:
        if was_training:
            model.train()


def _metrics(model, tokenizer, sets: EvalSets, context_length, batch_size, device, dtype):
    out: dict[str, float] = {}
    zs_img = _image_features(model, sets.zeroshot_images, batch_size, device, dtype)
    labels = torch.from_numpy(sets.zeroshot_labels)
    for lang in sets.languages:
        templates, names = sets.prompts[lang], sets.class_names[lang]
        texts = [_fill(t, n) for n in names for t in templates]
        feats = _text_features(model, tokenizer, texts, context_length, batch_size, device)
        class_feats = ensemble_class_features(feats.view(len(names), len(templates), -1))
        out[f"zeroshot_top1_{lang}"] = zeroshot_top1(zs_img, class_feats, labels)
        out[f"zeroshot_n_{lang}"] = int(len(labels))

        images, captions = sets.retrieval[lang]
        r = retrieval_recall(_image_features(model, images, batch_size, device, dtype),
                             _text_features(model, tokenizer, captions, context_length,
                                            batch_size, device), ks=(1, 5))
        out.update({f"{k}_{lang}": v for k, v in r.items()})
        out[f"retrieval_n_{lang}"] = int(len(captions))
    out["zeroshot_classes"] = int(sets.num_classes)
    per_lang = [out[f"zeroshot_top1_{lang}"] for lang in sets.languages]
    out["zeroshot_top1_mean"] = float(np.mean(per_lang))
    non_en = [out[f"zeroshot_top1_{lang}"] for lang in sets.languages if lang != "en"]
    if non_en:
        out["zeroshot_top1_non_en"] = float(np.mean(non_en))
    return out
