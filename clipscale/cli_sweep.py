"""``clipscale sweep SWEEP.yaml [--dry-run] [--resume]``: a grid of runs on Ray Tune."""
from __future__ import annotations

import argparse


def register(sub) -> None:
    p = sub.add_parser("sweep", help="expand a sweep YAML into trials and run them on Ray Tune",
                       description="Each trial is one Ray Train run; every trial's rows go to one "
                                   "results table and one W&B group. Base-run fields can be set "
                                   "from the command line: --data.train_shards DIR.")
    p.add_argument("config", help="sweep YAML (see sweeps/)")
    p.add_argument("--dry-run", action="store_true",
                   help="print the trial table (params, tokens, FLOPs, compute, estimated time); start nothing")
    p.add_argument("--resume", action="store_true",
                   help="continue an interrupted sweep: finished trials are skipped, interrupted ones resume")
    p.add_argument("--flops-per-s", type=float, default=None,
                   help="dry run: FLOP/s per device to assume (default: measured with a matmul here)")
    p.add_argument("--utilisation", type=float, default=0.3,
                   help="dry run: assumed share of that FLOP/s a training step reaches (default 0.3)")
    p.add_argument("--startup-s", type=float, default=75.0,
                   help="dry run: seconds per trial outside the training loop (default 75, measured on a 2-core CPU node)")
    p.add_argument("--max-concurrent-trials", type=int, default=None,
                   help="cap on trials at once (default: the sweep file's, else what the cluster's resources allow)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="FIELD=VALUE",
                   help="override a field of the base run (repeatable)")
    p.set_defaults(func=run, accepts_overrides=True)


def run(args: argparse.Namespace) -> int:
    from clipscale.sweep.expand import load_trials

    sweep, root, trials = load_trials(args.config, args.overrides)
    cap = args.max_concurrent_trials or sweep.max_concurrent_trials
    if args.dry_run:
        from clipscale.sweep.dry_run import dry_run

        text, _ = dry_run(sweep.name, trials, flops_per_s=args.flops_per_s,
                          utilisation=args.utilisation, startup_s=args.startup_s, cap=cap)
        print(text)
        return 0
    from clipscale.sweep.tune import launch

    summary = launch(sweep.name, root, trials, resume=args.resume, cap=cap)
    print(f"clipscale sweep {sweep.name}: {len(summary['ran'])} trials run, "
          f"{len(summary['skipped_finished'])} already finished; results table {summary['results']}; "
          f"sweep folder {summary['sweep_dir']}")
    for trial, err in summary["errors"].items():
        print(f"  trial {trial} failed: {err}")
    return 1 if summary["errors"] else 0
