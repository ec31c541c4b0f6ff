"""The dry run's cost planner: cluster files (Ray cluster launcher, KubeRay) -> GPU node type,
GPU-hours = compute / (peak x MFU) / 3600, cost, wall-clock, and the CLIPA-v2 comparison."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from clipscale.cli import main
from clipscale.sweep import cost
from clipscale.sweep.cluster_file import CostError, cluster_kind, read_cluster
from clipscale.sweep.cost import gpu_assumption, gpu_hours, plan_costs
from clipscale.sweep.dry_run import human_time
from clipscale.sweep.expand import load_trials
from clipscale.train.plan import plan_run

ROOT = Path(__file__).resolve().parents[1]

AWS = {"cluster_name": "c", "max_workers": 4, "provider": {"type": "aws", "region": "us-east-1"},
       "head_node_type": "head",
       "available_node_types": {
           "head": {"resources": {"CPU": 0}, "node_config": {"InstanceType": "m5.8xlarge"}},
           "gpu_8x_h100": {"min_workers": 0, "max_workers": 2, "resources": {"CPU": 192, "GPU": 8},
                           "node_config": {"InstanceType": "p5.48xlarge"}}}}
GCP = {"cluster_name": "c", "max_workers": 8, "provider": {"type": "gcp", "region": "us-central1"},
       "head_node_type": "head",
       "available_node_types": {
           "head": {"resources": {"CPU": 8}, "node_config": {"machineType": "n2-standard-8"}},
           "gpu_8x_h100": {"max_workers": 8, "resources": {"CPU": 192, "GPU": 8}, "node_config": {
               "machineType": "a3-highgpu-8g",
               "guestAccelerators": [{"acceleratorType": "nvidia-h100-80gb", "acceleratorCount": 8}]}}}}


def pod(gpus=0, cpu="8", selector=None):
    limits = {"cpu": cpu, **({"nvidia.com/gpu": gpus} if gpus else {})}
    spec = {"containers": [{"name": "ray", "image": "rayproject/ray", "resources": {"limits": limits}}]}
    if selector:
        spec["nodeSelector"] = selector
    return {"spec": spec}


def raycluster_spec(selector=None, gpus=8):
    return {"headGroupSpec": {"rayStartParams": {}, "template": pod(cpu="4")},
            "workerGroupSpecs": [
                {"groupName": "cpu", "replicas": 1, "maxReplicas": 2, "rayStartParams": {}, "template": pod(cpu="16")},
                {"groupName": "gpu", "replicas": 0, "minReplicas": 0, "maxReplicas": 4, "rayStartParams": {},
                 "template": pod(gpus=gpus, cpu="96", selector=selector)}]}


def write(tmp_path, data, name="cluster.yaml", docs=None):
    p = tmp_path / name
    p.write_text(yaml.safe_dump_all(docs) if docs is not None else yaml.safe_dump(data))
    return p


def test_gpu_hours_cost_and_wall_clock_are_the_stated_arithmetic(tmp_path):
    # 1e21 FLOPs on an H100 (989 TFLOP/s bf16 dense) at 40% MFU
    assert gpu_hours(1e21, 989e12, 0.4) == 1e21 / (989e12 * 0.4) / 3600
    assert gpu_hours(1e21, 989e12, 0.4) == pytest.approx(702.17, abs=0.005)
    node = read_cluster(write(tmp_path, AWS)).node()   # 2 x p5.48xlarge = 16 H100s
    gpu = gpu_assumption(node)
    assert (gpu.peak_flops, gpu.usd_per_gpu_hour) == (989e12, 55.04 / 8)
    plan = plan_costs([("a", 1e21, 8), ("b", 1e21, 8), ("c", 2e21, 8)], gpu, 0.4)
    h = 1e21 / (989e12 * 0.4) / 3600
    assert [t.gpu_hours for t in plan["trials"]] == [h, h, 2e21 / (989e12 * 0.4) / 3600]
    assert [t.usd for t in plan["trials"]] == [t.gpu_hours * 55.04 / 8 for t in plan["trials"]]
    assert plan["gpu_hours"] == pytest.approx(4 * h) and plan["usd"] == pytest.approx(4 * h * 6.88)
    # 16 GPUs hold two 8-GPU trials at once: a and b side by side, then c after a
    assert plan["slots"] == 2 and plan["wall_hours"] == pytest.approx(3 * h / 8)
    assert plan_costs([("a", 1e21, 8)] * 3, gpu, 0.4, cap=1)["wall_hours"] == pytest.approx(3 * h / 8)
    wide = plan_costs([("a", 1e21, 32)], gpu, 0.4)      # more GPUs than the cluster has
    assert wide["wall_hours"] is None and "needs 32 GPUs, the cluster has 16" in cost.format_costs(wide, gpu, 0.4)
    given = gpu_assumption(node, peak_flops=312e12, usd_per_gpu_hour=2.0)
    assert (given.peak_flops, given.usd_per_gpu_hour) == (312e12, 2.0)
    no_cluster = plan_costs([("a", 1e21, 8)], gpu_assumption(None, 989e12, 2.0), 0.4)
    assert no_cluster["usd"] == h * 2.0 and no_cluster["wall_hours"] is None
    assert "wall-clock: unknown" in cost.format_costs(no_cluster, gpu_assumption(None, 989e12, 2.0), 0.4)


def test_launcher_yamls_aws_and_gcp(tmp_path):
    aws = read_cluster(write(tmp_path, AWS))
    assert aws.kind == "launcher" and [n.name for n in aws.gpu_nodes] == ["gpu_8x_h100"]
    n = aws.node()
    assert (n.hardware, n.accelerator, n.gpus, n.nodes, n.capacity) == ("p5.48xlarge", "H100", 8, 2, 16)
    assert n.field == "available_node_types.gpu_8x_h100.node_config.InstanceType"
    assert aws.cpus == 0 + 2 * 192
    gcp = read_cluster(write(tmp_path, GCP))
    n = gcp.node()
    assert (n.hardware, n.accelerator, n.gpus, n.capacity) == ("a3-highgpu-8g", "H100", 8, 64)
    assert gpu_assumption(n).usd_per_gpu_hour == 88.49 / 8
    assert gcp.cpus == 8 + 8 * 192
    # a general machine type with attached GPUs: the accelerator names the GPU; no node-type
    # max_workers: the cluster's max_workers; no resources block: the GPUs from the accelerators
    l4 = {**GCP, "available_node_types": {"head": GCP["available_node_types"]["head"], "l4": {"node_config": {
        "machineType": "n1-standard-16",
        "guestAccelerators": [{"acceleratorType": "projects/p/zones/z/acceleratorTypes/nvidia-l4",
                               "acceleratorCount": 2}]}}}}
    n = read_cluster(write(tmp_path, l4)).node()
    assert (n.hardware, n.accelerator, n.gpus, n.capacity) == ("nvidia-l4", "L4", 2, 16)
    with pytest.raises(CostError, match=r"guestAccelerators\[0\].acceleratorType: no price assumed.*--gpu-hour-price"):
        gpu_assumption(n)
    assert gpu_assumption(n, usd_per_gpu_hour=0.7).peak_flops == 121e12
    # AWS without a resources block: GPUs and vCPUs from the instance catalog
    bare = {**AWS, "available_node_types": {"head": AWS["available_node_types"]["head"],
                                            "gpu": {"max_workers": 3, "node_config": {"InstanceType": "p4d.24xlarge"}}}}
    n = read_cluster(write(tmp_path, bare)).node()
    assert (n.accelerator, n.gpus, n.capacity) == ("A100-40GB", 8, 24)


def test_kuberay_raycluster_rayjob_rayservice(tmp_path):
    gke = {"cloud.google.com/gke-accelerator": "nvidia-h100-80gb"}
    rc = {"apiVersion": "ray.io/v1", "kind": "RayCluster", "metadata": {"name": "c"}, "spec": raycluster_spec(gke)}
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "wandb"}, "stringData": {"k": "v"}}
    c = read_cluster(write(tmp_path, None, docs=[secret, rc]))   # a multi-document file
    assert c.kind == "RayCluster" and [n.name for n in c.gpu_nodes] == ["gpu"]
    n = c.node()
    assert (n.hardware, n.accelerator, n.gpus, n.nodes, n.capacity) == ("nvidia-h100-80gb", "H100", 8, 4, 32)
    assert n.field == "spec.workerGroupSpecs[1].template.spec.nodeSelector['cloud.google.com/gke-accelerator']"
    assert gpu_assumption(n).usd_per_gpu_hour == 88.49 / 8
    assert c.cpus == 4 + 2 * 16 + 4 * 96
    eks = {"node.kubernetes.io/instance-type": "p5.48xlarge"}
    job = {"apiVersion": "ray.io/v1", "kind": "RayJob", "metadata": {"name": "j"},
           "spec": {"entrypoint": "clipscale sweep sweeps/demo.yaml", "rayClusterSpec": raycluster_spec(eks)}}
    n = read_cluster(write(tmp_path, job)).node()
    assert (n.hardware, n.accelerator, n.capacity) == ("p5.48xlarge", "H100", 32)
    assert n.field.startswith("spec.rayClusterSpec.workerGroupSpecs[1]")
    pinned = raycluster_spec(None)   # node affinity instead of a nodeSelector
    pinned["workerGroupSpecs"][1]["template"]["spec"]["affinity"] = {"nodeAffinity": {
        "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [{"matchExpressions": [
            {"key": "node.kubernetes.io/instance-type", "operator": "In", "values": ["p4d.24xlarge"]}]}]}}}
    n = read_cluster(write(tmp_path, {"apiVersion": "ray.io/v1", "kind": "RayCluster", "spec": pinned})).node()
    assert (n.hardware, n.accelerator) == ("p4d.24xlarge", "A100-40GB") and n.field.endswith("matchExpressions[0]")
    svc = {"apiVersion": "ray.io/v1", "kind": "RayService", "metadata": {"name": "s"},
           "spec": {"rayClusterConfig": raycluster_spec({"nvidia.com/gpu.product": "NVIDIA-A100-SXM4-80GB"})}}
    n = read_cluster(write(tmp_path, svc)).node()
    assert n.accelerator == "A100-80GB" and gpu_assumption(n, usd_per_gpu_hour=3.0).peak_flops == 312e12
    # nothing names the hardware (a cloud-neutral manifest): the GPU type is read from the group's name
    neutral = raycluster_spec(None)
    neutral["workerGroupSpecs"][1]["groupName"] = "gpu-8x-h100"
    n = read_cluster(write(tmp_path, {"apiVersion": "ray.io/v1", "kind": "RayCluster", "spec": neutral})).node()
    assert (n.accelerator, n.from_name, n.hardware, n.capacity) == ("H100", True, None, 32)
    with pytest.raises(CostError, match=r"workerGroupSpecs\[1\]: no price assumed.*--gpu-hour-price"):
        gpu_assumption(n)
    assert gpu_assumption(n, usd_per_gpu_hour=4.0).peak_flops == 989e12


def test_cluster_file_errors_name_the_file_and_field(tmp_path):
    cpu_only = {**AWS, "available_node_types": {"head": AWS["available_node_types"]["head"]}}
    p = write(tmp_path, cpu_only)
    with pytest.raises(CostError, match=r"no GPU node type") as e:
        read_cluster(p)
    assert str(p) in str(e.value)
    unknown = {**AWS, "available_node_types": {"gpu": {"max_workers": 1, "resources": {"GPU": 8},
                                                       "node_config": {"InstanceType": "p9.48xlarge"}}}}
    p = write(tmp_path, unknown)
    with pytest.raises(CostError, match=r"available_node_types.gpu.node_config.InstanceType: unknown GPU type "
                                        r"'p9.48xlarge'.*--gpu-peak-flops.*--gpu-hour-price") as e:
        gpu_assumption(read_cluster(p).node())
    assert str(p) in str(e.value)
    assert gpu_assumption(read_cluster(p).node(), 1e15, 5.0).usd_per_gpu_hour == 5.0   # overrides suffice
    no_selector = {"apiVersion": "ray.io/v1", "kind": "RayCluster", "spec": raycluster_spec(None)}
    with pytest.raises(CostError, match=r"workerGroupSpecs\[1\]: no GPU type named.*--gpu-peak-flops"):
        gpu_assumption(read_cluster(write(tmp_path, no_selector)).node())
    selector_job = {"apiVersion": "ray.io/v1", "kind": "RayJob", "spec": {"clusterSelector": {"ray.io/cluster": "c"}}}
    with pytest.raises(CostError, match=r"spec.rayClusterSpec: missing"):
        read_cluster(write(tmp_path, selector_job))
    bad = tmp_path / "bad.yaml"
    bad.write_text("available_node_types:\n  gpu: {node_config: [\n")
    with pytest.raises(CostError, match=rf"{bad}: not valid YAML"):
        read_cluster(bad)
    with pytest.raises(CostError, match=r"not a cluster file"):
        read_cluster(write(tmp_path, {"apiVersion": "v1", "kind": "Secret"}))
    bad_gpus = {**AWS, "available_node_types": {"g": {"resources": {"GPU": "eight"}}}}
    with pytest.raises(CostError, match=r"available_node_types.g.resources.GPU: not a number"):
        read_cluster(write(tmp_path, bad_gpus))
    for mfu in (0, -0.1, 1.5):
        with pytest.raises(CostError, match=r"--mfu must be in \(0, 1\]"):
            cost.check_mfu(mfu)
    assert cost.check_mfu(1.0) == 1.0
    with pytest.raises(CostError, match=r"--gpu-hour-price must be >= 0"):
        gpu_assumption(None, 1e15, -1.0)


def test_cli_prints_the_planners_figures_and_the_clipa_comparison(tmp_path, capsys):
    cluster = write(tmp_path, {**AWS, "max_workers": 32, "available_node_types": {
        **AWS["available_node_types"], "gpu_8x_h100": {**AWS["available_node_types"]["gpu_8x_h100"], "max_workers": 32}}})
    sweep = ROOT / "sweeps" / "clipa_v2_h14.yaml"
    assert main(["sweep", str(sweep), "--dry-run", "--cluster", str(cluster)]) == 0
    out = capsys.readouterr().out
    _, _, ((trial, cfg),) = load_trials(sweep)
    compute = sum(p.compute for p in plan_run(cfg))
    h = gpu_hours(compute, 989e12, cost.DEFAULT_MFU)
    row = next(line for line in out.splitlines() if line.startswith(trial.id) and "$" in line)
    assert row.split()[1:4] == ["256", f"{h:,.1f}", f"${h * 55.04 / 8:,.0f}"]
    assert f"total {h:,.1f} GPU-hours, ${h * 55.04 / 8:,.0f}; wall-clock {human_time(h / 256 * 3600)} on 256 GPUs" in out
    assert "cluster {'CPU': 6144.0, 'GPU': 256.0}" in out            # the trial table is the cluster's too
    assert "12.8B@70px + 512M@224px: 5,920 GPU-hours, $9,324, 81.1%" in out
    a100 = gpu_hours(compute, 312e12, cost.DEFAULT_MFU)
    assert "has their 12.8B@84px + 512M@224px schedule" in out and f"{a100 / 7776:.2f}x their 7,776" in out
    # every assumption overridable
    assert main(["sweep", str(sweep), "--dry-run", "--cluster", str(cluster), "--mfu", "0.5",
                 "--gpu-hour-price", "2", "--gpu-peak-flops", "1e15"]) == 0
    out = capsys.readouterr().out
    h = gpu_hours(compute, 1e15, 0.5)
    assert f"total {h:,.1f} GPU-hours, ${h * 2:,.0f}" in out and "x 50% assumed MFU" in out
    # a tiny sweep (CPU-sized trials) on the same GPUs: small figures keep 3 significant digits
    assert main(["sweep", str(ROOT / "sweeps" / "smoke.yaml"), "--dry-run", "--cluster", str(cluster),
                 "--gpu-peak-flops", "1e15", "--gpu-hour-price", "2"]) == 0
    out = capsys.readouterr().out
    _, _, trials = load_trials(ROOT / "sweeps" / "smoke.yaml")
    for trial, cfg in trials:
        h = gpu_hours(sum(p.compute for p in plan_run(cfg)), 1e15, cost.DEFAULT_MFU)
        row = next(line for line in out.splitlines() if line.startswith(trial.id) and "$" in line)
        assert row.split()[2:4] == [cost.fmt_hours(h), cost.fmt_usd(h * 2)] == [f"{h:.3g}", f"${h * 2:.3g}"]
    assert "on 256 GPUs (2 trial(s) at once)" in out


@pytest.mark.parametrize("argv,message", [
    (["--cluster", "c.yaml"], r"--cluster: only with --dry-run"),
    (["--dry-run", "--mfu", "0.4"], r"--mfu: needs --cluster FILE"),
    (["--dry-run", "--gpu-hour-price", "2"], r"--gpu-hour-price: needs --cluster FILE"),
    (["--dry-run", "--gpu-hour-price", "2", "--gpu-peak-flops", "1e15", "--mfu", "1.5"], r"--mfu must be in"),
    (["--dry-run", "--cluster", "missing.yaml"], r"missing.yaml"),
])
def test_cli_refuses_cost_flags_out_of_place(argv, message, capsys):
    assert main(["sweep", str(ROOT / "sweeps" / "clipa_v2_h14.yaml"), *argv]) == 2
    assert re.search(message, capsys.readouterr().err)


CLUSTER_FILES = sorted({*(ROOT / "cluster").glob("**/*.yaml"), *(ROOT / "cluster").glob("**/*.yml")})


@pytest.mark.parametrize("path", CLUSTER_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_repository_cluster_files_have_an_8x_h100_node_type(path):
    docs = [d for d in yaml.safe_load_all(path.read_text()) if d is not None]
    if cluster_kind(docs) is None:
        pytest.skip("not a cluster file (secrets example, storage class, ...)")
    cluster = read_cluster(path)
    h100 = [n for n in cluster.gpu_nodes if n.accelerator == "H100" and n.gpus == 8]
    assert h100, f"{path}: GPU node types {cluster.gpu_nodes}"
    gpu = gpu_assumption(h100[0]) if h100[0].price_from else gpu_assumption(h100[0], usd_per_gpu_hour=1.0)
    assert gpu.peak_flops == 989e12
