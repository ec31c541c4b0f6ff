"""The wsd schedule (train/schedule.py) and the cooldown-fork plan (sweep/forks.py)."""
from __future__ import annotations

import math
from pathlib import Path

import pytest

from clipscale.config import ConfigError, build_run_config
from clipscale.sweep.dry_run import dry_run
from clipscale.sweep.expand import load_trials
from clipscale.sweep.sweep import load
from clipscale.sweep.forks import plan_forks
from clipscale.train.schedule import lr_at, wsd_lr


def test_wsd_warms_up_holds_then_cools_down_to_zero():
    assert wsd_lr(0, 1.0, 100, 1000, 0.2) == pytest.approx(0.01)
    assert wsd_lr(100, 1.0, 100, 1000, 0.2) == wsd_lr(799, 1.0, 100, 1000, 0.2) == 1.0
    assert wsd_lr(900, 1.0, 100, 1000, 0.2, "linear") == pytest.approx(0.5)
    assert wsd_lr(900, 1.0, 100, 1000, 0.2, "1-sqrt") == pytest.approx(1 - math.sqrt(0.5))
    assert wsd_lr(1000, 1.0, 100, 1000, 0.2) == 0.0


def test_wsd_trunk_does_not_depend_on_the_run_length():
    # what makes a fork from a shorter trunk equal to a fresh run: same lr up to its cooldown
    for s in range(0, 8000, 64):
        assert wsd_lr(s, 1e-3, 512, 10000, 0.2) == wsd_lr(s, 1e-3, 512, 40000, 0.2)


def test_lr_at_follows_the_configured_schedule():
    base = {"data": {"train_shards": "x"},
            "train": {"samples_seen": 1000, "warmup_samples": 100, "global_batch_size": 10}}
    cfg = build_run_config({**base, "train": {**base["train"], "schedule": "wsd",
                                              "cooldown_shape": "linear"}})
    assert lr_at(cfg, 500) == cfg.train.lr and lr_at(cfg, 900) == pytest.approx(cfg.train.lr / 2)
    with pytest.raises(ConfigError, match="wsd"):
        build_run_config({**base, "train": {**base["train"], "schedule": "wsd"}, "stages": [{"lr": 1e-3}]})


def test_fork_plan_counts_one_trunk_and_each_cooldown():
    plan = plan_forks([10240, 20480, 40960, 81920], 0.2)
    assert plan.cooldown_samples == (2048, 4096, 8192, 16384)
    assert plan.trunk_samples == 81920 - 16384
    assert plan.forked_samples == 65536 + 30720
    assert plan.independent_samples == 153600
    assert plan.saving == pytest.approx(1 - 96256 / 153600)


def test_dry_run_of_a_wsd_sweep_prints_fork_compute_against_independent_runs():
    path = Path(__file__).resolve().parents[1] / "sweeps" / "wsd_cooldown.yaml"
    sweep = load(path)
    assert len(sweep.trials) == 4
    text, figures = dry_run(sweep, flops_per_s=1e10, resources={"CPU": 4.0, "GPU": 0.0})
    per_sample = figures["trials"][0].flops_per_sample
    line = next(l for l in text.splitlines() if l.startswith("cooldown forks"))
    assert f"{96256 * per_sample:.3e} FLOPs vs {153600 * per_sample:.3e}" in line and "saves 37%" in line
