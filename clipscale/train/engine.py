"""Model, optimizer and engine: DeepSpeed's for a Ray Train worker (``build_engine``), or a
plain single-process one with the same training surface (``PlainEngine``) for the in-process loop."""
from __future__ import annotations

from pathlib import Path

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


class PlainEngine:
    """The part of DeepSpeed's engine the loop and the checkpoint use (``__call__``, ``backward``,
    ``step``, ``optimizer``, ``module``, ``device``, ``save_checkpoint`` / ``load_checkpoint``),
    on one process with plain autograd: the step clips the gradient norm as DeepSpeed's
    ``gradient_clipping`` does, then steps the optimizer. Runs ``train/loop.py`` in-process."""

    def __init__(self, model: torch.nn.Module, optimizer: torch.optim.Optimizer, grad_clip: float = 0.0,
                 device: str | torch.device = "cpu"):
        self.module, self.optimizer, self.grad_clip = model, optimizer, grad_clip
        self.device = torch.device(device)

    def __call__(self, *args, **kwargs):
        return self.module(*args, **kwargs)

    def backward(self, loss: torch.Tensor) -> None:
        loss.backward()

    def step(self) -> None:
        if self.grad_clip:
            torch.nn.utils.clip_grad_norm_(self.module.parameters(), self.grad_clip)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)

    def save_checkpoint(self, folder: str, tag: str, save_latest: bool = True) -> None:
        (Path(folder) / tag).mkdir(parents=True, exist_ok=True)
        torch.save({"model": self.module.state_dict(), "optimizer": self.optimizer.state_dict()},
                   Path(folder) / tag / "plain_engine.pt")

    def load_checkpoint(self, folder: str, tag: str):
        path = Path(folder) / tag / "plain_engine.pt"
        if not path.exists():
            return None, None
        blob = torch.load(path, weights_only=False)
        self.module.load_state_dict(blob["model"])
        self.optimizer.load_state_dict(blob["optimizer"])
        return str(path), {}


def build_plain_engine(cfg: RunConfig, vocab_size: int) -> tuple[PlainEngine, str, int]:
    """``build_engine``'s model and optimizer in a ``PlainEngine`` (fp32, the current device)."""
    from clipscale.models.clip import CLIP

    model = CLIP(model_spec(cfg, vocab_size=vocab_size), loss=cfg.train.loss)
    optimizer = torch.optim.AdamW(param_groups(model, cfg.train.weight_decay), lr=cfg.train.lr,
                                  betas=tuple(cfg.train.betas), eps=cfg.train.eps)
    return PlainEngine(model, optimizer, cfg.train.grad_clip), "fp32", sum(p.numel() for p in model.parameters())
