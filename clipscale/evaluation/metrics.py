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


def class_ranks(image_feats: torch.Tensor, class_feats: torch.Tensor,
                labels: torch.Tensor) -> torch.Tensor:
    """Per image, how many wrong classes score at least as high as its own (0: a strict top-1)."""
    if class_feats.shape[0] < 2:
        raise ValueError("zero-shot classification needs at least 2 classes")
    labels = torch.as_tensor(labels, dtype=torch.long)
    sims = l2_normalize(image_feats) @ l2_normalize(class_feats).T
    true = sims.gather(1, labels.view(-1, 1))
    beats = (sims >= true).scatter(1, labels.view(-1, 1), False)
    return beats.sum(dim=1)


def classification_metrics(image_feats: torch.Tensor, class_feats: torch.Tensor,
                           labels: torch.Tensor, ks=(1, 5)) -> dict[str, float]:
    """``top<k>`` (true class among the k best, ties against the model) and
    ``mean_per_class_recall`` (top-1 recall of each class present, averaged over those classes:
    clip_benchmark's balanced accuracy)."""
    labels = torch.as_tensor(labels, dtype=torch.long)
    rank = class_ranks(image_feats, class_feats, labels)
    out = {f"top{k}": (rank < k).float().mean().item() for k in ks}
    hit = (rank == 0).float()
    recalls = [hit[labels == c].mean().item() for c in torch.unique(labels).tolist()]
    out["mean_per_class_recall"] = float(sum(recalls) / len(recalls))
    return out


def multi_caption_recall(image_feats: torch.Tensor, text_feats: torch.Tensor,
                         text_image: torch.Tensor, ks=(1, 5, 10)) -> dict[str, float]:
    """Retrieval where image i has several captions (``text_image[t]`` is caption t's image).

    ``i2t_r<k>``: an image query is a hit when any of its captions is among the k best texts (the
    standard multi-caption recall, as clip_benchmark and the COCO/XM3600 papers count it): its best
    caption's rank is the number of other images' captions scoring at least as high.
    ``t2i_r<k>``: a caption query is a hit when its image is among the k best images."""
    text_image = torch.as_tensor(text_image, dtype=torch.long)
    n_img = image_feats.shape[0]
    if text_feats.shape[0] != text_image.shape[0]:
        raise ValueError(f"{text_feats.shape[0]} texts but {text_image.shape[0]} image indices")
    counts = torch.bincount(text_image, minlength=n_img)
    if counts.numel() > n_img or (counts[:n_img] == 0).any():
        raise ValueError("every image needs at least one caption, and every caption an image")
    sims = l2_normalize(image_feats) @ l2_normalize(text_feats).T            # [I, T]
    positive = torch.zeros_like(sims, dtype=torch.bool)
    positive[text_image, torch.arange(len(text_image))] = True
    best = sims.masked_fill(~positive, float("-inf")).max(dim=1, keepdim=True).values
    i2t_rank = ((sims >= best) & ~positive).sum(dim=1)
    true = sims.gather(0, text_image.view(1, -1))                            # [1, T]
    others = torch.ones_like(positive)
    others[text_image, torch.arange(len(text_image))] = False
    t2i_rank = ((sims >= true) & others).sum(dim=0)
    out = {f"i2t_r{k}": (i2t_rank < k).float().mean().item() for k in ks}
    out.update({f"t2i_r{k}": (t2i_rank < k).float().mean().item() for k in ks})
    return out
