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
import json
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

REPO = Path(__file__).resolve().parents[1]
POOL_SAMPLES = 8000  # the benchmark sweep's pool: a third of the demo's curated set
QUICK_SAMPLES = 49_152  # a --quick trial: half a demo trial


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


def plain_rate(model: str, image_size: int, text_tokens: int, batch: int, steps: int) -> float:
    """Samples/s of clipscale's own step (``train_step`` on a ``PlainEngine``: the run's model,
    loss, AdamW and clipping) in this one process on every core, on pre-decoded tensors: the
    ceiling the distributed path is held to."""
    from clipscale.config import build_run_config
    from clipscale.train.engine import build_plain_engine
    from clipscale.train.step import Batch, train_step

    cfg = build_run_config({"data": {"train_shards": "unused"}, "model": {"name": model},
                            "stages": [{"image_size": image_size, "text_tokens": text_tokens}],
                            "train": {"global_batch_size": batch, "num_workers": 1}})
    vocab = get_spec(model).text.vocab_size
    engine, _, _ = build_plain_engine(cfg, vocab)
    g = torch.Generator().manual_seed(0)
    b = Batch(images=torch.randn(batch, 3, image_size, image_size, generator=g),
              tokens=torch.randint(4, vocab, (batch, text_tokens), generator=g))
    for _ in range(3):
        train_step(engine, b, lr=1e-3, loss="softmax")
    t = time.perf_counter()
    for _ in range(steps):
        train_step(engine, b, lr=1e-3, loss="softmax")
    return batch * steps / (time.perf_counter() - t)


def bench_sweep(work: Path, trials: int, samples_seen: int, model: str, image_size: int,
                text_tokens: int, overrides: list[str]) -> tuple[list[dict], int]:
    """A small real sweep with the demo's layout (sweeps/demo.yaml's base: workers, CPUs,
    ZeRO stage, cadence, concurrency), ``trials`` seeds of one model, on a generated emoji world.
    Returns the trials' timing records (train/timing.py) and the concurrency it ran at."""
    import yaml

    from clipscale.data.emoji_world import EmojiWorldConfig, generate_pool
    from clipscale.demo import DEMO_WORLD
    from clipscale.sweep.sweep import load
    from clipscale import storage
    from clipscale.sweep.tune import launch
    from clipscale.train.timing import read_trials

    # the demo's world (its evaluation sets, image size, languages), a smaller pool used uncurated
    generate_pool(EmojiWorldConfig(num_samples=POOL_SAMPLES, **DEMO_WORLD), work / "world", workers=2, progress=False)
    demo = yaml.safe_load((REPO / "sweeps" / "demo.yaml").read_text())
    base = demo["base"]
    base.update(output_dir=str(work / "runs"), model={"name": model},
                stages=[{"image_size": image_size, "text_tokens": text_tokens}])
    base["data"]["train_shards"] = str(work / "world" / "pool")
    base["eval"]["eval_dir"] = str(work / "world" / "eval")
    base["tokenizer"] = {"vocab_size": 1024, "train_samples": POOL_SAMPLES}
    base["train"]["samples_seen"] = samples_seen
    for key in ("checkpoint_every_samples",):
        base["train"][key] = min(base["train"].get(key, samples_seen), samples_seen)
    base["eval"]["every_samples"] = min(base["eval"].get("every_samples", samples_seen), samples_seen)
    sweep = {"name": "bench", "base": base, "axes": {"seed": list(range(trials))}}
    for key in ("max_concurrent_trials", "pack_trials"):  # the demo's layout
        if demo.get(key):
            sweep[key] = demo[key]
    (work / "bench.yaml").write_text(yaml.safe_dump(sweep))
    sweep_obj = load(work / "bench.yaml", overrides)
    root = sweep_obj.root
    summary = launch(sweep_obj, resume=False)
    if summary["errors"]:
        raise RuntimeError(f"benchmark sweep: trials failed: {summary['errors']}")
    starts = [json.loads(line) for line in (Path(root) / "launches.jsonl").read_text().splitlines()]
    records = read_trials(storage.join(root, "timings"))
    return sorted(records, key=lambda r: r["start"]), starts[0]["slots"]


def machine_rates(records: list[dict], slots: int) -> list[float]:
    """Whole-machine samples/s while training, one value per wave of ``slots`` concurrent
    trials (in start order): the sum of the wave's trials' training rates."""
    from clipscale.train.timing import train_rate

    waves = [records[i:i + slots] for i in range(0, len(records), slots)]
    return [sum(train_rate(r) for r in w) for w in waves if len(w) == slots]


def phase_table(records: list[dict]) -> list[float]:
    """Print each phase's median seconds and share of the summed trial wall; returns each
    trial's overhead (1 - train / wall)."""
    from clipscale.train.timing import PHASES, split

    walls = [r["fit_end"] - r["start"] for r in records]
    splits = [split(r) for r in records]
    print(f"{'phase':20s} {'median s':>9s} {'share of wall':>14s}")
    for phase in PHASES:
        secs = [s[phase] for s in splits]
        print(f"{phase:20s} {statistics.median(secs):9.1f} {sum(secs) / sum(walls):14.1%}")
    print(f"{'trial wall':20s} {statistics.median(walls):9.1f}")
    return [1 - s["train"] / w for s, w in zip(splits, walls)]


def existing_sweep(folder: Path) -> None:
    """Phases and overhead of a sweep that already ran (its ``timings/`` records)."""
    from clipscale.train.timing import overhead, read_trials, train_rate

    records = read_trials(folder / "timings")
    if not records:
        raise SystemExit(f"{folder}/timings: no trial timing records")
    print(f"sweep {folder}: {len(records)} trials")
    per_trial = phase_table(records)
    rates = [train_rate(r) for r in records]
    print(f"per-trial training rate: median {statistics.median(rates):.0f} samples/s")
    print(f"sweep overhead 1 - sum(train s) / sum(trial wall): {overhead(records):.1%} "
          f"(per trial median {statistics.median(per_trial):.1%})")


def throughput_and_overhead(args) -> None:
    """(a) ours / plain loop samples/s, (b) sweep overhead, from a real sweep's timing records."""
    from clipscale.train.timing import overhead

    model, size, text, batch = args.model, args.image_size, args.text_tokens, args.batch
    threads = torch.get_num_threads()
    torch.set_num_threads(os.cpu_count() or 1)
    plain = [plain_rate(model, size, text, batch, args.plain_steps) for _ in range(args.repeats)]
    work = Path(tempfile.mkdtemp(prefix="clipscale-bench-"))
    torch.set_num_threads(threads)
    records, slots = bench_sweep(work, args.trials, args.samples_seen, model, size, text, args.overrides)
    import ray
    ray.shutdown()  # its idle processes leave the cores, and its workers' log lines end before the result
    torch.set_num_threads(os.cpu_count() or 1)
    plain += [plain_rate(model, size, text, batch, args.plain_steps) for _ in range(args.repeats)]
    ours = machine_rates(records, slots)
    print(f"\nsweep: {len(records)} trials of {model}, {size} px, {text} text tokens, batch {batch}, "
          f"{args.samples_seen} samples each, {slots} at a time (sweeps/demo.yaml's layout"
          f"{', with ' + ' '.join(args.overrides) if args.overrides else ''})")
    per_trial = phase_table(records)
    ratio = [o / statistics.median(plain) for o in ours]
    print(f"\nplain loop (1 process, {os.cpu_count()} threads, pre-decoded tensors): median "
          f"{statistics.median(plain):.0f} samples/s over {len(plain)} repeats "
          f"({', '.join(f'{x:.0f}' for x in plain)})")
    print(f"ours (Ray Data -> Ray Train -> DeepSpeed, {slots} trials at once): median "
          f"{statistics.median(ours):.0f} samples/s over {len(ours)} waves ({', '.join(f'{x:.0f}' for x in ours)})")
    print(f"ratio ours / plain loop: median {statistics.median(ratio):.2f} (waves: {', '.join(f'{x:.2f}' for x in ratio)})")
    print(f"sweep overhead 1 - sum(train s) / sum(trial wall): {overhead(records):.1%} "
          f"(per trial median {statistics.median(per_trial):.1%})")


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
    p.add_argument("--quick", action="store_true", help="a smaller sweep (under 5 minutes on 2 cores)")
    p.add_argument("--repeats", type=int, default=3, help="plain-loop repeats before and after the sweep")
    p.add_argument("--trials", type=int, default=6, help="trials in the benchmark sweep (waves of its concurrency)")
    p.add_argument("--samples-seen", type=int, default=None, help="samples per trial (default: the demo's)")
    p.add_argument("--model", default="tiny-s")
    p.add_argument("--image-size", type=int, default=32)
    p.add_argument("--text-tokens", type=int, default=16)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--plain-steps", type=int, default=20)
    p.add_argument("--mfu", action="store_true", help="also the per-model MFU table (one process)")
    p.add_argument("--skip-ray", action="store_true", help="only the one-process tables")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="FIELD=VALUE",
                   help="override a field of the demo's base run in the benchmark sweep (compare layouts)")
    p.add_argument("--from-sweep", type=Path, default=None, metavar="DIR",
                   help="only print the phases and overhead of a sweep that ran (e.g. runs/demo)")
    args = p.parse_args()
    if args.from_sweep:
        return existing_sweep(args.from_sweep)
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    os.environ.setdefault("WANDB_MODE", "offline")
    if args.samples_seen is None:
        import yaml
        demo = yaml.safe_load((REPO / "sweeps" / "demo.yaml").read_text())
        args.samples_seen = demo["base"]["train"]["samples_seen"]
    if args.quick:
        # three trials on each of the two lanes (three waves for the median), each half a demo
        # trial: ~190 s of training a lane on 2 idle cores against the lane's ~25 s start-up, about
        # the demo's proportion (six trials a lane, 4 row sets); ~4.5 minutes in all
        args.trials, args.plain_steps = min(args.trials, 6), 10
        args.samples_seen = min(args.samples_seen, QUICK_SAMPLES)
    if torch.cuda.is_available():
        gpu_table(args.repeats)
    if args.mfu or args.skip_ray:
        cpu_table(args.repeats)
    if not args.skip_ray:
        throughput_and_overhead(args)


if __name__ == "__main__":
    main()
