"""``clipscale train RUN.yaml``: one training run on Ray Train + DeepSpeed."""
from __future__ import annotations

import argparse


def register(sub) -> None:
    p = sub.add_parser("train", help="train one CLIP run (Ray Train + DeepSpeed ZeRO)",
                       description="Train one run. Any config field can be set from the command "
                                   "line: --train.zero_stage 3, --model.name tiny-l, --stages.0.image_size 32.")
    p.add_argument("config", help="run YAML (see configs/)")
    p.add_argument("--resume", action="store_true", help="continue the run from its latest checkpoint")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="FIELD=VALUE",
                   help="override a config field (repeatable)")
    p.set_defaults(func=run, accepts_overrides=True)


def run(args: argparse.Namespace) -> int:
    from clipscale.config import load_run_config
    from clipscale.train.launch import run_failure, train

    cfg = load_run_config(args.config, args.overrides)
    result = train(cfg, resume=args.resume)
    failure = run_failure(result)
    if failure:
        print(f"clipscale train: run {cfg.name} failed: {failure}")
        return 1
    print(f"clipscale train: run {cfg.name} finished; results in {cfg.table_dir}, run folder {cfg.run_dir}")
    return 0
