"""Where a run's wall time goes: phase marks and timed sections, recorded by rank 0 and the
sweep's trainable, and the split of a trial's wall time into those phases (docs/throughput.md).

A worker attempt records its marks (``worker_start``, ``engine_built``, ``loop_start``,
``first_batch``, ``first_step``, ``last_step``, ``loop_end``; Unix seconds) and the seconds it
spent evaluating and checkpointing inside the loop, in ``<run>/timing/<start ns>.json`` (one
file per attempt: a restarted worker group writes its own). The sweep's trainable adds the
driver side (``start``, ``prepared``, ``fit_start``, ``fit_end``) and the attempts to
``<sweep>/timings/<trial>.json``; ``split`` turns such a record into seconds per phase.
"""
from __future__ import annotations

import json
import time
from contextlib import contextmanager

from clipscale import storage

WORKER_MARKS = ("worker_start", "prepared", "engine_built", "loop_start", "first_batch", "first_step",
                "last_step", "loop_end")
SECTIONS = ("eval", "checkpoint")
# The phases of a trial's wall, in order; ``split`` returns seconds for each (they sum to the wall).
PHASES = ("prepare", "trainer_build", "worker_group_start", "engine_init", "loop_setup",
          "first_batch", "train", "eval", "checkpoint", "teardown")


class PhaseTimes:
    """Marks (first time each is reached, or the latest with ``last=True``) and summed sections."""

    def __init__(self):
        self.marks: dict[str, float] = {}
        self.seconds: dict[str, float] = {s: 0.0 for s in SECTIONS}
        self.samples = 0       # samples this attempt trained (rank 0 counts the global batches)

    def mark(self, name: str, last: bool = False) -> None:
        if last or name not in self.marks:
            self.marks[name] = time.time()

    @contextmanager
    def timed(self, section: str):
        t = time.time()
        try:
            yield
        finally:
            self.seconds[section] = self.seconds.get(section, 0.0) + time.time() - t

    def record(self) -> dict:
        return {"marks": dict(self.marks), "seconds": dict(self.seconds), "samples": self.samples}

    def write(self, run_dir: str) -> str:
        start = self.marks.get("worker_start", time.time())
        path = storage.join(run_dir, "timing", f"{int(start * 1e9):020d}.json")
        storage.write_text(path, json.dumps(self.record()))
        return path


def read_attempts(run_dir: str, since: float = 0.0) -> list[dict]:
    """The run's attempt records whose worker started at or after ``since``, oldest first."""
    files = storage.list_files(storage.join(run_dir, "timing"), "*.json")
    out = [json.loads(storage.read_text(f)) for f in files]
    return [a for a in out if a["marks"].get("worker_start", 0.0) >= since]


def train_seconds(attempt: dict) -> float:
    """Seconds of one attempt spent in training steps: first batch to last step, less the
    evaluation and checkpoint sections inside it."""
    m, s = attempt["marks"], attempt["seconds"]
    if "first_batch" not in m or "last_step" not in m:
        return 0.0
    return max(0.0, m["last_step"] - m["first_batch"] - s.get("eval", 0.0) - s.get("checkpoint", 0.0))


def split(trial: dict) -> dict[str, float]:
    """Seconds per phase (``PHASES``) of one trial record; they sum to its wall
    (``fit_end - start``). With several worker attempts (a restart inside the trial) the worker
    phases are the last attempt's, and everything before it counts as ``worker_group_start``."""
    attempts = trial.get("attempts") or []
    wall = trial["fit_end"] - trial["start"]
    if not attempts:
        return {**{p: 0.0 for p in PHASES}, "prepare": trial.get("prepared", trial["fit_start"]) - trial["start"],
                "trainer_build": trial["fit_start"] - trial.get("prepared", trial["fit_start"]),
                "teardown": trial["fit_end"] - trial["fit_start"]}
    train = sum(train_seconds(a) for a in attempts)
    evals = sum(a["seconds"].get("eval", 0.0) for a in attempts)
    ckpts = sum(a["seconds"].get("checkpoint", 0.0) for a in attempts)
    m = attempts[-1]["marks"]
    prepared = trial.get("prepared", trial["fit_start"])
    # a packed trial (train/lane.py) prepares its run in the worker: worker_start -> prepared
    in_worker = m.get("prepared")
    points = [trial["start"], prepared, trial["fit_start"], m.get("worker_start"),
              in_worker if in_worker is not None else m.get("worker_start"), m.get("engine_built"),
              m.get("loop_start"), m.get("first_batch")]
    # a missing mark (a worker that died early) takes the previous one's time
    for i in range(1, len(points)):
        points[i] = points[i - 1] if points[i] is None else max(points[i], points[i - 1])
    gaps = [b - a for a, b in zip(points, points[1:])]
    gaps[0] += gaps.pop(3)  # the in-worker preparation is the trial's prepare phase
    phases = dict(zip(PHASES[:6], gaps))
    # a restarted attempt's earlier attempts: their training counts as training, the rest as start-up
    earlier = sum(train_seconds(a) + a["seconds"].get("eval", 0.0) + a["seconds"].get("checkpoint", 0.0)
                  for a in attempts[:-1])
    phases["worker_group_start"] -= min(earlier, phases["worker_group_start"])
    phases.update(train=train, eval=evals, checkpoint=ckpts)
    phases["teardown"] = wall - sum(phases.values())
    return phases


def overhead(trials: list[dict]) -> float:
    """Sweep overhead: 1 - (training seconds) / (trial wall), summed over the trials."""
    wall = sum(t["fit_end"] - t["start"] for t in trials)
    train = sum(split(t)["train"] for t in trials)
    return 1.0 - train / wall if wall > 0 else float("nan")


def train_rate(trial: dict) -> float:
    """Samples per second of one trial while it trained (its attempts together)."""
    attempts = trial.get("attempts") or []
    seconds = sum(train_seconds(a) for a in attempts)
    return sum(a.get("samples", 0) for a in attempts) / seconds if seconds > 0 else float("nan")


def read_trials(timings_dir) -> list[dict]:
    """A sweep's trial timing records (``<sweep>/timings/*.json``)."""
    return [json.loads(storage.read_text(f)) for f in storage.list_files(str(timings_dir), "*.json")]


def describe_split(timings_dir) -> str:
    """One line: each phase's share of the trials' summed wall, and the sweep overhead."""
    trials = read_trials(timings_dir)
    if not trials:
        return "no timing records"
    wall = sum(t["fit_end"] - t["start"] for t in trials)
    totals = {p: sum(split(t)[p] for t in trials) for p in PHASES}
    shares = ", ".join(f"{p} {v / wall:.0%}" for p, v in totals.items() if v / wall >= 0.005)
    return f"{shares} of {wall:.0f} trial-seconds (sweep overhead {overhead(trials):.0%})"
