"""Sweep -> trials: the grid (or listed points) as trial ids and per-trial run configs.

A trial id is ``<sweep>-<index>-<hash of its parameters and the base run>``: stable across
re-runs of the same file, so ``--resume`` finds each trial's run folder and rows, and a trial
whose parameters or base were edited gets a new id instead of reusing another trial's results.
"""
from __future__ import annotations

import hashlib
import itertools
import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from clipscale import storage
from clipscale.config import RunConfig, build_run_config, resolve_paths
from clipscale.config_core import merge, nested
from clipscale.errors import ConfigError
from clipscale.sweep.spec import IMAGE_TOKENS, SweepConfig, field_path


@dataclass(frozen=True)
class Trial:
    id: str
    params: dict[str, Any]   # axis -> value, as written in the sweep file


def expand(sweep: SweepConfig, base: dict | None = None) -> list[Trial]:
    """Every trial of the sweep, in file order (the last axis varies fastest). The id's hash
    covers the trial's parameters and the base run, so editing either makes new trials."""
    if sweep.mode == "grid":
        names = list(sweep.axes)
        points = [dict(zip(names, combo)) for combo in itertools.product(*sweep.axes.values())]
    else:
        points = [dict(p) for p in sweep.points or []]
    trials = []
    for i, params in enumerate(points):
        digest = hashlib.sha1(json.dumps([params, base], sort_keys=True, default=str).encode()).hexdigest()[:6]
        trials.append(Trial(f"{sweep.name}-{i:03d}-{digest}", params))
    return trials


def image_size_for_tokens(tokens: Any, patch: int) -> int:
    """Resize reduction: the square image whose patch grid has ``tokens`` patches."""
    side = math.isqrt(tokens) if isinstance(tokens, int) and tokens > 0 else -1
    if side < 1 or side * side != tokens:
        raise ConfigError(f"axes.{IMAGE_TOKENS}: {tokens!r} is not a square number of patches "
                          "(resize keeps a square grid: 4, 9, 16, 36, 49, 64, ...)")
    return side * patch


def sweep_dir(sweep: SweepConfig, base: dict, base_folder: Path) -> str:
    """The sweep's folder: ``output_dir/<sweep>``, an absolute path or a URI."""
    out = str(base.get("output_dir", "runs"))
    if storage.is_uri(out):
        return storage.join(out, sweep.name)
    return str((Path(out) if Path(out).is_absolute() else base_folder / out).resolve() / sweep.name)


def sweep_tokenizer_path(root: str) -> str:
    """Where a sweep keeps the tokenizer it trains once for all its trials."""
    return storage.join(root, "tokenizer.model")


def trial_config(sweep: SweepConfig, trial: Trial, base: dict, base_folder: Path,
                 source: str = "<sweep>") -> RunConfig:
    """The trial's validated run config: base + axes, named and placed under the sweep folder."""
    from clipscale.models.registry import get_spec

    data = base
    for axis, value in trial.params.items():
        if axis != IMAGE_TOKENS:
            data = merge(data, nested(field_path(axis), value))
    if IMAGE_TOKENS in trial.params:
        try:
            patch = get_spec(data.get("model", {}).get("name", "tiny")).image.patch_size
        except KeyError as e:
            raise ConfigError(f"{source}: trial {trial.id}: model.name: {e.args[0]}") from None
        size = image_size_for_tokens(trial.params[IMAGE_TOKENS], patch)
        data = merge(data, nested("stages.0.image_size", size))
    root = sweep_dir(sweep, base, base_folder)
    logging = {**data.get("logging", {}), "group": sweep.name}
    data = {**data, "name": trial.id, "sweep": sweep.name, "output_dir": root,
            "results_dir": data.get("results_dir") or storage.join(root, "results"), "logging": logging}
    if not data.get("tokenizer", {}).get("path"):
        # One tokenizer for the whole sweep (trained by the launcher): token counts mean the
        # same thing in every trial.
        data["tokenizer"] = {**data.get("tokenizer", {}), "path": sweep_tokenizer_path(root)}
    try:
        cfg = build_run_config(data, source)
    except ConfigError as e:
        raise ConfigError(f"{e}\n  in trial {trial.id} with {describe_axes(trial, str(e))}") from None
    return resolve_paths(cfg, base_folder)


def describe_axes(trial: Trial, message: str) -> str:
    """Name the axes an error is about (those whose field appears in it), else all of them."""
    def mentioned(axis: str) -> bool:
        path = field_path(axis)
        bracketed = re.sub(r"\.(\d+)", r"[\1]", path)
        leaf = path.split(".")[-1]
        return path in message or bracketed in message or (axis == IMAGE_TOKENS and "image_size" in message) \
            or re.search(rf"\b{re.escape(leaf)}\b", message) is not None
    named = [a for a in trial.params if mentioned(a)] or list(trial.params)
    return ", ".join(f"axis {a}={trial.params[a]!r} ({field_path(a)})" for a in named)


def expand_configs(sweep: SweepConfig, base: dict, base_folder: Path,
                   source: str = "<sweep>") -> list[tuple[Trial, RunConfig]]:
    """Every trial with its validated run config; the first invalid trial raises ConfigError."""
    return [(t, trial_config(sweep, t, base, base_folder, source)) for t in expand(sweep, base)]


def load_trials(path, overrides: list[str] | None = None):
    """A sweep file -> (sweep, its folder of outputs, [(trial, run config)]), all validated."""
    from clipscale.sweep.spec import base_config, load_sweep

    sweep, folder = load_sweep(path)
    base, base_folder = base_config(sweep, folder, overrides)
    trials = expand_configs(sweep, base, base_folder, str(path))
    return sweep, sweep_dir(sweep, base, base_folder), trials
