"""``clipscale sweep SWEEP.yaml [--dry-run] [--resume]``: a grid of runs on Ray Tune."""
from __future__ import annotations

import argparse

from pydantic import BaseModel, ConfigDict, Field

from clipscale.cli.flags import accept_overrides, add_model_flags, flag_name, model_from_args
from clipscale.sweep.cost import DEFAULT_MFU
from clipscale.sweep.dry_run import DEFAULT_STARTUP_S, DEFAULT_UTILISATION, LANE_STARTUP_S, PACKED_TRIAL_S


class SweepOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    config: str = Field(description="sweep YAML (see sweeps/)")
    dry_run: bool = Field(False, description="print the trial table (params, tokens, FLOPs, compute, "
                                             "estimated time); start nothing")
    resume: bool = Field(False, description="continue an interrupted sweep: finished trials are "
                                            "skipped, interrupted ones resume")
    flops_per_s: float | None = Field(None, gt=0, description="dry run: FLOP/s per device to assume "
                                                              "(unset: measured with a matmul here)")
    utilisation: float | None = Field(None, gt=0, le=1, description="dry run: assumed share of that FLOP/s "
                                      f"a training step reaches (unset: {DEFAULT_UTILISATION}; with --cluster, the MFU)")
    startup_s: float | None = Field(None, ge=0, description="dry run: seconds per trial outside the training "
                                    f"loop (unset: {DEFAULT_STARTUP_S:.0f}, or {PACKED_TRIAL_S:.0f} plus "
                                    f"{LANE_STARTUP_S:.0f} per lane for a packed sweep; measured on a 2-core CPU node)")
    max_concurrent_trials: int | None = Field(None, ge=1, description="cap on trials at once (unset: the "
                                              "sweep file's, else what the cluster's resources allow)")


class CostOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    cluster: str | None = Field(None, description="Ray cluster launcher YAML or KubeRay RayCluster/RayJob "
                                                  "manifest (cluster/aws.yaml)")
    mfu: float | None = Field(None, description=f"assumed model FLOPs utilisation, in (0, 1] (unset: {DEFAULT_MFU})")
    gpu_hour_price: float | None = Field(None, description="price per GPU-hour in USD (unset: the assumed "
                                                           "on-demand price of the node type)")
    gpu_peak_flops: float | None = Field(None, description="dense bf16 peak FLOP/s per GPU (unset: the "
                                                           "datasheet's for the node type's GPU)")


def register(sub) -> None:
    p = sub.add_parser("sweep", help="expand a sweep YAML into trials and run them on Ray Tune",
                       description="Each trial is one Ray Train run; every trial's rows go to one "
                                   "results table and one W&B group. Base-run fields can be set "
                                   "from the command line: --data.train_shards DIR.")
    add_model_flags(p, SweepOptions, positional=("config",))
    cost = p.add_argument_group(
        "cost (with --dry-run)",
        "GPU-hours, cost and wall-clock of the sweep on a cluster's GPU node type: GPU-hours = compute / "
        "(GPU bf16 dense peak x MFU) / 3600, cost = GPU-hours x price per GPU-hour; training only")
    add_model_flags(cost, CostOptions)
    accept_overrides(p, "a field of the base run")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    opts = model_from_args(args, SweepOptions, kind="sweep options")
    costs = model_from_args(args, CostOptions, kind="sweep options")
    return run_sweep(opts, costs, args.overrides)


def run_sweep(opts: SweepOptions, costs: CostOptions, overrides: list[str]) -> int:
    from clipscale.errors import ConfigError
    from clipscale.sweep.sweep import load

    given = [flag_name(f) for f, value in costs if value is not None]
    costing = bool(costs.cluster) or (costs.gpu_peak_flops is not None and costs.gpu_hour_price is not None)
    if given and not opts.dry_run:
        raise ConfigError(f"{', '.join(given)}: only with --dry-run (they plan the sweep's cost; they start nothing)")
    if given and not costing:
        raise ConfigError(f"{', '.join(given)}: needs --cluster FILE (or both --gpu-peak-flops and --gpu-hour-price)")
    if costing:   # a bad cluster file or flag fails before the trials are expanded
        from clipscale.sweep import cost
        from clipscale.sweep.cluster_file import read_cluster

        mfu = cost.check_mfu(costs.mfu if costs.mfu is not None else cost.DEFAULT_MFU)
        cluster = read_cluster(costs.cluster) if costs.cluster else None
        gpu = cost.gpu_assumption(cluster.node() if cluster else None, costs.gpu_peak_flops, costs.gpu_hour_price)
    sweep = load(opts.config, overrides)
    cap = opts.max_concurrent_trials or sweep.spec.max_concurrent_trials
    if opts.dry_run:
        from clipscale.sweep.dry_run import dry_run

        given_util = opts.utilisation is not None
        kwargs = {"flops_per_s": opts.flops_per_s, "utilisation": opts.utilisation if given_util else DEFAULT_UTILISATION}
        caps = [n.capacity for n in cluster.gpu_nodes] if costing and cluster else [None]
        if None not in caps and cluster.cpus is not None:
            # The trial table describes the cluster too: its capacity, GPU peak and MFU.
            on_gpu, given_flops = sweep.settings["train.use_gpu"] is not False, opts.flops_per_s is not None
            kwargs = {"flops_per_s": opts.flops_per_s if given_flops or not on_gpu else gpu.peak_flops,
                      "utilisation": opts.utilisation if given_util else mfu if on_gpu else DEFAULT_UTILISATION,
                      "flops_source": "given" if given_flops else gpu.peak_source,
                      "resources": {"CPU": float(cluster.cpus), "GPU": float(sum(caps))}}
        text, figures = dry_run(sweep, startup_s=opts.startup_s, cap=cap, **kwargs)
        print(text)
        if costing:
            rows = [(e.trial.id, e.compute, cfg.train.num_workers) for e, cfg in zip(figures["trials"], sweep.configs)]
            plan = cost.plan_costs(rows, gpu, mfu, cap)
            matches = [(t, m) for t, cfg in zip(plan["trials"], sweep.configs) if (m := cost.clipa_match(cfg))]
            print()
            print(cost.format_costs(plan, gpu, mfu, cluster, matches))
        return 0
    from clipscale.sweep.fork_launch import launch_sweep

    summary = launch_sweep(sweep, resume=opts.resume, cap=cap)  # cooldown forks in two phases
    print(f"clipscale sweep {sweep.name}: {len(summary['ran'])} trials run, "
          f"{len(summary['skipped_finished'])} already finished; results table {summary['results']}; "
          f"sweep folder {summary['sweep_dir']}")
    for trial, err in summary["errors"].items():
        print(f"  trial {trial} failed: {err}")
    return 1 if summary["errors"] else 0
