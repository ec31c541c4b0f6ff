"""``clipscale sweep --dry-run``: the trial table (params, tokens, FLOPs, compute, estimated time)
and the concurrency the cluster allows, without starting a trial.

The time estimate is stated, not hidden: a trial takes
``compute / (devices x FLOP/s per device x utilisation) + start-up``, where FLOP/s per device is
measured here with a dense matmul (one CPU core in fp32, or one GPU in bf16) unless given, the
utilisation is an assumption (default 0.3), and start-up is the cost outside the training loop.
A trial of its own pays all of it (default 75 s: measured by benchmarks/token_reduction.py on
the demo sweep, 2 concurrent 2-worker trials on a shared 2-core CPU node, 67-93 s each for
prepare, Ray Train worker group, DeepSpeed init, Ray Data start and teardown). A packed sweep
(``pack_trials``) pays the worker group, the first engine and the first stream once per lane
(``LANE_STARTUP_S``) and a few seconds per trial after that (``PACKED_TRIAL_S``); both measured
from the demo's timing records (docs/throughput.md). Decoding a row set a lane has not seen yet
(a new image size or language mix) costs a trial more than that and is not modelled. The sweep's
time is the trials' times packed onto ``concurrency`` slots in order.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass

from clipscale.config import RunConfig
from clipscale.sweep.catalog import ACCELERATORS
from clipscale.sweep.expand import Trial
from clipscale.sweep.sweep import Sweep
from clipscale.train.plan import model_spec, plan_run

# The GPU a cluster-scale spec is written for, assumed when this cluster has none to measure.
ASSUMED_GPU = "H100"
DEFAULT_UTILISATION = 0.3   # assumed share of the device's FLOP/s a training step reaches
DEFAULT_STARTUP_S = 75.0    # seconds per trial outside the training loop (measured; see above)
LANE_STARTUP_S = 30.0       # packed sweep: a lane's start before its first trial trains (measured 24-34 s)
PACKED_TRIAL_S = 2.0        # packed sweep: each trial's own prepare, set-up, eval and hand-over


@dataclass(frozen=True)
class TrialEstimate:
    trial: Trial
    params: int
    stages: str                 # per stage: px/image tokens/text tokens/reductions
    flops_per_sample: float     # sample-weighted mean over stages
    compute: float
    seconds: float


def local_resources() -> dict[str, float]:
    """Resources of the cluster ``clipscale sweep`` would use, without starting one: the Ray
    cluster in RAY_ADDRESS, or the local node as ``init_ray`` declares it."""
    if os.environ.get("RAY_ADDRESS"):
        import ray

        from clipscale.ray_setup import init_ray
        init_ray()  # joins the cluster in RAY_ADDRESS
        res = ray.cluster_resources()
        return {"CPU": res.get("CPU", 0.0), "GPU": res.get("GPU", 0.0)}
    import torch
    from clipscale.ray_setup import local_cpus
    return {"CPU": float(local_cpus()), "GPU": float(torch.cuda.device_count())}


def measure_flops_per_s(gpu: bool, seconds: float = 0.5) -> float:
    """Dense matmul FLOP/s of one device: one CPU core (fp32) or one GPU (bf16)."""
    import torch

    if gpu:
        n, dev, dtype = 8192, "cuda", torch.bfloat16
    else:
        n, dev, dtype = 1024, "cpu", torch.float32
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        a = torch.randn(n, n, device=dev, dtype=dtype)
        b = torch.randn(n, n, device=dev, dtype=dtype)
        a @ b
        reps, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < seconds:
            a @ b
            reps += 1
        if gpu:
            torch.cuda.synchronize()
        return 2 * n ** 3 * reps / (time.perf_counter() - t0)
    finally:
        torch.set_num_threads(threads)


def estimate(trial: Trial, cfg: RunConfig, device_flops: float, use_gpu: bool,
             utilisation: float, startup_s: float) -> TrialEstimate:
    from clipscale.models.flops import param_counts

    plans = plan_run(cfg)
    compute = sum(p.compute for p in plans)
    devices = cfg.train.num_workers if use_gpu else cfg.train.num_workers * cfg.train.cpus_per_worker
    seconds = compute / (devices * device_flops * utilisation) + startup_s
    stages = " | ".join(
        f"{p.image_size}px {p.image_tokens}img/{p.text_tokens}txt "
        f"{st.image_reduction}/{st.text_reduction} x{p.samples:,} "
        f"batch {cfg.stage_batch_size(p.index):,} lr {cfg.stage_peak_lr(p.index):.4g}"
        for p, st in zip(plans, cfg.stages))
    return TrialEstimate(trial, param_counts(model_spec(cfg))["total"], stages,
                         compute / cfg.train.samples_seen, compute, seconds)


def schedule_seconds(durations: list[float], slots: int, slot_start: float = 0.0) -> float:
    """Wall time of running ``durations`` in order on ``slots`` parallel slots (greedy), each
    slot first paying ``slot_start`` (a packed sweep's lane start-up)."""
    free = [slot_start] * max(1, slots)
    for d in durations:
        i = free.index(min(free))
        free[i] += d
    return max(free) if durations else 0.0


def human_time(s: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if s >= size:
            return f"{s / size:,.1f} {unit}"
    return f"{s:.0f} s"


def text_table(head: list[str], rows: list[list[str]]) -> str:
    """Columns padded to their widest cell, a dashed rule under the header."""
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in [head, *rows]]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def format_table(estimates: list[TrialEstimate]) -> str:
    axes = list(dict.fromkeys(k for e in estimates for k in e.trial.params))
    head = ["trial", *axes, "params", "stages", "GFLOPs/sample", "compute (FLOPs)", "est. time"]
    rows = [[e.trial.id, *[str(e.trial.params.get(a, "")) for a in axes], f"{e.params / 1e6:.2f}M",
             e.stages, f"{e.flops_per_sample / 1e9:.4g}", f"{e.compute:.3e}", human_time(e.seconds)]
            for e in estimates]
    return text_table(head, rows)


def dry_run(sweep: Sweep, flops_per_s: float | None = None,
            utilisation: float = DEFAULT_UTILISATION, startup_s: float | None = None, cap: int | None = None,
            resources: dict[str, float] | None = None, flops_source: str = "given") -> tuple[str, dict]:
    """The printed report and its figures (for tests and the CLI); ``flops_source`` says where a
    given ``flops_per_s`` comes from."""
    resources = resources or local_resources()
    name, trials = sweep.name, sweep.trials
    use_gpu = sweep.use_gpu(resources.get("GPU", 0))
    missing_gpus = use_gpu and resources.get("GPU", 0) == 0
    if flops_per_s is not None:
        device_flops, source = flops_per_s, flops_source
    elif missing_gpus:
        # Nothing to measure here: assume the GPU a cluster-scale spec is written for.
        device_flops = ACCELERATORS[ASSUMED_GPU].peak_flops
        source = f"assumed ({ASSUMED_GPU} bf16 dense peak; no GPU here)"
    else:
        device_flops, source = measure_flops_per_s(use_gpu), "measured here"
    # start-up per trial (given, or measured for the layout) and, packed, once per lane
    packed = bool(sweep.spec.pack_trials)
    if startup_s is None:
        startup_s = PACKED_TRIAL_S if packed else DEFAULT_STARTUP_S
    lane_s = LANE_STARTUP_S if packed else 0.0
    est = [estimate(t, c, device_flops, use_gpu, utilisation, startup_s) for t, c in trials]
    slots = sweep.concurrency(resources, use_gpu, cap)
    total = schedule_seconds([e.seconds for e in est], slots, lane_s)
    device = "GPU (bf16)" if use_gpu else "CPU core (fp32)"
    header = (f"sweep {name}: {len(trials)} trials; cluster {resources}; {slots} concurrent\n"
              f"estimated time = compute / (devices x {device_flops / 1e9:,.1f} GFLOP/s per {device}, "
              f"{source} x {utilisation:.0%} assumed utilisation) "
              f"+ {startup_s:.0f} s start-up per trial"
              + (f" (packed: + {lane_s:.0f} s per lane)" if packed else ""))
    if missing_gpus:
        header += (f"\nthis cluster has no GPU; trials ask for up to {sweep.max_workers()} GPU workers each: "
                   "times are for a cluster that has them")
    footer = (f"total compute {sum(e.compute for e in est):.3e} FLOPs; "
              f"estimated sweep time {human_time(total)} on this cluster")
    figures = {"trials": est, "concurrency": slots, "total_seconds": total, "device_flops": device_flops}
    from clipscale.sweep.forks import dry_run_lines  # h12 hook: cooldown-fork compute
    forks = dry_run_lines(trials, est)
    return "\n".join([header, "", format_table(est), "", *forks, footer]), figures
