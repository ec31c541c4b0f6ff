"""``clipscale export``: write a trained model as an open_clip hub folder (and, for ``hf``, a model card).

The folder is built in a temporary sibling and renamed into place at the end, so an error (a model
open_clip cannot express, a corrupt checkpoint, a full disk) leaves nothing at ``--out``.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import Literal

from clipscale.export.model_card import model_card
from clipscale.export.open_clip_format import (OPEN_CLIP_CONFIG, OPEN_CLIP_WEIGHTS, PREPROCESS_CFG,
                                               TOKENIZER_FILE, ExportError, model_cfg, to_open_clip)
from clipscale.trained import EXPORT_MANIFEST, TrainedModel

FORMATS = ("open_clip", "hf")


def export_image_size(trained: TrainedModel, image_size: int | None) -> int:
    """The resolution the exported model takes: asked for, else the last training stage's, else the spec's."""
    if image_size:
        return image_size
    stages = (trained.run_config or {}).get("stages") or []
    if stages and stages[-1].get("image_size"):
        return int(stages[-1]["image_size"])
    return trained.spec.image.image_size


def export(trained: TrainedModel, out: str | os.PathLike, fmt: Literal["open_clip", "hf"] = "open_clip",
           image_size: int | None = None, results: "object | None" = None, overwrite: bool = False) -> Path:
    """Write ``trained`` to the folder ``out``; returns it. ``results``: the run's results rows (a
    DataFrame) for the model card's eval table."""
    from safetensors.torch import save_file

    if fmt not in FORMATS:
        raise ExportError(f"--format {fmt!r}: choose one of {', '.join(FORMATS)}")
    out = Path(out).resolve()
    if out.exists() and not overwrite:
        raise ExportError(f"{out} exists; choose another --out or pass --overwrite")
    size = export_image_size(trained, image_size)
    cfg = model_cfg(trained.spec, size, trained.loss)  # refuses what open_clip cannot express
    weights = to_open_clip(trained.model.state_dict(), trained.spec, size)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=out.parent))
    try:
        (tmp / OPEN_CLIP_CONFIG).write_text(json.dumps({"model_cfg": cfg, "preprocess_cfg": PREPROCESS_CFG},
                                                      indent=2))
        save_file(weights, str(tmp / OPEN_CLIP_WEIGHTS), metadata={"format": "pt"})
        shutil.copyfile(trained.tokenizer_path, tmp / TOKENIZER_FILE)
        manifest = {"spec": trained.spec.model_dump(mode="json"), "loss": trained.loss, "image_size": size,
                    "train_state": asdict(trained.state), "run_config": trained.run_config,
                    "source": str(trained.checkpoint or trained.source)}
        (tmp / EXPORT_MANIFEST).write_text(json.dumps(manifest, indent=1))
        if fmt == "hf":
            (tmp / "README.md").write_text(model_card(trained, size, results))
        if out.exists():  # --overwrite: the old folder goes only once the new one is complete
            shutil.rmtree(out)
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out
