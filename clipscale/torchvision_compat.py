"""Import torchvision (and so open_clip and clip_benchmark) on a CPU-only torch build.

torchvision's PyPI wheels link its compiled ops against CUDA torch; beside a CPU-only torch
(``torch==2.13.0+cpu``) those ops do not load, and torchvision then fails at import time because
``_meta_registrations`` registers fake kernels for ``torchvision::nms``/``qnms`` without checking
that the ops exist (pytorch/vision#9085). Declaring the two op schemas, with no kernels, lets that
import finish; open_clip and clip_benchmark's classification/retrieval never call them (calling one
still fails loudly: it has no kernel). With a torch build where torchvision's ops load, this does nothing.
"""
from __future__ import annotations

import importlib.util
from pathlib import Path

_SCHEMAS = {"nms": "(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
            "qnms": "(Tensor dets, Tensor scores, float iou_threshold) -> Tensor"}
_library = None  # kept alive: dropping a torch.library.Library removes its definitions


def ensure_torchvision_importable() -> bool:
    """Call before importing torchvision / open_clip. Returns True when the op schemas were declared."""
    global _library
    import torch

    spec = importlib.util.find_spec("torchvision")
    if spec is None or _library is not None or hasattr(torch.ops.torchvision, "nms"):
        return False
    ops = Path(next(iter(spec.submodule_search_locations))) / "_C.so"
    try:
        torch.ops.load_library(str(ops))
        return False
    except (OSError, RuntimeError):
        pass
    _library = torch.library.Library("torchvision", "DEF")
    for name, schema in _SCHEMAS.items():
        _library.define(name + schema)
    return True
