"""``clipscale eval CHECKPOINT --suite SUITE ...``: score saved models on evaluation suites.

CHECKPOINT is a run folder (its last checkpoint), a checkpoint folder, a `clipscale export`
folder, or a sweep folder (every trial's last checkpoint). Runs on CPU or GPU in this process
(no Ray Train); rows are appended to the run's results table with status ``rescored``."""
from __future__ import annotations

import argparse
import sys
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from clipscale.cli.flags import add_model_flags, model_from_args


class EvalOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    checkpoint: str = Field(description="run folder, checkpoint folder, exported model folder, or sweep folder")
    suite: list[str] = Field(min_length=1, description=(
        "a suites YAML file (e.g. data/emoji-world/eval/suites/suites.yaml), or one suite inline: "
        "kind=image_folder,name=inet,path=DIR,classnames=FILE.json (repeatable)"))
    results: str | None = Field(None, description="results table to append to (unset: each run's own table)")
    json_dir: str | None = Field(None, description="clip_benchmark-style JSON files (unset: clip_benchmark/ beside the table)")
    device: Literal["auto", "cpu", "cuda"] = Field("auto", description="auto: cuda when available")
    batch_size: int = Field(256, gt=0, description="images or texts per forward pass")


def register(sub) -> None:
    p = sub.add_parser("eval", help="score saved checkpoints on evaluation suites (no training)",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_model_flags(p, EvalOptions, positional=("checkpoint",), whole=("suite",))
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import torch
    from tqdm import tqdm

    from clipscale.errors import ConfigError
    from clipscale.evaluation.rescore import score_checkpoint, targets
    from clipscale.evaluation.suite_config import check_unique_names, parse_suite_arg
    from clipscale.evaluation.suite_scoring import SuiteScorer

    opts = model_from_args(args, EvalOptions, kind="eval options")
    suites = [s for arg in opts.suite for s in parse_suite_arg(arg)]
    try:
        check_unique_names(suites)
    except ValueError as e:
        raise ConfigError(f"--suite: {e}") from None
    device = ("cuda" if torch.cuda.is_available() else "cpu") if opts.device == "auto" else opts.device
    if device == "cuda" and not torch.cuda.is_available():
        raise ConfigError("--device cuda: no CUDA device on this machine")
    found = targets(opts.checkpoint)
    scorer = SuiteScorer(suites)  # every suite read and checked before any model loads
    lines, scored = [], 0
    for target in tqdm(found, desc="checkpoints", disable=len(found) < 2, file=sys.stderr):
        if len(found) > 1 and not any(target.glob("checkpoint_*")):
            lines.append(f"{target.name}: skipped, no checkpoint yet")  # a sweep's unstarted trial
            continue
        row, written = score_checkpoint(target, scorer, opts.results, opts.json_dir, device,
                                        opts.batch_size)
        scored += 1
        heads = [k for k in row if "/" in k and k.endswith("_mean") and
                 k.split("/", 1)[0] in {s.name for s in suites} and
                 k.split("/", 1)[1].split("_mean")[0] in ("top1", "i2t_r1", "t2i_r1")]
        lines.append(f"{row['run_id']} samples_seen {row['samples_seen']} compute {row['compute']:.3g}: "
                     + " ".join(f"{k} {row[k]:.4f}" for k in sorted(heads)))
        lines.append(f"  {len(written)} clip_benchmark JSON files in {written[0].rsplit('/', 1)[0]}")
    table = opts.results or "each run's results table"
    print(f"[clipscale] eval: {scored} checkpoint(s) on {len(suites)} suite(s); rows (status rescored) in {table}")
    print("\n".join(lines))
    return 0
