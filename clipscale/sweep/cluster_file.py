"""Reading a cluster file for the cost planner: a Ray cluster launcher YAML (``available_node_types``)
or a KubeRay RayCluster, RayJob or RayService manifest (``headGroupSpec``, ``workerGroupSpecs``) ->
its GPU node types (hardware, GPUs per node, most nodes it scales to) and its CPU capacity.

The formats say the same things in different fields (``resources.GPU``, ``InstanceType`` or
``machineType``, ``guestAccelerators``; ``nvidia.com/gpu`` limits, ``rayStartParams``, node
selector and node-affinity labels), and most of the planner's failure modes are here, so the
parsing lives apart from the arithmetic in ``cost.py``: every error names the file and the field.
CostError is defined here, the lowest module that raises it; ``cost.py`` raises it too.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

from clipscale.config import ConfigError
from clipscale.sweep.catalog import (
    GCP_ACCELERATORS,
    GPU_FAMILY,
    INSTANCE_TYPES,
    accelerator_from_product,
)


class CostError(ConfigError):
    """A cluster file or a cost flag the planner cannot use; the message names the file and field."""


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
