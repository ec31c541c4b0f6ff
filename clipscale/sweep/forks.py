"""Cooldown forks on the samples-seen axis (planning): with a warmup-stable-decay schedule
(train.schedule=wsd), runs that differ only in ``samples_seen`` share the constant-lr trunk, so
one trunk run plus a short cooldown from the trunk at each samples-seen value replaces k
independent runs (Hagele et al. 2024). This module plans the forks and what they cost;
sweep/fork_launch.py runs them (README, "Cooldown forks").

Fork i leaves the trunk at f_i, its cooldown start S_i - round(cooldown_share x S_i) rounded down
to a step boundary (a multiple of the global batch): up to there its lr is the trunk's constant
lr, so its state there is the trunk's. Trunk: from 0 to the latest fork point, max_i f_i (the
longest run itself, whose own cooldown is its fork's). Fork i: its cooldown, S_i - f_i samples.
Independent runs: sum_i S_i.
"""
from __future__ import annotations

from dataclasses import dataclass

SAMPLES_AXES = ("samples_seen", "train.samples_seen")


@dataclass(frozen=True)
class ForkPlan:
    samples: tuple[int, ...]          # the fork points, ascending
    trunk_samples: int
    cooldown_samples: tuple[int, ...]

    @property
    def forked_samples(self) -> int:
        return self.trunk_samples + sum(self.cooldown_samples)

    @property
    def independent_samples(self) -> int:
        return sum(self.samples)

    @property
    def saving(self) -> float:
        """Share of the independent runs' samples (and, at fixed FLOPs per sample, compute) saved."""
        return 1.0 - self.forked_samples / self.independent_samples


    @property
    def fork_points(self) -> tuple[int, ...]:
        """Where each fork leaves the trunk (its first sample of cooldown)."""
        return tuple(s - c for s, c in zip(self.samples, self.cooldown_samples))


def fork_point(samples: int, cooldown_share: float, batch: int = 1) -> int:
    """The step boundary (a multiple of ``batch``) at or before the cooldown start of a wsd run of
    ``samples`` (train/schedule.wsd_lr's ``start``)."""
    start = samples - max(1, round(cooldown_share * samples))
    return start // batch * batch


def plan_forks(samples: list[int], cooldown_share: float, batch: int = 1) -> ForkPlan:
    points = tuple(sorted(set(samples)))
    cooldowns = tuple(s - fork_point(s, cooldown_share, batch) for s in points)
    trunk = max(s - c for s, c in zip(points, cooldowns))
    return ForkPlan(points, trunk, cooldowns)


def fork_groups(trials) -> list[tuple[dict, list]]:
    """Trials ([(trial, cfg)]) on a wsd schedule grouped by every axis but samples seen; only
    groups with several samples-seen values can share a trunk."""
    groups: dict[tuple, list] = {}
    for trial, cfg in trials:
        if cfg.train.schedule != "wsd":
            continue
        other = tuple(sorted((k, repr(v)) for k, v in trial.params.items() if k not in SAMPLES_AXES))
        groups.setdefault(other, []).append((trial, cfg))
    return [(dict(k), v) for k, v in groups.items()
            if len({c.train.samples_seen for _, c in v}) > 1]


def dry_run_lines(trials, estimates) -> list[str]:
    """The dry run's cooldown-fork summary: compute as forks vs as independent runs."""
    by_id = {e.trial.id: e for e in estimates}
    lines, forked_total, independent_total = [], 0.0, 0.0
    for other, members in fork_groups(trials):
        cfg0 = members[0][1]
        plan = plan_forks([c.train.samples_seen for _, c in members], cfg0.train.cooldown_share,
                          cfg0.train.global_batch_size)
        flops = by_id[members[0][0].id].flops_per_sample
        forked, independent = plan.forked_samples * flops, plan.independent_samples * flops
        forked_total += forked
        independent_total += independent
        label = ", ".join(f"{k}={v}" for k, v in other.items()) or "all axes"
        lines.append(f"cooldown forks ({label}): 1 trunk of {plan.trunk_samples:,} samples + "
                     f"{len(plan.samples)} cooldowns {list(plan.cooldown_samples)}: {forked:.3e} FLOPs "
                     f"vs {independent:.3e} for {len(plan.samples)} independent full runs (cosine or wsd) "
                     f"(saves {plan.saving:.0%})")
    if len(lines) > 1:
        lines.append(f"cooldown forks in all: {forked_total:.3e} FLOPs vs {independent_total:.3e} "
                     f"(saves {1 - forked_total / independent_total:.0%})")
    if lines:
        lines.append("(`clipscale sweep` runs these as forks: the longest run of each group is the trunk, "
                     "then each other run restores the trunk's checkpoint at its cooldown start and "
                     "trains only its cooldown)")
    return lines
