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
    p.add_argument("--utilisation", type=float, default=None,
                   help="dry run: assumed share of that FLOP/s a training step reaches (default 0.3; "
                        "with --cluster, the MFU)")
    p.add_argument("--startup-s", type=float, default=75.0,
                   help="dry run: seconds per trial outside the training loop (default 75, measured on a 2-core CPU node)")
    p.add_argument("--max-concurrent-trials", type=int, default=None,
                   help="cap on trials at once (default: the sweep file's, else what the cluster's resources allow)")
    cost = p.add_argument_group(
        "cost (with --dry-run)",
        "GPU-hours, cost and wall-clock of the sweep on a cluster's GPU node type: GPU-hours = compute / "
        "(GPU bf16 dense peak x MFU) / 3600, cost = GPU-hours x price per GPU-hour; training only")
    cost.add_argument("--cluster", metavar="FILE",
                      help="Ray cluster launcher YAML or KubeRay RayCluster/RayJob manifest (cluster/aws.yaml)")
    cost.add_argument("--mfu", type=float, default=None,
                      help="assumed model FLOPs utilisation, in (0, 1] (default 0.35)")
    cost.add_argument("--gpu-hour-price", type=float, default=None, metavar="USD",
                      help="price per GPU-hour (default: the assumed on-demand price of the node type)")
    cost.add_argument("--gpu-peak-flops", type=float, default=None, metavar="FLOPS",
                      help="dense bf16 peak FLOP/s per GPU (default: the datasheet's for the node type's GPU)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="FIELD=VALUE",
                   help="override a field of the base run (repeatable)")
    p.set_defaults(func=run, accepts_overrides=True)


def run(args: argparse.Namespace) -> int:
    from clipscale.config import ConfigError
    from clipscale.sweep.expand import load_trials

    given = [flag for flag, value in (("--cluster", args.cluster), ("--mfu", args.mfu),
                                      ("--gpu-hour-price", args.gpu_hour_price),
                                      ("--gpu-peak-flops", args.gpu_peak_flops)) if value is not None]
    costing = bool(args.cluster) or (args.gpu_peak_flops is not None and args.gpu_hour_price is not None)
    if given and not args.dry_run:
        raise ConfigError(f"{', '.join(given)}: only with --dry-run (they plan the sweep's cost; they start nothing)")
    if given and not costing:
        raise ConfigError(f"{', '.join(given)}: needs --cluster FILE (or both --gpu-peak-flops and --gpu-hour-price)")
    if costing:   # a bad cluster file or flag fails before the trials are expanded
        from clipscale.sweep import cost
        from clipscale.sweep.cluster_file import read_cluster

        mfu = cost.check_mfu(args.mfu if args.mfu is not None else cost.DEFAULT_MFU)
        cluster = read_cluster(args.cluster) if args.cluster else None
        gpu = cost.gpu_assumption(cluster.node() if cluster else None, args.gpu_peak_flops, args.gpu_hour_price)
    sweep, root, trials = load_trials(args.config, args.overrides)
    cap = args.max_concurrent_trials or sweep.max_concurrent_trials
    if args.dry_run:
        from clipscale.sweep.dry_run import dry_run

        given_util = args.utilisation is not None
        kwargs = {"flops_per_s": args.flops_per_s, "utilisation": args.utilisation if given_util else 0.3}
        caps = [n.capacity for n in cluster.gpu_nodes] if costing and cluster else [None]
        if None not in caps and cluster.cpus is not None:
            # The trial table describes the cluster too: its capacity, GPU peak and MFU.
            on_gpu, given_flops = trials[0][1].train.use_gpu is not False, args.flops_per_s is not None
            kwargs = {"flops_per_s": args.flops_per_s if given_flops or not on_gpu else gpu.peak_flops,
                      "utilisation": args.utilisation if given_util else mfu if on_gpu else 0.3,
                      "flops_source": "given" if given_flops else gpu.peak_source,
                      "resources": {"CPU": float(cluster.cpus), "GPU": float(sum(caps))}}
        text, figures = dry_run(sweep.name, trials, startup_s=args.startup_s, cap=cap, **kwargs)
        print(text)
        if costing:
            rows = [(e.trial.id, e.compute, cfg.train.num_workers) for e, (_, cfg) in zip(figures["trials"], trials)]
            plan = cost.plan_costs(rows, gpu, mfu, cap)
            matches = [(t, m) for t, (_, cfg) in zip(plan["trials"], trials) if (m := cost.clipa_match(cfg))]
            print()
            print(cost.format_costs(plan, gpu, mfu, cluster, matches))
        return 0
    from clipscale.sweep.tune import launch

    summary = launch(sweep.name, root, trials, resume=args.resume, cap=cap)
    print(f"clipscale sweep {sweep.name}: {len(summary['ran'])} trials run, "
          f"{len(summary['skipped_finished'])} already finished; results table {summary['results']}; "
          f"sweep folder {summary['sweep_dir']}")
    for trial, err in summary["errors"].items():
        print(f"  trial {trial} failed: {err}")
    return 1 if summary["errors"] else 0
