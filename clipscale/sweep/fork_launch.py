"""Run a sweep's cooldown forks (README "Cooldown forks"; the plan is sweep/forks.py).

A sweep whose ``samples_seen`` axis runs over a wsd base has groups of trials that differ only in
samples seen (``forks.fork_groups``). In each group the longest trial is the trunk: it runs in
full, as it would alone, and also keeps a copy of its checkpoint at every other trial's fork
point (``train.fork_points``; train/fork.py). Every other trial of the group is a fork: an
ordinary run (own run folder, W&B run and rows) with ``train.init_from`` set to the trunk's copy
at its fork point, so it trains only its cooldown. Two launches of ``tune.launch``: the trunks
and the trials outside any group first, then the forks of the trunks that finished.

Resume works as for any sweep: both phases skip trials with a ``finished`` row; an interrupted
fork continues from its own checkpoint (Ray Train hands it that one; ``init_from`` is only read
while it has none).
"""
from __future__ import annotations

from dataclasses import dataclass

from clipscale.config import RunConfig
from clipscale.sweep.expand import Trial
from clipscale.sweep.forks import fork_groups, fork_point
from clipscale.sweep.sweep import Sweep
from clipscale.train.fork import fork_dir

Trials = list[tuple[Trial, RunConfig]]


@dataclass(frozen=True)
class ForkLayout:
    first: Trials                 # trunks (with their fork points) and trials outside any group
    forks: Trials                 # forks (with train.init_from), launched after their trunks
    trunk_of: dict[str, str]      # fork trial id -> its trunk's trial id


def with_train(cfg: RunConfig, **fields) -> RunConfig:
    """``cfg`` with train fields replaced, validated again."""
    data = cfg.model_dump(mode="json")
    data["train"].update(fields)
    return RunConfig.model_validate(data)


def fork_layout(trials: Trials) -> ForkLayout:
    """Which trials are trunks, which fork from which trunk where; the rest run as they are.
    A trial whose fork point would be 0 (its cooldown is the whole run) gains nothing from the
    trunk and runs in full."""
    changed: dict[str, tuple[Trial, RunConfig]] = {}
    forks, trunk_of = [], {}
    for _, members in fork_groups(trials):
        trunk, trunk_cfg = max(members, key=lambda m: m[1].train.samples_seen)
        points = []
        for trial, cfg in members:
            t = cfg.train
            f = fork_point(t.samples_seen, t.cooldown_share, t.global_batch_size)
            if trial is trunk or t.samples_seen == trunk_cfg.train.samples_seen or f <= 0:
                continue
            points.append(f)
            forks.append((trial, with_train(cfg, init_from=fork_dir(trunk_cfg.run_dir, f))))
            trunk_of[trial.id] = trunk.id
        if points:
            changed[trunk.id] = (trunk, with_train(trunk_cfg, fork_points=sorted(set(points))))
    forked = set(trunk_of)
    first = [changed.get(t.id, (t, c)) for t, c in trials if t.id not in forked]
    return ForkLayout(first, forks, trunk_of)


def launch_sweep(sweep: Sweep, resume: bool, cap: int | None = None) -> dict:
    """``tune.launch`` for a sweep, in two phases when it has cooldown forks; one summary."""
    from clipscale.sweep.tune import check_state, finished_trials, launch

    layout = fork_layout(sweep.trials)
    if not layout.forks:
        return launch(sweep, resume=resume, cap=cap)
    check_state(sweep.root, sweep.name, [t for t, _ in sweep.trials], resume)  # once, for every trial
    print(f"[clipscale] sweep {sweep.name}: {len(layout.forks)} cooldown forks from "
          f"{len(set(layout.trunk_of.values()))} trunk(s); trunks first", flush=True)
    first = launch(Sweep.of(sweep.spec, sweep.root, layout.first, sweep.source), resume=True, cap=cap,
                   check=False)
    done = finished_trials(sweep.table_dir)
    ready = [(t, c) for t, c in layout.forks if layout.trunk_of[t.id] in done]
    errors = dict(first["errors"])
    for t, _ in layout.forks:
        if layout.trunk_of[t.id] not in done:
            errors[t.id] = f"not started: its trunk {layout.trunk_of[t.id]} did not finish"
    second = (launch(Sweep.of(sweep.spec, sweep.root, ready, sweep.source), resume=True, cap=cap, check=False)
              if ready else {"skipped_finished": [], "ran": [], "errors": {}, "wall_s": 0.0})
    errors.update(second["errors"])
    return {**first, "trials": len(sweep.trials), "errors": errors,
            "skipped_finished": first["skipped_finished"] + second["skipped_finished"],
            "ran": first["ran"] + second["ran"], "forks": layout.trunk_of,
            "wall_s": first.get("wall_s", 0.0) + second.get("wall_s", 0.0)}
