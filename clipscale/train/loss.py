"""Contrastive losses over the global batch: softmax CLIP loss and sigmoid (SigLIP) loss.

Every rank holds B local pairs; the global batch has N = W * B pairs (W = world size, equal B on every rank,
as all_gather needs). Features are all-gathered so each rank sees all N negatives.

Gradient bookkeeping (L = the loss of one process on the concatenated N pairs, G_r = dL/d(rank r's features),
loss_r = what rank r returns). Data-parallel training (DDP, DeepSpeed) AVERAGES parameter gradients over ranks.

- ``clip_softmax_loss(local_loss=True, gather_with_grad=True)`` (the default) and ``sigmoid_loss``:
  mean_r loss_r = L and backward of loss_r gives rank r's features the gradient W * G_r (the all-gather's
  backward sums every rank's contribution into the owner). Averaging over ranks then gives every parameter
  exactly the full-batch gradient dL/dtheta; logit_scale/logit_bias get mean_r d loss_r = dL/ds.
  Each rank computes only [B, N] logits.
- ``clip_softmax_loss(local_loss=False, gather_with_grad=False)`` (open_clip's default): every rank computes
  the full [N, N] loss, loss_r = L, and the local features get exactly G_r (gradient flows only through the
  local slot). Averaging then gives the towers dL/dtheta / W but logit_scale the full dL/ds: the towers'
  gradient is scaled down by W relative to the temperature's.
- ``local_loss=False, gather_with_grad=True``: loss_r = L, features get W * G_r; averaging is exact again,
  at [N, N] logits per rank.
- ``local_loss=True, gather_with_grad=False`` drops the terms where rank r's features are negatives of other
  ranks' rows: mean_r loss_r = L still, but the gradient is not the full-batch gradient.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
import torch.nn.functional as F


def _rank_and_world(group=None) -> tuple[int, int]:
    if not (dist.is_available() and dist.is_initialized()):
        return 0, 1
    return dist.get_rank(group), dist.get_world_size(group)


class _AllGatherWithGrad(torch.autograd.Function):
    """all_gather whose backward sums the gradient of the gathered tensor over ranks and returns this rank's
    slice (all_reduce rather than reduce_scatter: gloo has no reduce_scatter)."""

    @staticmethod
    def forward(ctx, tensor: torch.Tensor, group):
        ctx.group = group
        ctx.rank, world = _rank_and_world(group)
        ctx.local = tensor.shape[0]
        gathered = [torch.empty_like(tensor) for _ in range(world)]
        dist.all_gather(gathered, tensor.contiguous(), group=group)
        return torch.cat(gathered, dim=0)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        grad = grad.contiguous().clone()
        dist.all_reduce(grad, op=dist.ReduceOp.SUM, group=ctx.group)
        start = ctx.rank * ctx.local
        return grad[start:start + ctx.local], None


def gather_features(features: torch.Tensor, group=None, with_grad: bool = True) -> torch.Tensor:
    """[B, D] on each rank -> [W * B, D] in rank order. Without a process group, returns features.

    with_grad=True: gradients of every rank's loss reach the owning rank (see module docstring).
    with_grad=False: all_gather, then the local tensor is put back in its slot, so only this rank's loss
    sends gradient to this rank's features (open_clip's gather_with_grad=False).
    """
    rank, world = _rank_and_world(group)
    if world == 1:
        return features
    if with_grad:
        return _AllGatherWithGrad.apply(features, group)
    gathered = [torch.empty_like(features) for _ in range(world)]
    dist.all_gather(gathered, features.detach().contiguous(), group=group)
    gathered[rank] = features
    return torch.cat(gathered, dim=0)


def clip_softmax_loss(image_features: torch.Tensor, text_features: torch.Tensor, logit_scale: torch.Tensor,
                      gather: bool = True, local_loss: bool = True, gather_with_grad: bool = True,
                      group=None) -> torch.Tensor:
    """Symmetric InfoNCE (CLIP): mean of image->text and text->image cross-entropy, pair i matches pair i.

    Features are L2-normalized [B, D]; logit_scale is the multiplier (already exp'd). gather=False, or no
    process group, uses only the local batch's negatives.
    """
    rank, world = _rank_and_world(group) if gather else (0, 1)
    local = image_features.shape[0]
    if world == 1:
        logits_per_image = logit_scale * image_features @ text_features.T
        labels = torch.arange(local, device=image_features.device)
        return (F.cross_entropy(logits_per_image, labels) + F.cross_entropy(logits_per_image.T, labels)) / 2
    all_image = gather_features(image_features, group, with_grad=gather_with_grad)
    all_text = gather_features(text_features, group, with_grad=gather_with_grad)
    if local_loss:
        # this rank's rows of the [N, N] logits, in both directions; its positives sit at rank * B + i
        logits_per_image = logit_scale * image_features @ all_text.T
        logits_per_text = logit_scale * text_features @ all_image.T
        labels = torch.arange(local, device=image_features.device) + rank * local
    else:
        logits_per_image = logit_scale * all_image @ all_text.T
        logits_per_text = logits_per_image.T
        labels = torch.arange(all_image.shape[0], device=image_features.device)
    return (F.cross_entropy(logits_per_image, labels) + F.cross_entropy(logits_per_text, labels)) / 2


def sigmoid_loss(image_features: torch.Tensor, text_features: torch.Tensor, logit_scale: torch.Tensor,
                 logit_bias: torch.Tensor, gather: bool = True, group=None) -> torch.Tensor:
    """SigLIP: binary log-loss on every (image, text) pair, +1 for matching pairs, -1 otherwise, summed over
    the pairs of this rank's images with all N texts and divided by the local batch B (open_clip SigLipLoss).

    Texts are gathered with gradient (open_clip exchanges them between neighbours with gradient; the sum
    over pairs is the same), so mean_r loss_r is the full-batch loss and averaging over ranks gives the
    full-batch gradient.
    """
    rank, world = _rank_and_world(group) if gather else (0, 1)
    local = image_features.shape[0]
    all_text = gather_features(text_features, group, with_grad=True) if world > 1 else text_features
    logits = logit_scale * image_features @ all_text.T + logit_bias
    labels = -torch.ones_like(logits)
    rows = torch.arange(local, device=logits.device)
    labels[rows, rows + rank * local] = 1.0
    return -F.logsigmoid(labels * logits).sum() / local
