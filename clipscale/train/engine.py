"""Model, optimizer and DeepSpeed engine for one Ray Train worker."""
from __future__ import annotations

import torch

from clipscale.config import COMPILE_ON_CPU, RunConfig
from clipscale.train.deepspeed_config import deepspeed_config, resolve_precision
from clipscale.train.plan import model_spec


def param_groups(model: torch.nn.Module, weight_decay: float) -> list[dict]:
    """No weight decay on gains, biases, embeddings-of-one-row and the temperature (open_clip's
    rule: parameters with fewer than 2 dimensions)."""
    decay, no_decay = [], []
    for _, p in model.named_parameters():
        if p.requires_grad:
            (decay if p.ndim >= 2 else no_decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay},
            {"params": no_decay, "weight_decay": 0.0}]


def skip_cpu_shm_build() -> None:
    """DeepSpeed's CPU accelerator compiles a shared-memory all-reduce op with g++ on the first
    ``deepspeed.initialize`` (~160 s on 2 cores). That op only serves inference all-reduce;
    training uses the gloo process group Ray created. Marking it incompatible skips the build."""
    import deepspeed.ops
    deepspeed.ops.__compatible_ops__["deepspeed_shm_comm"] = False


def build_engine(cfg: RunConfig, vocab_size: int, world: int):
    """Returns (engine, precision, params). The same code path on GPU (bf16) and CPU (fp32,
    ``DS_ACCELERATOR=cpu``, gloo)."""
    import deepspeed

    from clipscale.models.clip import CLIP

    on_gpu = torch.cuda.is_available()
    if not on_gpu:
        skip_cpu_shm_build()
    precision = resolve_precision(cfg.train, on_gpu)
    model = CLIP(model_spec(cfg, vocab_size=vocab_size), loss=cfg.train.loss)
    if cfg.model.grad_checkpointing:
        model.set_grad_checkpointing(True)
    if cfg.train.compile:
        if not on_gpu:  # use_gpu: auto landed on a CPU worker
            raise ValueError(COMPILE_ON_CPU)
        # In place (nn.Module.compile): parameter names, and so checkpoints, stay the same.
        model.visual.compile()
        model.text.compile()
    params = sum(p.numel() for p in model.parameters())
    optimizer = torch.optim.AdamW(param_groups(model, cfg.train.weight_decay), lr=cfg.train.peak_lr,
                                  betas=tuple(cfg.train.betas), eps=cfg.train.eps)
    engine, *_ = deepspeed.initialize(model=model, optimizer=optimizer,
                                      config=deepspeed_config(cfg.train, precision),
                                      dist_init_required=False)
    return engine, precision, params
