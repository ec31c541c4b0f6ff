"""``clipscale eval CHECKPOINT --suite SUITE ...``: score saved models on evaluation suites.

CHECKPOINT is a run folder (its last checkpoint), a checkpoint folder, a `clipscale export`
folder, or a sweep folder (every trial's last checkpoint). Runs on CPU or GPU in this process
(no Ray Train); rows are appended to the run's results table with status ``rescored``."""
from __future__ import annotations

import argparse
import sys


def register(sub) -> None:
    p = sub.add_parser("eval", help="score saved checkpoints on evaluation suites (no training)",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("checkpoint", metavar="CHECKPOINT",
                   help="run folder, checkpoint folder, exported model folder, or sweep folder")
    p.add_argument("--suite", action="append", required=True, metavar="SUITE",
                   help="a suites YAML file (e.g. data/emoji-world/eval/suites/suites.yaml), or one suite "
                        "inline: kind=image_folder,name=inet,path=DIR,classnames=FILE.json (repeatable)")
    p.add_argument("--results", default=None, metavar="DIR",
                   help="results table to append to (default: each run's own table)")
    p.add_argument("--json-dir", default=None, metavar="DIR",
                   help="clip_benchmark-style JSON files (default: clip_benchmark/ beside the table)")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"],
                   help="auto: cuda when available")
    p.add_argument("--batch-size", type=int, default=256)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import torch
    from tqdm import tqdm

    from clipscale.config import ConfigError
    from clipscale.evaluation.rescore import score_checkpoint, targets
    from clipscale.evaluation.suite_config import check_unique_names, parse_suite_arg
    from clipscale.evaluation.suite_scoring import SuiteScorer
    from clipscale.trained import CheckpointError

    suites = [s for arg in args.suite for s in parse_suite_arg(arg)]
    try:
        check_unique_names(suites)
    except ValueError as e:
        raise ConfigError(f"--suite: {e}") from None
    device = ("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device
    if device == "cuda" and not torch.cuda.is_available():
        raise ConfigError("--device cuda: no CUDA device on this machine")
    found = targets(args.checkpoint)
    scorer = SuiteScorer(suites)  # every suite read and checked before any model loads
    lines = []
    try:
        for target in tqdm(found, desc="checkpoints", disable=len(found) < 2, file=sys.stderr):
            row, written = score_checkpoint(target, scorer, args.results, args.json_dir, device,
                                            args.batch_size)
            heads = [k for k in row if "/" in k and k.endswith("_mean") and
                     k.split("/", 1)[0] in {s.name for s in suites} and
                     k.split("/", 1)[1].split("_mean")[0] in ("top1", "i2t_r1", "t2i_r1")]
            lines.append(f"{row['run_id']} samples_seen {row['samples_seen']} compute {row['compute']:.3g}: "
                         + " ".join(f"{k} {row[k]:.4f}" for k in sorted(heads)))
            lines.append(f"  {len(written)} clip_benchmark JSON files in {written[0].rsplit('/', 1)[0]}")
    except CheckpointError as e:
        raise ConfigError(str(e)) from None
    table = args.results or "each run's results table"
    print(f"[clipscale] eval: {len(found)} checkpoint(s) on {len(suites)} suite(s); rows (status rescored) in {table}")
    print("\n".join(lines))
    return 0
