"""The DeepSpeed config of a run, built from the typed TrainConfig (never hand-written JSON)."""
from __future__ import annotations

from clipscale.choices import Precision
from clipscale.config import TrainConfig


def resolve_precision(train: TrainConfig, on_gpu: bool) -> Precision:
    if train.precision is Precision.AUTO:
        return Precision.BF16 if on_gpu else Precision.FP32
    if train.precision is Precision.BF16 and not on_gpu:
        # Measured: bf16 matmul on these CPUs runs ~300x slower than fp32 (docs/field_notes.md).
        raise ValueError("train.precision=bf16 needs a GPU; use fp32 (or auto) on CPU")
    return train.precision


def deepspeed_config(train: TrainConfig, precision: Precision) -> dict:
    """ZeRO stage, batch sizes, clipping and precision. The optimizer and LR schedule are ours
    (torch AdamW as DeepSpeed's client optimizer, LR set per step from samples seen), so they
    are not in this dict."""
    # With feature-caching accumulation (train/accumulation.py) DeepSpeed sees k micro-steps per
    # optimizer step and steps the optimizer after the k-th.
    micro = train.global_batch_size // (train.num_workers * train.accumulation_steps)
    zero: dict = {"stage": train.zero_stage}
    if train.zero_stage >= 2:
        zero.update(overlap_comm=False, contiguous_gradients=True, reduce_bucket_size=5e7)
    if train.zero_stage == 3:
        zero.update(stage3_param_persistence_threshold=1e4)
    return {
        "train_batch_size": train.global_batch_size,
        "train_micro_batch_size_per_gpu": micro,
        "gradient_accumulation_steps": train.accumulation_steps,
        "gradient_clipping": train.grad_clip,
        "zero_optimization": zero,
        "bf16": {"enabled": precision == Precision.BF16},
        "fp16": {"enabled": False},
        "zero_allow_untested_optimizer": True,
        "steps_per_print": 10**9,  # we log ourselves
        "wall_clock_breakdown": False,
    }
