"""``clipscale sweep --dry-run --cluster FILE``: GPU-hours, cost and wall-clock of a sweep on the
GPU node type of a Ray cluster launcher YAML or a KubeRay RayCluster/RayJob/RayService manifest.

The model is stated, not hidden: a trial's GPU-hours are its training FLOPs (``compute``, from
``plan_run`` via the dry run) / (per-GPU dense bf16 peak x MFU) / 3600, its cost those hours x a
price per GPU-hour, and its wall-clock those hours / the GPUs it holds (``train.num_workers``).
Evaluation, start-up and checkpointing are not counted. Peaks come from vendor datasheets; prices
and MFU are assumptions, each overridable (``--gpu-peak-flops``, ``--gpu-hour-price``, ``--mfu``).

This module is that model and its report, kept apart so it reads in one place: the cluster file
is read by ``cluster_file.py``, and the peaks and prices are looked up in ``catalog.py``.
"""
from __future__ import annotations

from dataclasses import dataclass

from clipscale.sweep.catalog import (
    ACCELERATORS,
    GCP_ACCELERATORS,
    INSTANCE_TYPES,
    PRICES_ASSUMED_ON,
)
from clipscale.sweep.cluster_file import Cluster, CostError, GpuNode

# MFU (model FLOPs utilisation) assumed when --mfu is not given. Well-tuned dense transformer
# training reaches 38-43% on H100s in bf16 (Llama 3, Dubey et al. 2024) and 46% / 55% on TPUs
# (PaLM, Chowdhery et al. 2022; ViT-22B, Dehghani et al. 2023). CLIP at short token lengths spends
# more of a step outside big matmuls (image decoding, the contrastive loss's feature all-gather,
# ZeRO gradient traffic per small step), so we assume the low end: 0.35. Measure yours; pass --mfu.
DEFAULT_MFU = 0.35


@dataclass(frozen=True)
class GpuAssumption:
    node: GpuNode | None
    peak_flops: float
    peak_source: str
    usd_per_gpu_hour: float
    price_source: str


def check_mfu(mfu: float) -> float:
    if not 0 < mfu <= 1:
        raise CostError(f"--mfu must be in (0, 1] (a share of the GPU's peak), got {mfu}")
    return mfu


def gpu_assumption(node: GpuNode | None, peak_flops: float | None = None,
                   usd_per_gpu_hour: float | None = None) -> GpuAssumption:
    """The peak and price the plan uses: the catalog's for ``node``, or the given overrides."""
    if peak_flops is not None and peak_flops <= 0:
        raise CostError(f"--gpu-peak-flops must be > 0, got {peak_flops}")
    if usd_per_gpu_hour is not None and usd_per_gpu_hour < 0:
        raise CostError(f"--gpu-hour-price must be >= 0, got {usd_per_gpu_hour}")
    where = f"{node.file}: {node.field}" if node else "no --cluster"
    known = ", ".join(INSTANCE_TYPES) + "; " + ", ".join(GCP_ACCELERATORS)
    if peak_flops is None:
        if node is None or node.accelerator is None:
            what = f"unknown GPU type {node.hardware!r}" if node and node.hardware else "no GPU type named"
            also = " and --gpu-hour-price USD" if usd_per_gpu_hour is None else ""
            raise CostError(f"{where}: {what} (known: {known}); pass --gpu-peak-flops FLOPS "
                            f"(dense bf16 per GPU){also}")
        acc = ACCELERATORS[node.accelerator]
        peak_source = f"{acc.name} bf16 dense peak, datasheet"
    else:
        peak_source = "given"
    if usd_per_gpu_hour is None:
        inst = INSTANCE_TYPES.get(node.price_from or "") if node else None
        if inst is None or inst.usd_per_hour is None:
            what = repr(node.hardware) if node and node.hardware else "a node type whose instance type is not named"
            raise CostError(f"{where}: no price assumed for {what}; pass --gpu-hour-price USD (per GPU-hour)")
        usd_per_gpu_hour = inst.usd_per_hour / inst.gpus
        price_source = (f"{node.price_from} on-demand ${inst.usd_per_hour:,.2f}/h for {inst.gpus} GPU(s), "
                        f"{inst.where}, assumed {PRICES_ASSUMED_ON}; --gpu-hour-price to override")
    else:
        price_source = "given"
    return GpuAssumption(node, peak_flops if peak_flops is not None else ACCELERATORS[node.accelerator].peak_flops,
                         peak_source, usd_per_gpu_hour, price_source)


def gpu_hours(compute: float, peak_flops: float, mfu: float) -> float:
    """GPU-hours of ``compute`` training FLOPs at ``mfu`` of a ``peak_flops`` GPU."""
    return compute / (peak_flops * mfu) / 3600


@dataclass(frozen=True)
class TrialCost:
    trial: str
    compute: float
    gpus: int              # GPUs the trial holds (train.num_workers)
    gpu_hours: float
    usd: float
    hours: float           # wall-clock on its GPUs, training only


def plan_costs(rows: list[tuple[str, float, int]], gpu: GpuAssumption, mfu: float,
               cap: int | None = None) -> dict:
    """``rows`` = (trial id, compute, GPUs per trial) -> per-trial costs, totals and wall-clock on
    the node type's capacity (trials packed in order; None when the capacity is unknown or a
    trial needs more GPUs than the cluster has)."""
    from clipscale.sweep.dry_run import schedule_seconds

    check_mfu(mfu)
    trials = []
    for trial, compute, gpus in rows:
        h = gpu_hours(compute, gpu.peak_flops, mfu)
        trials.append(TrialCost(trial, compute, gpus, h, h * gpu.usd_per_gpu_hour, h / gpus))
    capacity = gpu.node.capacity if gpu.node else None
    widest = max(t.gpus for t in trials)
    slots = min(capacity // widest, cap or len(trials), len(trials)) if capacity else 0
    wall = schedule_seconds([t.hours * 3600 for t in trials], slots) / 3600 if slots else None
    return {"trials": trials, "gpu_hours": sum(t.gpu_hours for t in trials),
            "usd": sum(t.usd for t in trials), "wall_hours": wall, "slots": slots, "capacity": capacity}


@dataclass(frozen=True)
class PublishedRun:
    schedule: str
    model: str
    stages: tuple[tuple[int, int], ...]   # (image size, samples) per stage
    gpu_hours: float                      # A100-80GB GPU-hours, as published
    usd: float
    zero_shot: float                      # ImageNet zero-shot top-1, %


# CLIPA-v2 (Li, Wang & Xie 2023, arXiv:2306.15658), its H/14 rows on DataComp-1B, as tabled in
# github.com/UCSC-VLAA/CLIPA. The models were trained on TPUs; the GPU-hours are the authors'
# estimate for 8x A100-80GB Google Cloud machines and the cost is at A100-80GB cloud pricing
# ($1.575 per GPU-hour, implied by both rows). 8 text tokens in pre-training. The paper's "12.8B"
# and "512M" are rounded: its configs train 12,811,632,640 samples (batch 65,536) and fine-tune
# 524,288,000 (batch 32,768), the counts sweeps/clipa_v2_h14.yaml pins (docs/recipes.md).
CLIPA_V2_PRETRAIN, CLIPA_V2_FINETUNE = 12_811_632_640, 524_288_000
CLIPA_V2 = [
    PublishedRun("12.8B@70px + 512M@224px", "ViT-H-14", ((70, CLIPA_V2_PRETRAIN), (224, CLIPA_V2_FINETUNE)), 5920, 9324, 81.1),
    PublishedRun("12.8B@84px + 512M@224px", "ViT-H-14", ((84, CLIPA_V2_PRETRAIN), (224, CLIPA_V2_FINETUNE)), 7776, 12247, 81.5),
]
CLIPA_V2_GPU = ACCELERATORS["A100-80GB"]


def clipa_match(cfg) -> PublishedRun | None:
    """The CLIPA-v2 row whose model and schedule (image size and samples per stage) is ``cfg``'s."""
    stages = tuple((s.image_size, n) for s, n in zip(cfg.stages, cfg.stage_samples()))
    return next((r for r in CLIPA_V2 if r.model == cfg.model.name and r.stages == stages), None)


def clipa_lines(matches: list[tuple[TrialCost, PublishedRun]], gpu: GpuAssumption, mfu: float) -> list[str]:
    lines = [("CLIPA-v2 published (arXiv:2306.15658; github.com/UCSC-VLAA/CLIPA), H/14 on DataComp-1B, "
              "A100-80GB GPU-hours estimated by the authors (trained on TPUs), costed at $1.575 per GPU-hour:")]
    lines += [f"  {r.schedule}: {r.gpu_hours:,.0f} GPU-hours, ${r.usd:,.0f}, {r.zero_shot}% zero-shot ImageNet"
              for r in CLIPA_V2]
    for t, r in matches:
        a100 = gpu_hours(t.compute, CLIPA_V2_GPU.peak_flops, mfu)
        implied = t.compute / (r.gpu_hours * 3600 * CLIPA_V2_GPU.peak_flops)
        lines.append(f"trial {t.trial} has their {r.schedule} schedule: our model gives {fmt_hours(t.gpu_hours)} "
                     f"GPU-hours and {fmt_usd(t.usd)} on this cluster ({t.usd / r.usd:.2f}x their ${r.usd:,.0f}); "
                     f"on their A100-80GB at the same {mfu:.0%} MFU {fmt_hours(a100)} GPU-hours = "
                     f"{a100 / r.gpu_hours:.2f}x their {r.gpu_hours:,.0f}; their hours imply {implied:.1%} MFU "
                     "under our FLOPs count")
    return lines


def fmt_hours(h: float) -> str:
    return f"{h:,.1f}" if h >= 10 else f"{h:.3g}"


def fmt_usd(usd: float) -> str:
    return f"${usd:,.0f}" if usd >= 100 else f"${usd:.3g}"


def format_costs(plan: dict, gpu: GpuAssumption, mfu: float, cluster: Cluster | None = None,
                 matches: list | None = None) -> str:
    from clipscale.sweep.dry_run import human_time, text_table

    node = gpu.node
    if node:
        hw = f"{node.hardware}, " if node.hardware else "GPU type read from its name, " if node.from_name else ""
        acc = ACCELERATORS[node.accelerator].name if node.accelerator else "GPU"
        most = f"up to {node.nodes} node(s) = {node.capacity} GPUs" if node.capacity is not None else \
            "capacity not stated (no max_workers / maxReplicas)"
        head = f"cost on {node.file}, node type {node.name}: {hw}{node.gpus or '?'}x {acc} per node, {most}"
        others = [n.name for n in cluster.gpu_nodes if n is not node] if cluster else []
        if others:
            head += f" (other GPU node types: {', '.join(others)})"
    else:
        head = "cost on GPUs given by --gpu-peak-flops and --gpu-hour-price"
    lines = [head,
             (f"GPU-hours = compute / ({gpu.peak_flops / 1e12:,.0f} TFLOP/s per GPU, {gpu.peak_source} "
              f"x {mfu:.0%} assumed MFU, --mfu) / 3600; training only (no eval, start-up, checkpoints)"),
             f"cost = GPU-hours x ${gpu.usd_per_gpu_hour:,.3f} per GPU-hour ({gpu.price_source})", ""]
    fits = plan["capacity"]
    rows = [[t.trial, str(t.gpus), fmt_hours(t.gpu_hours), fmt_usd(t.usd),
             human_time(t.hours * 3600) + (f" (needs {t.gpus} GPUs, the cluster has {fits})"
                                           if fits is not None and t.gpus > fits else "")]
            for t in plan["trials"]]
    table = text_table(["trial", "GPUs", "GPU-hours", "cost (USD)", "wall-clock"], rows)
    wall = (f"wall-clock {human_time(plan['wall_hours'] * 3600)} on {fits} GPUs ({plan['slots']} trial(s) at once)"
            if plan["wall_hours"] is not None else
            "wall-clock: unknown" if fits is None else f"wall-clock: a trial does not fit on {fits} GPUs")
    total = f"total {fmt_hours(plan['gpu_hours'])} GPU-hours, {fmt_usd(plan['usd'])}; {wall}"
    return "\n".join([*lines, table, "", total, *clipa_lines(matches or [], gpu, mfu)])
