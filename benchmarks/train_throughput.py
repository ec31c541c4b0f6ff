"""Training throughput of the tiny sizes on this machine, against what the hardware can do.

Prints, per model: samples/s of the training step (forward, backward, AdamW) in one process,
the achieved FLOP/s (analytic training FLOPs per sample x samples/s) and that as a fraction of
a dense fp32 matmul peak measured in the same run on the same threads; then a real 2-worker
Ray Train + DeepSpeed ZeRO-2 run's samples/s, and Ray Data's delivery rate of decoded,
tokenized rows against that consumption rate (the pipeline must not be the bottleneck).
On a GPU it reports bf16 throughput and MFU for ViT-B-16 against the card's bf16 peak.

    python benchmarks/train_throughput.py [--repeats 3] [--skip-ray]
"""
from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import torch

from clipscale.models.clip import CLIP
from clipscale.models.flops import train_flops_per_sample
from clipscale.models.registry import get_spec
from clipscale.sweep.catalog import ACCELERATORS, accelerator_from_product
from clipscale.train.loss import clip_softmax_loss



def matmul_peak(n: int = 2048, iters: int = 10, dtype=torch.float32, device="cpu") -> float:
    a = torch.randn(n, n, dtype=dtype, device=device)
    b = torch.randn(n, n, dtype=dtype, device=device)
    for _ in range(2):
        a @ b
    if device == "cuda":
        torch.cuda.synchronize()
    t = time.perf_counter()
    for _ in range(iters):
        a @ b
    if device == "cuda":
        torch.cuda.synchronize()
    return 2 * n**3 * iters / (time.perf_counter() - t)


def step_rate(name: str, image_size: int, text_tokens: int, batch: int, steps: int,
              device="cpu", dtype=torch.float32) -> float:
    """Samples/s of forward + backward + AdamW on random inputs (no data loading)."""
    spec = get_spec(name)
    model = CLIP(spec).to(device=device, dtype=dtype)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    images = torch.randn(batch, 3, image_size, image_size, device=device, dtype=dtype)
    tokens = torch.randint(4, spec.text.vocab_size, (batch, text_tokens), device=device)

    def one():
        out = model(images, tokens)
        loss = clip_softmax_loss(out["image_features"], out["text_features"], out["logit_scale"])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    for _ in range(2):
        one()
    if device == "cuda":
        torch.cuda.synchronize()
    t = time.perf_counter()
    for _ in range(steps):
        one()
    if device == "cuda":
        torch.cuda.synchronize()
    return batch * steps / (time.perf_counter() - t)


def cpu_table(repeats: int) -> list[dict]:
    """Each repeat measures the matmul peak right before the training steps, so a machine whose
    load changes during the benchmark still gives a fair ratio; medians over repeats."""
    rows = []
    for name in ("tiny-s", "tiny", "tiny-l"):
        spec = get_spec(name)
        size, text = spec.image.image_size, spec.text.context_length
        f = train_flops_per_sample(spec, image_tokens=(size // spec.image.patch_size) ** 2, text_tokens=text)
        peaks, rates = [], []
        for _ in range(repeats):
            peaks.append(matmul_peak())
            rates.append(step_rate(name, size, text, batch=64, steps=5))
        r = statistics.median(rates)
        rows.append({"model": name, "samples_per_s": r, "flops_per_s": r * f,
                     "peak": statistics.median(peaks),
                     "mfu": statistics.median(x * f / p for x, p in zip(rates, peaks))})
    print(f"{'model':8s} {'samples/s':>10s} {'GFLOP/s':>9s} {'peak GFLOP/s':>13s} {'of peak':>8s}"
          f"   (batch 64, {size}px, {text} text tokens, {torch.get_num_threads()} threads, median of {repeats})")
    for row in rows:
        print(f"{row['model']:8s} {row['samples_per_s']:10.1f} {row['flops_per_s'] / 1e9:9.2f} "
              f"{row['peak'] / 1e9:13.1f} {row['mfu']:8.1%}")
    print("peak: dense fp32 2048x2048 matmul, measured before each repeat")
    return rows


def ray_comparison(samples_seen: int) -> None:
    """A real 2-worker run of `tiny` (ZeRO-2) and Ray Data's delivery rate on the same pool."""
    from clipscale.config import build_run_config
    from clipscale.data.emoji_world import EmojiWorldConfig, generate_pool
    from clipscale.data.shards import list_shards
    from clipscale.ray_setup import init_ray
    from clipscale.train.data import skip_counter, train_dataset
    from clipscale.train.launch import train

    work = Path(tempfile.mkdtemp(prefix="clipscale-bench-"))
    generate_pool(EmojiWorldConfig(num_samples=4000, samples_per_shard=500, num_concepts=60, eval_num_classes=30), work, progress=False)
    cfg = build_run_config({
        "name": "bench", "output_dir": str(work / "runs"), "data": {"train_shards": str(work / "pool")},
        "model": {"name": "tiny"}, "tokenizer": {"vocab_size": 1024},
        "stages": [{"image_size": 64, "text_tokens": 32}],
        "train": {"samples_seen": samples_seen, "global_batch_size": 128, "num_workers": 2,
                  "zero_stage": 2, "checkpoint_every_samples": samples_seen, "max_failures": 0},
        "logging": {"wandb_mode": "disabled"}})
    t = time.perf_counter()
    result = train(cfg)
    total = time.perf_counter() - t
    train_wall = result.metrics["wall_time_s"]
    consume = samples_seen / train_wall
    print(f"\nRay Train, tiny, 2 workers, ZeRO-2, fp32/gloo: {samples_seen} samples in {train_wall:.1f}s "
          f"of training loop ({total:.1f}s with Ray and worker start-up): {consume:.0f} samples/s")

    init_ray(use_gpu=False)
    info = __import__("json").loads((Path(cfg.run_dir) / "run_info.json").read_text())
    skip_counter("bench-delivery")
    ds = train_dataset(list_shards(work / "pool"), tokenizer_path=info["tokenizer_path"], image_size=64,
                       context_length=32, counter_name="bench-delivery", read_parallelism=2)
    rates = []
    for _ in range(3):
        t, n = time.perf_counter(), 0
        for b in ds.iter_batches(batch_size=128, batch_format="numpy"):
            n += len(b["tokens"])
        rates.append(n / (time.perf_counter() - t))
    deliver = statistics.median(rates)
    print(f"Ray Data delivery (read + decode + resize + tokenize, 2 tasks): median {deliver:.0f} rows/s "
          f"over 3 epochs = {deliver / consume:.1f}x the training consumption rate")


def gpu_table(repeats: int) -> None:
    name = torch.cuda.get_device_name()
    key = accelerator_from_product(name)   # the cost planner's catalog: dense bf16 datasheet peaks
    peak = ACCELERATORS[key].peak_flops if key else None
    measured = statistics.median(matmul_peak(8192, 20, torch.bfloat16, "cuda") for _ in range(repeats))
    spec = get_spec("ViT-B-16")
    f = train_flops_per_sample(spec, image_tokens=196, text_tokens=77)
    r = statistics.median(step_rate("ViT-B-16", 224, 77, 256, 10, "cuda", torch.bfloat16) for _ in range(repeats))
    print(f"\n{name}: bf16 matmul {measured / 1e12:.0f} TFLOP/s measured"
          + (f", {peak / 1e12:.0f} datasheet" if peak else ""))
    print(f"ViT-B-16 bf16, batch 256: {r:.0f} samples/s, {r * f / 1e12:.1f} TFLOP/s, "
          f"MFU {r * f / (peak or measured):.1%} of {'datasheet' if peak else 'measured'} peak")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--samples-seen", type=int, default=7680)
    p.add_argument("--skip-ray", action="store_true")
    args = p.parse_args()
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    if torch.cuda.is_available():
        gpu_table(args.repeats)
    cpu_table(args.repeats)
    if not args.skip_ray:
        ray_comparison(args.samples_seen)


if __name__ == "__main__":
    main()
