"""Counts a run's Ray Data read tasks report while they decode: skipped samples by reason
(train/data.py) and, on online-mode shards, offered and kept images per curation epoch
(train/online_stream.py). One actor, ``RunCounters``, holds them for every run on the cluster,
keyed by the run's counter name.

Why one actor for all runs: an actor is a process of its own (Python and Ray imported: measured
~1.2 CPU-s to start and ~125 MB resident as ps counts it); one per run made a 12-trial sweep start
12 such processes, each while its trial was starting (docs/throughput.md).

Lifetime: detached (it outlives the driver that made it, so a sweep relaunched on the same
cluster finds its trials' counts) and restarted by Ray, empty, when its node is lost; a lookup
never fails. It is created
outside any placement group: made from inside a trial, Ray would otherwise put it in that trial's
group, and once the group is gone (its driver or node was lost) the restart can never be placed
and every call waits forever (the chaos sweep hung on exactly that).
"""
from __future__ import annotations

from collections import Counter

import ray

NAMESPACE = "clipscale"
ACTOR_NAME = "run-counters"


@ray.remote(num_cpus=0)
class RunCounters:
    def __init__(self):
        self.skips: dict[str, Counter] = {}
        self.curation: dict[str, dict[tuple[int, str], tuple[dict, dict]]] = {}

    def add_skips(self, run: str, counts: dict) -> None:
        self.skips.setdefault(run, Counter()).update(counts)

    def skip_counts(self, run: str) -> dict:
        return dict(self.skips.get(run, {}))

    def set_curation(self, run: str, epoch: int, shard: str, offered: dict, kept: dict) -> None:
        """Set, not added: a shard decoded again after a restart is not counted twice."""
        self.curation.setdefault(run, {})[(epoch, shard)] = (offered, kept)

    def kept_share(self, run: str, epoch: int) -> dict[str, float]:
        """Kept / offered per language over every shard of ``epoch`` reported so far."""
        offered, kept = Counter(), Counter()
        for (e, _), (o, k) in self.curation.get(run, {}).items():
            if e == epoch:
                offered.update(o)
                kept.update(k)
        return {lang: kept[lang] / n for lang, n in sorted(offered.items()) if n}


def run_counters():
    """The cluster's counters actor: got, or created on first use."""
    return RunCounters.options(name=ACTOR_NAME, namespace=NAMESPACE, get_if_exists=True, lifetime="detached",
                               max_restarts=-1, scheduling_strategy="DEFAULT").remote()


def add_skips(run: str, counts: dict) -> None:
    ray.get(run_counters().add_skips.remote(run, dict(counts)))


def skip_counts(run: str) -> dict:
    return ray.get(run_counters().skip_counts.remote(run))


def set_curation(run: str, epoch: int, shard: str, offered: dict, kept: dict) -> None:
    ray.get(run_counters().set_curation.remote(run, epoch, shard, offered, kept))


def kept_share(run: str, epoch: int) -> dict[str, float]:
    return ray.get(run_counters().kept_share.remote(run, epoch))
