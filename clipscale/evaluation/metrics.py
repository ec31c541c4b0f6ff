"""Zero-shot and retrieval metrics on feature matrices. Pure functions of tensors.

Ties count against the model: a prediction is right only when the true match scores strictly
higher than every wrong one (zero-shot), and a true match's rank counts every wrong candidate
scoring at least as high (retrieval). So a model that maps everything to one vector scores 0,
not the share of class 0 or a perfect recall.
"""
from __future__ import annotations

import torch


def l2_normalize(x: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    x = x.float()
    return x / x.norm(dim=-1, keepdim=True).clamp_min(eps)


def ensemble_class_features(prompt_feats: torch.Tensor) -> torch.Tensor:
    """[C, T, D] features of T prompts per class -> [C, D]: the mean of the normalised prompt
    features, normalised again (CLIP's prompt ensembling)."""
    return l2_normalize(l2_normalize(prompt_feats).mean(dim=1))


def zeroshot_top1(image_feats: torch.Tensor, class_feats: torch.Tensor,
                  labels: torch.Tensor) -> float:
    """Share of images whose cosine similarity to their own class beats every other class."""
    if class_feats.shape[0] < 2:
        raise ValueError("zero-shot classification needs at least 2 classes")
    labels = torch.as_tensor(labels, dtype=torch.long)
    sims = l2_normalize(image_feats) @ l2_normalize(class_feats).T
    true = sims.gather(1, labels.view(-1, 1)).squeeze(1)
    others = sims.scatter(1, labels.view(-1, 1), float("-inf")).max(dim=1).values
    return (true > others).float().mean().item()


def _recall(sims: torch.Tensor, ks) -> dict[int, float]:
    """Row i's true match is column i; rank = wrong columns scoring >= the true one."""
    true = sims.diagonal().unsqueeze(1)
    n = sims.shape[0]
    beats = (sims >= true) & ~torch.eye(n, dtype=torch.bool)
    rank = beats.sum(dim=1)
    return {k: (rank < k).float().mean().item() for k in ks}


def retrieval_recall(image_feats: torch.Tensor, text_feats: torch.Tensor,
                     ks=(1, 5)) -> dict[str, float]:
    """Image i and text i are a pair. Returns ``i2t_r<k>`` (image query, texts ranked) and
    ``t2i_r<k>`` (text query, images ranked) for each k."""
    if image_feats.shape[0] != text_feats.shape[0]:
        raise ValueError(f"{image_feats.shape[0]} images but {text_feats.shape[0]} texts")
    sims = l2_normalize(image_feats) @ l2_normalize(text_feats).T
    i2t, t2i = _recall(sims, ks), _recall(sims.T, ks)
    out = {f"i2t_r{k}": i2t[k] for k in ks}
    out.update({f"t2i_r{k}": t2i[k] for k in ks})
    return out
