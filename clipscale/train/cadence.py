"""When a run logs, evaluates, checkpoints and changes stage, decided from samples seen.

Decisions are made between two sample counts, the one before a step and the one after it
(big_vision's ``u.itstime``, torchtitan's ``should_validate``): a multiple of ``every`` passed
during the step triggers the action, so the cadence does not depend on the batch size dividing
``every``. The last step always logs, evaluates (when there is an evaluator) and checkpoints.
"""
from __future__ import annotations

from dataclasses import dataclass
from itertools import accumulate

from clipscale.config import RunConfig


def crossed(before: int, after: int, every: int) -> bool:
    """True when a multiple of ``every`` lies in ``(before, after]``."""
    return after // every > before // every


@dataclass(frozen=True)
class Decision:
    """What to do after one step."""
    log: bool
    eval: bool
    checkpoint: bool
    last: bool           # the run's final step
    stage_done: bool     # the step reached the end of its stage

    @property
    def report(self) -> bool:
        """Evaluate or checkpoint: every rank reports to Ray (a collective)."""
        return self.eval or self.checkpoint


@dataclass(frozen=True)
class Cadence:
    total_samples: int
    stage_ends: tuple[int, ...]       # cumulative samples seen at the end of each stage
    log_every_steps: int
    eval_every_samples: int | None    # None: the run has no evaluator
    checkpoint_every_samples: int
    fork_points: tuple[int, ...] = ()  # a wsd trunk also checkpoints where its forks start (sweep/fork_launch.py)

    @classmethod
    def from_config(cls, run: RunConfig, evaluate: bool | None = None) -> Cadence:
        """``evaluate`` defaults to: the run names eval sets or suites."""
        evaluate = bool(run.eval.eval_dir or run.eval.suites) if evaluate is None else evaluate
        return cls(total_samples=run.train.samples_seen,
                   stage_ends=tuple(accumulate(run.stage_samples())),
                   log_every_steps=run.logging.log_every_steps,
                   eval_every_samples=run.eval.every_samples if evaluate else None,
                   checkpoint_every_samples=run.train.checkpoint_every_samples,
                   fork_points=tuple(run.train.fork_points))

    def is_last(self, samples_seen: int) -> bool:
        return samples_seen >= self.total_samples

    def stage_done(self, stage: int, samples_seen: int) -> bool:
        return samples_seen >= self.stage_ends[stage]

    def should_log(self, step: int, samples_seen: int) -> bool:
        return step % self.log_every_steps == 0 or self.is_last(samples_seen)

    def should_eval(self, before: int, after: int) -> bool:
        if self.eval_every_samples is None:
            return False
        return self.is_last(after) or crossed(before, after, self.eval_every_samples)

    def should_checkpoint(self, before: int, after: int) -> bool:
        return (self.is_last(after) or crossed(before, after, self.checkpoint_every_samples)
                or any(before < p <= after for p in self.fork_points))

    def decide(self, stage: int, step: int, before: int, after: int) -> Decision:
        """Everything due after the step ``step`` of stage ``stage`` took samples seen from
        ``before`` to ``after``."""
        return Decision(log=self.should_log(step, after), eval=self.should_eval(before, after),
                        checkpoint=self.should_checkpoint(before, after), last=self.is_last(after),
                        stage_done=self.stage_done(stage, after))
