"""``Sweep``: a loaded sweep, its trials, and the settings that belong to the sweep as a whole.

Some run-config fields describe the sweep, not one trial: where the results table lives, whether
it runs on GPUs, how often Tune retries a trial whose driver died, and the tokenizer the sweep
trains once for all its trials. A sweep whose axes (or base) make these differ between trials is
refused when it is loaded, naming the field and two trials that disagree. What can differ per
trial (``train.num_workers``, ``cpus_per_worker``, ``data.read_parallelism``) is read per trial:
each trial's resources, and the concurrency that fits the largest of them.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from clipscale.config import RunConfig
from clipscale.errors import ConfigError
from clipscale.ray_setup import DECODE_TASK_CPUS
from clipscale.sweep.expand import Trial, sweep_tokenizer_path
from clipscale.sweep.spec import SweepConfig

# Sweep-wide fields: (name, how to read it from a trial's run config).
SWEEP_WIDE: dict[str, Callable[[RunConfig], Any]] = {
    "results_dir": lambda c: c.table_dir,
    "train.use_gpu": lambda c: c.train.use_gpu,
    "train.max_failures": lambda c: c.train.max_failures,
    "train.preemption_grace_s": lambda c: c.train.preemption_grace_s,
    "train.trial_driver_resource": lambda c: c.train.trial_driver_resource,
}
# The fields every trial of a packed sweep shares: its trials run in one worker group's process.
PACK_WIDE: dict[str, Callable[[RunConfig], Any]] = {
    "train.cpus_per_worker": lambda c: c.train.cpus_per_worker,
    "train.placement_strategy": lambda c: c.train.placement_strategy,
}
# The tokenizer the sweep trains (when the base run names none) is read from these fields.
SWEEP_TOKENIZER: dict[str, Callable[[RunConfig], Any]] = {
    "data.train_shards": lambda c: c.data.train_shards,
    "tokenizer.train_samples": lambda c: c.tokenizer.train_samples,
    "tokenizer.vocab_size": lambda c: c.tokenizer.vocab_size,
}


def trial_resources(cfg: RunConfig, use_gpu: bool) -> dict[str, float]:
    """What one trial holds while it runs: its train workers and its decoding tasks."""
    need = {"CPU": cfg.train.num_workers * cfg.train.cpus_per_worker
            + cfg.data.read_parallelism * DECODE_TASK_CPUS}
    if use_gpu:
        need["GPU"] = float(cfg.train.num_workers)
    return need


def concurrency(available: dict[str, float], need: dict[str, float] | list[dict[str, float]],
                n_trials: int, cap: int | None = None) -> int:
    """Trials that fit at once, at least 1, at most the trials (and ``cap``). ``need`` is one
    trial's resources, or each trial's: then ``k`` slots are allowed only if the ``k`` largest
    needs of every resource fit together, so any ``k`` trials Tune runs side by side fit."""
    needs = need if isinstance(need, list) else [need] * n_trials
    largest = {res: sorted((n.get(res, 0.0) for n in needs), reverse=True) for n in needs for res in n}
    fits = 0
    while fits < len(needs) and all(sum(top[:fits + 1]) <= available.get(res, 0.0) + 1e-9
                                    for res, top in largest.items()):
        fits += 1
    return max(1, min(fits, n_trials, cap or n_trials))


def _agreed(trials: list[tuple[Trial, RunConfig]], fields: dict[str, Callable[[RunConfig], Any]],
            source: str, why: str) -> dict[str, Any]:
    values = {}
    for field, read in fields.items():
        (first, cfg0), *rest = trials
        for trial, cfg in rest:
            if read(cfg) != read(cfg0):
                raise ConfigError(f"{source}: {field} is sweep-wide ({why}) but differs between trials: "
                                  f"{first.id} has {read(cfg0)!r}, {trial.id} has {read(cfg)!r}")
        values[field] = read(cfg0)
    return values


@dataclass(frozen=True)
class Sweep:
    """A validated sweep: the file, its folder of outputs, every trial with its run config."""

    spec: SweepConfig
    root: str                                   # the sweep's folder: a path or a URI
    trials: list[tuple[Trial, RunConfig]]
    settings: dict[str, Any]                    # the SWEEP_WIDE fields, equal in every trial
    source: str = "<sweep>"

    @classmethod
    def of(cls, spec: SweepConfig, root: str, trials: list[tuple[Trial, RunConfig]],
           source: str = "<sweep>") -> "Sweep":
        if not trials:
            raise ConfigError(f"{source}: the sweep has no trial")
        settings = _agreed(trials, SWEEP_WIDE, source, "one results table, one kind of device, "
                                                       "one retry and preemption policy per sweep")
        if any(cfg.tokenizer.path == sweep_tokenizer_path(root) for _, cfg in trials):
            _agreed(trials, {"tokenizer.path": lambda c: c.tokenizer.path, **SWEEP_TOKENIZER}, source,
                    "the sweep trains one tokenizer for all its trials")
        if spec.pack_trials:
            many = [t.id for t, c in trials if c.train.num_workers != 1]
            if many:
                raise ConfigError(f"{source}: pack_trials runs one-worker trials back to back, but "
                                  f"{many[0]} has train.num_workers > 1 (set pack_trials: false)")
            _agreed(trials, PACK_WIDE, source, "a pack's trials share one worker group")
        return cls(spec, root, trials, settings, source)

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def configs(self) -> list[RunConfig]:
        return [cfg for _, cfg in self.trials]

    @property
    def table_dir(self) -> str:
        return self.settings["results_dir"]

    @property
    def max_failures(self) -> int:
        return self.settings["train.max_failures"]

    @property
    def preemption_grace_s(self) -> float:
        return self.settings["train.preemption_grace_s"]

    @property
    def trial_driver_resource(self) -> str | None:
        return self.settings["train.trial_driver_resource"]

    def use_gpu(self, gpus_available: float | None = None) -> bool:
        """``train.use_gpu``; ``auto`` means GPUs are there (``gpus_available``, or this machine's)."""
        setting = self.settings["train.use_gpu"]
        if setting != "auto":
            return bool(setting)
        if gpus_available is not None:
            return gpus_available > 0
        import torch
        return torch.cuda.is_available()

    @property
    def tokenizer_to_train(self) -> RunConfig | None:
        """A trial config naming the sweep's own tokenizer (all agree on it), or None when the base
        run names its own tokenizer."""
        return next((cfg for cfg in self.configs if cfg.tokenizer.path == sweep_tokenizer_path(self.root)), None)

    def resources(self, use_gpu: bool, trials: list[tuple[Trial, RunConfig]] | None = None) -> list[dict]:
        return [trial_resources(cfg, use_gpu) for _, cfg in (self.trials if trials is None else trials)]

    def concurrency(self, available: dict[str, float], use_gpu: bool, cap: int | None = None,
                    trials: list[tuple[Trial, RunConfig]] | None = None) -> int:
        """Trials of ``trials`` (default: all) that fit at once on ``available``."""
        trials = self.trials if trials is None else trials
        return concurrency(available, self.resources(use_gpu, trials), len(trials),
                           cap or self.spec.max_concurrent_trials)

    def max_workers(self) -> int:
        return max(cfg.train.num_workers for cfg in self.configs)


def load(path, overrides: list[str] | None = None) -> Sweep:
    """A sweep file -> its validated ``Sweep`` (every trial expanded and validated)."""
    from clipscale.sweep.expand import load_trials

    spec, root, trials = load_trials(path, overrides)
    return Sweep.of(spec, root, trials, str(path))

