"""The trial queue of a packed sweep (``pack_trials``): lanes (train/lane.py) take their next
trial from it, so lanes finish together whatever the trials' lengths.

Order: the costliest trial first (``lane_order``): longest-processing-time-first, the greedy
order that keeps the lanes' finishing times close. A lane that restarts (a lost worker) is
handed the trial it had taken and not finished, which then resumes from its checkpoint.
"""
from __future__ import annotations

import uuid

import ray

QUEUE_NAMESPACE = "clipscale"


def lane_order(costs: dict[str, float]) -> list[str]:
    """Trial ids, costliest first (ties by id, so the order is reproducible)."""
    return sorted(costs, key=lambda t: (-costs[t], t))


@ray.remote(num_cpus=0)
class TrialQueue:
    def __init__(self, trials: list[str]):
        self.pending = list(trials)
        self.taken: dict[int, str] = {}       # lane -> the trial it is training
        self.outcome: dict[str, str] = {}     # trial -> finished | failed
        self.lanes: dict[str, int] = {}       # trial -> the lane that trained it
        self.ended: dict[int, float] = {}     # lane -> when its last finished trial ended

    def next(self, lane: int) -> str | None:
        if lane in self.taken:                # a restarted lane continues its trial
            return self.taken[lane]
        if not self.pending:
            return None
        trial = self.pending.pop(0)
        self.taken[lane], self.lanes[trial] = trial, lane
        return trial

    def done(self, lane: int, trial: str, status: str, ended: float) -> None:
        if self.taken.get(lane) == trial:
            del self.taken[lane]
        self.outcome[trial] = status
        self.ended[lane] = ended

    def last_end(self, lane: int) -> float | None:
        """When the lane's last finished trial ended (a restarted lane's next record starts there)."""
        return self.ended.get(lane)

    def state(self) -> dict:
        return {"pending": list(self.pending), "taken": dict(self.taken), "outcome": dict(self.outcome),
                "lanes": dict(self.lanes)}


def create_queue(sweep: str, trials: list[str]) -> tuple[object, str]:
    """The sweep driver's queue and its name (it lives as long as the driver; a relaunched
    sweep, or the second launch of a forked sweep, makes a new one from the trials left)."""
    name = f"trials-{sweep}-{uuid.uuid4().hex[:8]}"
    return TrialQueue.options(name=name, namespace=QUEUE_NAMESPACE).remote(trials), name


def queue_actor(name: str):
    return ray.get_actor(name, namespace=QUEUE_NAMESPACE)
