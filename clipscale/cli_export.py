"""``clipscale export CHECKPOINT --format open_clip|hf --out DIR``: a trained model in open_clip's hub layout."""
from __future__ import annotations

import argparse


def register(sub) -> None:
    p = sub.add_parser("export", help="export a trained model to open_clip / Hugging Face format",
                       description="CHECKPOINT: a run folder (its last checkpoint), one checkpoint folder "
                                   "or an exported folder. Writes open_clip_config.json, "
                                   "open_clip_model.safetensors and tokenizer.model (hf: plus README.md, "
                                   "a model card) into --out; nothing is written on error.")
    p.add_argument("checkpoint", help="run folder, checkpoint folder or exported folder")
    p.add_argument("--format", choices=("open_clip", "hf"), default="open_clip")
    p.add_argument("--out", required=True, help="output folder (must not exist unless --overwrite)")
    p.add_argument("--image-size", type=int, default=None,
                   help="input resolution of the exported model (default: the last training stage's)")
    p.add_argument("--overwrite", action="store_true", help="replace --out once the new folder is complete")
    p.set_defaults(func=run_export)


def _run_results(trained):
    """The run's results rows for the model card, when its table is readable."""
    from clipscale.config import build_run_config
    from clipscale.results import read_results

    if not trained.run_config:
        return None
    try:
        return read_results(build_run_config(trained.run_config).table_dir)
    except (FileNotFoundError, ValueError):
        return None


def run_export(args: argparse.Namespace) -> int:
    from clipscale.config import ConfigError
    from clipscale.export.write import export
    from clipscale.trained import load_trained

    try:
        trained = load_trained(args.checkpoint)
        results = _run_results(trained) if args.format == "hf" else None
        out = export(trained, args.out, fmt=args.format, image_size=args.image_size, results=results,
                     overwrite=args.overwrite)
    except ValueError as e:  # CheckpointError, ExportError
        raise ConfigError(str(e)) from e
    print(f"exported {trained.name} ({trained.spec.name}, {trained.state.samples_seen:,} samples seen) "
          f"to {out} [{args.format}]")
    return 0
