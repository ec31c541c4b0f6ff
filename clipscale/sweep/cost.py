"""``clipscale sweep --dry-run --cluster FILE``: GPU-hours, cost and wall-clock of a sweep on the
GPU node type of a Ray cluster launcher YAML or a KubeRay RayCluster/RayJob/RayService manifest.

The model is stated, not hidden: a trial's GPU-hours are its training FLOPs (``compute``, from
``plan_run`` via the dry run) / (per-GPU dense bf16 peak x MFU) / 3600, its cost those hours x a
price per GPU-hour, and its wall-clock those hours / the GPUs it holds (``train.num_workers``).
Evaluation, start-up and checkpointing are not counted. Peaks come from vendor datasheets; prices
and MFU are assumptions, each overridable (``--gpu-peak-flops``, ``--gpu-hour-price``, ``--mfu``).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import yaml

from clipscale.config import ConfigError


class CostError(ConfigError):
    """A cluster file or a cost flag the planner cannot use; the message names the file and field."""


# MFU (model FLOPs utilisation) assumed when --mfu is not given. Well-tuned dense transformer
# training reaches 38-43% on H100s in bf16 (Llama 3, Dubey et al. 2024) and 46% / 55% on TPUs
# (PaLM, Chowdhery et al. 2022; ViT-22B, Dehghani et al. 2023). CLIP at short token lengths spends
# more of a step outside big matmuls (image decoding, the contrastive loss's feature all-gather,
# ZeRO gradient traffic per small step), so we assume the low end: 0.35. Measure yours; pass --mfu.
DEFAULT_MFU = 0.35


@dataclass(frozen=True)
class Accelerator:
    name: str
    peak_flops: float   # dense bf16 tensor-core FLOP/s per GPU (datasheets headline 2:4 sparsity, twice this)


# Vendor datasheets, dense (not sparse) bf16 tensor-core peak per GPU.
ACCELERATORS = {
    "H100": Accelerator("NVIDIA H100 SXM 80GB", 989e12),        # H100 datasheet: 1,979 TFLOPS with sparsity
    "H200": Accelerator("NVIDIA H200 SXM 141GB", 989e12),       # H200 datasheet: 1,979 TFLOPS with sparsity
    "A100-40GB": Accelerator("NVIDIA A100 SXM 40GB", 312e12),   # A100 datasheet: 312 dense, 624 with sparsity
    "A100-80GB": Accelerator("NVIDIA A100 SXM 80GB", 312e12),
    "L4": Accelerator("NVIDIA L4 24GB", 121e12),                # L4 datasheet: 242 TFLOPS with sparsity
}


@dataclass(frozen=True)
class InstanceType:
    accelerator: str
    gpus: int
    vcpus: int
    usd_per_hour: float | None   # whole instance, on-demand; None: no price assumed (give --gpu-hour-price)
    where: str


# ASSUMPTIONS, to override with --gpu-hour-price: on-demand list prices per instance-hour as
# assumed on PRICES_ASSUMED_ON (AWS us-east-1 after its June 2025 P4/P5 price cut; GCP
# us-central1). Committed-use, spot and negotiated prices are often far lower.
PRICES_ASSUMED_ON = "2026-11-25"
INSTANCE_TYPES = {
    "p5.48xlarge": InstanceType("H100", 8, 192, 55.04, "AWS us-east-1"),
    "p5.4xlarge": InstanceType("H100", 1, 16, 6.88, "AWS us-east-1"),
    "p5en.48xlarge": InstanceType("H200", 8, 192, None, "AWS"),
    "p4d.24xlarge": InstanceType("A100-40GB", 8, 96, 21.96, "AWS us-east-1"),
    "g6.48xlarge": InstanceType("L4", 8, 192, 13.35, "AWS us-east-1"),
    "g6.xlarge": InstanceType("L4", 1, 4, 0.805, "AWS us-east-1"),
    "a3-highgpu-8g": InstanceType("H100", 8, 208, 88.49, "GCP us-central1"),
    "a3-megagpu-8g": InstanceType("H100", 8, 208, None, "GCP"),
    "a3-ultragpu-8g": InstanceType("H200", 8, 224, None, "GCP"),
    "a2-highgpu-8g": InstanceType("A100-40GB", 8, 96, 29.39, "GCP us-central1"),
    "a2-ultragpu-8g": InstanceType("A100-80GB", 8, 96, 40.55, "GCP us-central1"),
    "g2-standard-96": InstanceType("L4", 8, 96, None, "GCP"),
}
# GCP accelerator types (guestAccelerators, GKE's cloud.google.com/gke-accelerator) -> the machine
# type that carries them, for the accelerator and the price per GPU-hour.
GCP_ACCELERATORS = {"nvidia-h100-80gb": "a3-highgpu-8g", "nvidia-h100-mega-80gb": "a3-megagpu-8g",
                    "nvidia-h200-141gb": "a3-ultragpu-8g", "nvidia-tesla-a100": "a2-highgpu-8g",
                    "nvidia-a100-80gb": "a2-ultragpu-8g", "nvidia-l4": "g2-standard-96"}
GPU_FAMILY = re.compile(r"^(p\d|g\d|a\d-)")   # AWS p*/g*, GCP a2/a3/a4/g2 machine types


def accelerator_from_product(label: str) -> str | None:
    """``NVIDIA-H100-80GB-HBM3`` (nvidia.com/gpu.product), ``h100`` (Karpenter) -> catalog key."""
    s = label.upper()
    for key, pattern in (("H100", "H100"), ("H200", "H200"), ("A100-80GB", r"A100.*80"),
                         ("A100-40GB", "A100"), ("L4", r"(^|\W)L4(\W|$)")):
        if re.search(pattern, s):
            return key
    return None


@dataclass(frozen=True)
class GpuNode:
    """One GPU node type (launcher) or worker group (KubeRay) of a cluster file."""
    file: str
    name: str
    field: str                 # the field that names its hardware (or the node type, if none does)
    hardware: str | None       # instance/machine type or accelerator label, as written
    accelerator: str | None    # ACCELERATORS key, None when unknown
    gpus: int | None           # per node
    nodes: int | None          # most nodes of this type the cluster scales to
    price_from: str | None = None   # INSTANCE_TYPES key that supplies the price
    from_name: bool = False         # the GPU type was read from the node type's name (``gpu-8x-h100``)

    @property
    def capacity(self) -> int | None:
        return self.gpus * self.nodes if self.gpus is not None and self.nodes is not None else None


@dataclass(frozen=True)
class Cluster:
    file: str
    kind: str                  # "launcher", "RayCluster", "RayJob", "RayService"
    gpu_nodes: list[GpuNode]
    cpus: float | None         # CPU capacity at max scale (None: some node type does not say)

    def node(self) -> GpuNode:
        """The GPU node type the plan uses: the largest GPU capacity, the first one on ties."""
        return max(self.gpu_nodes, key=lambda n: n.capacity or 0)


def cluster_kind(docs: list) -> str | None:
    """What a loaded YAML file is: a launcher config, a KubeRay kind, or None (not a cluster)."""
    for d in docs:
        if isinstance(d, dict) and d.get("kind") in ("RayCluster", "RayJob", "RayService") \
                and str(d.get("apiVersion", "")).startswith("ray.io/"):
            return d["kind"]
    if len(docs) == 1 and isinstance(docs[0], dict) and "available_node_types" in docs[0]:
        return "launcher"
    return None


def read_cluster(path: str | Path) -> Cluster:
    """Parse a cluster file and find its GPU node types; CostError names the file and field."""
    path = str(path)
    try:
        docs = [d for d in yaml.safe_load_all(Path(path).read_text()) if d is not None]
    except yaml.YAMLError as e:
        raise CostError(f"{path}: not valid YAML: {e}") from None
    kind = cluster_kind(docs)
    if kind is None:
        raise CostError(f"{path}: not a cluster file: no available_node_types (Ray cluster launcher) "
                        "and no RayCluster, RayJob or RayService (KubeRay)")
    if kind == "launcher":
        nodes, cpus = _launcher(path, docs[0])
        where = "available_node_types"
    else:
        doc = next(d for d in docs if isinstance(d, dict) and d.get("kind") == kind)
        nodes, cpus = _kuberay(path, doc)
        where = "headGroupSpec and workerGroupSpecs"
    gpu_nodes = [n for n in nodes if n is not None]
    if not gpu_nodes:
        raise CostError(f"{path}: no GPU node type: nothing in {where} asks for GPUs "
                        "(resources.GPU, a GPU instance type, guestAccelerators or nvidia.com/gpu)")
    return Cluster(path, kind, gpu_nodes, cpus)


def _number(value, path: str, field: str) -> float:
    """A count or a Kubernetes quantity (``8``, ``"48"``, ``"500m"``)."""
    try:
        s = str(value).strip()
        return float(s[:-1]) / 1000 if s.endswith("m") else float(s)
    except ValueError:
        raise CostError(f"{path}: {field}: not a number: {value!r}") from None


def _mapping(value, path: str, field: str) -> dict:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise CostError(f"{path}: {field}: expected a mapping, got {type(value).__name__}")
    return value


def _node(path, name, field, hardware, hardware_field, gpus, nodes, gcp_accel=None) -> GpuNode | None:
    """A GpuNode if the node asks for GPUs or its hardware is a GPU type, else None."""
    inst = INSTANCE_TYPES.get(hardware or "")
    key = price_from = None
    if inst:
        key, price_from = inst.accelerator, hardware
    elif gcp_accel or hardware in GCP_ACCELERATORS:
        price_from = GCP_ACCELERATORS.get(gcp_accel or hardware)
        key = INSTANCE_TYPES[price_from].accelerator if price_from else None
    elif hardware:
        key = accelerator_from_product(hardware) if not GPU_FAMILY.match(hardware) else None
    if gpus is None and inst:
        gpus = inst.gpus
    if not (gpus or key or (hardware and GPU_FAMILY.match(hardware))) or gpus == 0:
        return None
    # Last resort when nothing names the hardware (a cloud-neutral KubeRay group): its name.
    from_name = not hardware and key is None and accelerator_from_product(name) is not None
    return GpuNode(path, name, hardware_field if hardware else field, hardware,
                   accelerator_from_product(name) if from_name else key,
                   int(gpus) if gpus is not None else None, nodes, price_from, from_name)


def _launcher(path: str, doc: dict) -> tuple[list, float | None]:
    types = _mapping(doc.get("available_node_types"), path, "available_node_types")
    cluster_max = doc.get("max_workers")
    head = doc.get("head_node_type")
    nodes, cpus = [], 0.0
    for name, nt in types.items():
        field = f"available_node_types.{name}"
        nt = _mapping(nt, path, field)
        config = _mapping(nt.get("node_config"), path, f"{field}.node_config")
        res = _mapping(nt.get("resources"), path, f"{field}.resources")
        hardware, hw_field = None, None
        for key in ("InstanceType", "machineType"):
            if config.get(key):
                hardware, hw_field = str(config[key]).rsplit("/", 1)[-1], f"{field}.node_config.{key}"
        gcp_accel, gpus = None, None
        for i, acc in enumerate(config.get("guestAccelerators") or []):
            at = f"{field}.node_config.guestAccelerators[{i}]"
            acc = _mapping(acc, path, at)
            gcp_accel = str(acc.get("acceleratorType", "")).rsplit("/", 1)[-1] or None
            gpus = (gpus or 0) + int(_number(acc.get("acceleratorCount", 1), path, f"{at}.acceleratorCount"))
            if hardware not in INSTANCE_TYPES:   # a general machine type: the accelerator names the GPU
                hardware, hw_field = gcp_accel, f"{at}.acceleratorType"
        if "GPU" in res:
            gpus = int(_number(res["GPU"], path, f"{field}.resources.GPU"))
        most = nt.get("max_workers", 0 if name == head else cluster_max)   # Ray's defaults
        count = (min(most, cluster_max) if cluster_max is not None and most is not None else most)
        count = None if count is None and name != head else (count or 0) + (name == head)
        node = _node(path, name, field, hardware, hw_field, gpus, count, gcp_accel)
        nodes.append(node)
        inst = INSTANCE_TYPES.get(hardware or "")
        per_node = res.get("CPU", inst.vcpus if inst else None)
        cpus = None if cpus is None or per_node is None or count is None else \
            cpus + _number(per_node, path, f"{field}.resources.CPU") * count
    return nodes, cpus


def _kuberay(path: str, doc: dict) -> tuple[list, float | None]:
    kind = doc["kind"]
    prefix = {"RayCluster": "spec", "RayJob": "spec.rayClusterSpec", "RayService": "spec.rayClusterConfig"}[kind]
    spec = _mapping(doc.get("spec"), path, "spec")
    if kind != "RayCluster":
        spec = spec.get(prefix.split(".")[1])
        if not isinstance(spec, dict):
            raise CostError(f"{path}: {prefix}: missing (a {kind} with a clusterSelector runs on an existing "
                            "cluster: give that RayCluster's manifest)")
    groups = [("head", f"{prefix}.headGroupSpec", spec.get("headGroupSpec"), True)]
    groups += [(g.get("groupName", str(i)) if isinstance(g, dict) else str(i), f"{prefix}.workerGroupSpecs[{i}]",
                g, False) for i, g in enumerate(spec.get("workerGroupSpecs") or [])]
    nodes, cpus = [], 0.0
    for name, field, group, is_head in groups:
        group = _mapping(group, path, field)
        pod = _mapping(_mapping(group.get("template"), path, f"{field}.template").get("spec"),
                       path, f"{field}.template.spec")
        params = _mapping(group.get("rayStartParams"), path, f"{field}.rayStartParams")
        # KubeRay reads a pod's Ray resources from its first container (the Ray container).
        at = f"{field}.template.spec.containers[0].resources"
        ray = _mapping((pod.get("containers") or [{}])[0], path, f"{field}.template.spec.containers[0]")
        res = _mapping(ray.get("resources"), path, at)
        limits = {**_mapping(res.get("requests"), path, f"{at}.requests"),
                  **_mapping(res.get("limits"), path, f"{at}.limits")}
        gpus = int(_number(limits.get("nvidia.com/gpu", 0), path, f'{at}.limits["nvidia.com/gpu"]'))
        pod_cpus = _number(limits["cpu"], path, f"{at}.limits.cpu") if "cpu" in limits else None
        if "num-gpus" in params:
            gpus = int(_number(params["num-gpus"], path, f"{field}.rayStartParams.num-gpus"))
        if "num-cpus" in params:
            pod_cpus = _number(params["num-cpus"], path, f"{field}.rayStartParams.num-cpus")
        selector = f"{field}.template.spec.nodeSelector"
        labels = {k: (v, f"{selector}[{k!r}]") for k, v in _mapping(pod.get("nodeSelector"), path, selector).items()}
        affinity = (pod.get("affinity") or {}).get("nodeAffinity") or {}
        terms = (affinity.get("requiredDuringSchedulingIgnoredDuringExecution") or {}).get("nodeSelectorTerms") or []
        required = f"{field}.template.spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution"
        for t, term in enumerate(terms):
            for x, e in enumerate(term.get("matchExpressions") or []):
                if e.get("operator") == "In" and e.get("values"):
                    where = f"{required}.nodeSelectorTerms[{t}].matchExpressions[{x}]"
                    labels.setdefault(e.get("key"), (e["values"][0], where))
        hardware = hw_field = None
        for key in ("node.kubernetes.io/instance-type", "beta.kubernetes.io/instance-type",
                    "cloud.google.com/gke-accelerator", "nvidia.com/gpu.product", "karpenter.k8s.aws/instance-gpu-name"):
            if key in labels and labels[key][0]:
                hardware, hw_field = str(labels[key][0]), labels[key][1]
                break
        hosts = int(_number(group.get("numOfHosts", 1), path, f"{field}.numOfHosts"))
        count = 1 if is_head else group.get("maxReplicas", group.get("replicas"))
        count = None if count is None else int(_number(count, path, f"{field}.maxReplicas")) * hosts
        nodes.append(_node(path, name, field, hardware, hw_field, gpus, count))
        cpus = None if cpus is None or pod_cpus is None or count is None else cpus + pod_cpus * count
    return nodes, cpus


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
# ($1.575 per GPU-hour, implied by both rows). 8 text tokens in pre-training.
CLIPA_V2 = [
    PublishedRun("12.8B@70px + 512M@224px", "ViT-H-14", ((70, 12_800_000_000), (224, 512_000_000)), 5920, 9324, 81.1),
    PublishedRun("12.8B@84px + 512M@224px", "ViT-H-14", ((84, 12_800_000_000), (224, 512_000_000)), 7776, 12247, 81.5),
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
    from clipscale.sweep.dry_run import human_time

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
    head_row = ["trial", "GPUs", "GPU-hours", "cost (USD)", "wall-clock"]
    widths = [max(len(r[i]) for r in [head_row, *rows]) for i in range(len(head_row))]
    table = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in [head_row, *rows]]
    table.insert(1, "  ".join("-" * w for w in widths))
    wall = (f"wall-clock {human_time(plan['wall_hours'] * 3600)} on {fits} GPUs ({plan['slots']} trial(s) at once)"
            if plan["wall_hours"] is not None else
            "wall-clock: unknown" if fits is None else f"wall-clock: a trial does not fit on {fits} GPUs")
    total = f"total {fmt_hours(plan['gpu_hours'])} GPU-hours, {fmt_usd(plan['usd'])}; {wall}"
    return "\n".join([*lines, *table, "", total, *clipa_lines(matches or [], gpu, mfu)])
