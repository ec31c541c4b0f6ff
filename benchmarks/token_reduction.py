"""Token reduction: measured training speed-up against the FLOPs ratio, and sweep overhead.

Part 1. For each CLIPA reduction at several token counts, the time of one training step
(stage batch assembly with the reduction, forward, backward, AdamW) in one process on one
thread (as a Ray Train worker with one CPU runs), against the full-length step. Prints the
speed-up, the analytic FLOPs ratio and their quotient; the target is a quotient of at least
0.8 (the reduction delivers 80% of its FLOPs saving as time). Text ``syntax`` picks its words
in the data stream, so its step is truncate's; it is not timed separately.

Part 2 (``--sweep-dir``). From a finished sweep folder (sweep.json, timings/, launches.jsonl,
results/): per trial, the trainable's wall time against the training loop's own wall time
(the results row's ``wall_time_s``, evaluations included); the rest is overhead: prepare
(driver-side checks, tokenizer, language mix), the fit's start-up and teardown (Ray Train worker
group, DeepSpeed init, Ray Data stream), and the Tune scheduling gap before the trial started.

    python benchmarks/token_reduction.py [--model tiny] [--batch 64] [--steps 12] [--sweep-dir runs/smoke]
"""
from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from clipscale.config import build_run_config
from clipscale.models.clip import CLIP
from clipscale.train.batches import make_batch
from clipscale.train.loss import clip_softmax_loss
from clipscale.train.plan import model_spec, plan_run

# (label, stage overrides) at the base 64 px / full context; token counts follow from them.
CASES = [
    ("full", {}),
    ("resize 48px", {"image_size": 48}),
    ("resize 32px", {"image_size": 32}),
    ("random 50%", {"image_reduction": "random", "image_keep": 0.5}),
    ("random 25%", {"image_reduction": "random", "image_keep": 0.25}),
    ("grid 25%", {"image_reduction": "grid", "image_keep": 0.25}),
    ("block 50%", {"image_reduction": "block", "image_keep": 0.5}),
    ("block 25%", {"image_reduction": "block", "image_keep": 0.25}),
    ("text truncate 16", {"text_tokens": 16}),
    ("text truncate 8", {"text_tokens": 8}),
    ("text random 8", {"text_tokens": 8, "text_reduction": "random"}),
    ("text block 8", {"text_tokens": 8, "text_reduction": "block"}),
    ("resize 32px + text 8", {"image_size": 32, "text_tokens": 8}),
]


def stage_config(model: str, stage: dict):
    return build_run_config({"data": {"train_shards": "-"}, "model": {"name": model},
                             "stages": [{"image_size": 64, **stage}],
                             "train": {"samples_seen": 1024, "global_batch_size": 64}})


def step_seconds(cfg, batch: int, steps: int) -> float:
    """Median seconds of one training step, batch assembly with the reduction included."""
    plan = plan_run(cfg)[0]
    spec = model_spec(cfg)
    torch.manual_seed(0)
    model = CLIP(spec)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    rng = np.random.default_rng(0)
    ctx = spec.text.context_length
    raw = {"image": rng.integers(0, 255, (batch, plan.image_size, plan.image_size, 3), dtype=np.uint8),
           "tokens": np.concatenate([rng.integers(4, spec.text.vocab_size, (batch, ctx - 4)),
                                     np.zeros((batch, 4), dtype=np.int64)], axis=1).astype(np.int32)}
    gen = torch.Generator().manual_seed(0)
    times = []
    for i in range(steps + 2):
        t = time.perf_counter()
        b = make_batch(raw, cfg.stages[0], plan, "cpu", "fp32", gen)
        out = model(b.images, b.tokens, patch_keep=b.patch_keep)
        loss = clip_softmax_loss(out["image_features"], out["text_features"], out["logit_scale"])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if i >= 2:  # two warm-up steps
            times.append(time.perf_counter() - t)
    return statistics.median(times)


def reduction_table(model: str, batch: int, steps: int) -> list[dict]:
    rows = []
    base_cfg = stage_config(model, {})
    base_t = step_seconds(base_cfg, batch, steps)
    base_f = plan_run(base_cfg)[0].train_flops_per_sample
    for label, stage in CASES:
        cfg = stage_config(model, stage)
        p = plan_run(cfg)[0]
        t = base_t if label == "full" else step_seconds(cfg, batch, steps)
        speedup, ratio = base_t / t, base_f / p.train_flops_per_sample
        rows.append({"reduction": label, "image_tokens": p.image_tokens, "text_tokens": p.text_tokens,
                     "step_ms": t * 1e3, "speedup": speedup, "flops_ratio": ratio,
                     "share_of_flops_speedup": speedup / ratio})
    return rows


def sweep_overhead(sweep_dir: Path) -> list[dict]:
    """Per trial: prepare (driver-side checks, tokenizer), fit overhead (worker group, DeepSpeed
    init, Ray Data start, teardown: the fit's time outside the training loop) and the
    scheduling gap (from the moment a slot was free, i.e. the launch or the latest earlier trial's
    end, to the trial's start)."""
    from clipscale.results import read_results

    rows = read_results(sweep_dir / "results")
    last = rows.sort_values("samples_seen").groupby("run_id").tail(1).set_index("run_id")
    launches = [json.loads(line) for line in (sweep_dir / "launches.jsonl").read_text().splitlines()]
    timings = [json.loads(f.read_text()) for f in sorted((sweep_dir / "timings").glob("*.json"))]
    ends = [t["fit_end"] for t in timings]
    out = []
    for t in timings:
        if t["trial"] not in last.index:
            continue
        trial_s = t["fit_end"] - t["start"]
        train_s = float(last.loc[t["trial"], "wall_time_s"])
        free = [x["time"] for x in launches if x.get("event") == "start" and x["time"] <= t["start"]]
        free += [e for e in ends if e <= t["start"]]
        out.append({"trial": t["trial"], "trial_s": trial_s, "train_loop_s": train_s,
                    "prepare_s": t["fit_start"] - t["start"],
                    "fit_overhead_s": t["fit_end"] - t["fit_start"] - train_s,
                    "scheduling_s": t["start"] - max(free) if free else float("nan"),
                    "overhead_share": (trial_s - train_s) / trial_s, "resumed": t["resumed"]})
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="tiny")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--steps", type=int, default=12)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--sweep-dir", type=Path, default=None)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    print(f"token reduction on {args.model}, batch {args.batch}, {args.threads} thread(s), "
          f"median of {args.steps} steps (base: 64 px, full context)")
    rows = reduction_table(args.model, args.batch, args.steps)
    print(f"{'reduction':22s} {'img tok':>7s} {'txt tok':>7s} {'step ms':>8s} {'speed-up':>8s} "
          f"{'FLOPs ratio':>11s} {'share':>6s}")
    for r in rows:
        print(f"{r['reduction']:22s} {r['image_tokens']:7d} {r['text_tokens']:7d} {r['step_ms']:8.1f} "
              f"{r['speedup']:8.2f} {r['flops_ratio']:11.2f} {r['share_of_flops_speedup']:6.0%}")
    reduced = [r for r in rows if r["reduction"] != "full"]
    meets = [r["reduction"] for r in reduced if r["share_of_flops_speedup"] >= 0.8]
    print(f"{len(meets)}/{len(reduced)} reductions reach 80% of their FLOPs speed-up")

    if args.sweep_dir:
        ov = sweep_overhead(args.sweep_dir)
        print(f"\nsweep overhead in {args.sweep_dir}:")
        print(f"{'trial':28s} {'trial s':>8s} {'loop s':>7s} {'prepare s':>9s} {'fit ovh s':>9s} "
              f"{'sched s':>7s} {'overhead':>8s} resumed")
        for r in ov:
            print(f"{r['trial']:28s} {r['trial_s']:8.1f} {r['train_loop_s']:7.1f} {r['prepare_s']:9.1f} "
                  f"{r['fit_overhead_s']:9.1f} {r['scheduling_s']:7.1f} {r['overhead_share']:8.0%} {r['resumed']}")
        if ov:
            print(f"mean overhead share {statistics.mean(r['overhead_share'] for r in ov):.0%} of trial time")


if __name__ == "__main__":
    main()
