"""``clipscale export CHECKPOINT --format open_clip|hf --out DIR``: a trained model in open_clip's hub layout."""
from __future__ import annotations

import argparse
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from clipscale.cli.flags import add_model_flags, model_from_args


class ExportOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    checkpoint: str = Field(description="run folder, checkpoint folder or exported folder")
    format: Literal["open_clip", "hf"] = Field("open_clip", description="open_clip: its hub layout; hf: plus a model card")
    out: str = Field(description="output folder (must not exist unless --overwrite)")
    image_size: int | None = Field(None, gt=0, description="input resolution of the exported model (unset: the last training stage's)")
    overwrite: bool = Field(False, description="replace --out once the new folder is complete")


def register(sub) -> None:
    p = sub.add_parser("export", help="export a trained model to open_clip / Hugging Face format",
                       description="CHECKPOINT: a run folder (its last checkpoint), one checkpoint folder "
                                   "or an exported folder. Writes open_clip_config.json, "
                                   "open_clip_model.safetensors and tokenizer.model (hf: plus README.md, "
                                   "a model card) into --out; nothing is written on error.")
    add_model_flags(p, ExportOptions, positional=("checkpoint",))
    p.set_defaults(func=run)


def run_results(trained):
    """The run's results rows for the model card, when its table is readable."""
    from clipscale.config import build_run_config
    from clipscale.errors import ClipscaleError
    from clipscale.results import read_results

    if not trained.run_config:
        return None
    try:
        return read_results(build_run_config(trained.run_config).table_dir)
    except (FileNotFoundError, ClipscaleError):
        return None


def run(args: argparse.Namespace) -> int:
    from clipscale.export.write import export
    from clipscale.trained import load_trained

    opts = model_from_args(args, ExportOptions, kind="export options")
    trained = load_trained(opts.checkpoint)
    results = run_results(trained) if opts.format == "hf" else None
    out = export(trained, opts.out, fmt=opts.format, image_size=opts.image_size, results=results,
                 overwrite=opts.overwrite)
    print(f"exported {trained.name} ({trained.spec.name}, {trained.state.samples_seen:,} samples seen) "
          f"to {out} [{opts.format}]")
    return 0
