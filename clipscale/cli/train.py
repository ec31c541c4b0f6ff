"""``clipscale train RUN.yaml``: one training run on Ray Train + DeepSpeed."""
from __future__ import annotations

import argparse

from pydantic import BaseModel, ConfigDict, Field

from clipscale.cli.flags import accept_overrides, add_model_flags, model_from_args


class TrainOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    config: str = Field(description="run YAML (see configs/)")
    resume: bool = Field(False, description="continue the run from its latest checkpoint")


def register(sub) -> None:
    p = sub.add_parser("train", help="train one CLIP run (Ray Train + DeepSpeed ZeRO)",
                       description="Train one run. Any config field can be set from the command "
                                   "line: --train.zero_stage 3, --model.name tiny-l, --stages.0.image_size 32.")
    add_model_flags(p, TrainOptions, positional=("config",))
    accept_overrides(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from clipscale.config import load_run_config
    from clipscale.train.launch import run_failure, train

    opts = model_from_args(args, TrainOptions, kind="train options")
    cfg = load_run_config(opts.config, args.overrides)
    result = train(cfg, resume=opts.resume)
    failure = run_failure(result)
    if failure:
        print(f"clipscale train: run {cfg.name} failed: {failure}")
        return 1
    print(f"clipscale train: run {cfg.name} finished; results in {cfg.table_dir}, run folder {cfg.run_dir}")
    return 0
