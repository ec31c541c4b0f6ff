"""The hardware catalog the cost planner prices a sweep against: each GPU's dense bf16 peak (vendor
datasheets), each GPU instance or machine type's accelerator, GPU count, vCPUs and on-demand price
(assumptions, dated and placed), and the lookups from the names cluster files use for them (AWS
instance types, GCP machine and accelerator types, GPU product labels) to catalog keys.

It is its own module because it is the part that goes stale: when a cloud changes its prices or a
new GPU appears, this file (and PRICES_ASSUMED_ON) is the one to edit; the cluster-file reader
(``cluster_file.py``) and the estimate (``cost.py``) only look things up here.
"""
from __future__ import annotations

import re
from dataclasses import dataclass


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
