"""A packed sweep's decoded rows, decoded once per sweep (``data.cache`` with ``pack_trials``).

The trials of a sweep often read the same rows: same shards, tokenizer, image size and language
filter (``lane.rows_key``); the demo's 12 trials read 4 row sets. Decoding them is the largest
per-trial cost a lane has after its start-up (docs/throughput.md), and a cache per lane process
decodes each set once per lane, not once per sweep. ``RowsCache`` is one actor per launch of
the sweep, made by the sweep driver beside the trial queue (so it lives as long as the driver,
whichever lane ends first): the first trial to ask for a row set decodes it inside the actor
(``materialize``: the blocks are the actor's and stay in the object store), a second lane
asking for the same set meanwhile waits for that decode, and every later trial gets the
materialized dataset at once.

Skipped rows (train/counters.py) are counted by the decode, under the run that
decoded; the cache hands those counts to each later trial, which adds them to its own counter,
so every trial's rows report the skips of the rows it trained on.
"""
from __future__ import annotations

import threading
from collections import defaultdict

import ray

from clipscale.train.contract import RunContract

NAMESPACE = "clipscale"


@ray.remote(num_cpus=0, max_restarts=-1, max_concurrency=16)
class RowsCache:
    """Materialized row sets by key. Threaded: lanes ask at once; one lock per key, so two
    lanes wanting different sets decode them side by side and never the same one twice."""

    def __init__(self):
        from clipscale.train.launch import ordered_data_context

        ordered_data_context()  # the same rows in the same order as uncached
        self.rows: dict[str, tuple] = {}
        self.locks: dict[str, threading.Lock] = defaultdict(threading.Lock)
        self.guard = threading.Lock()

    def get(self, key: str, contract: RunContract, stage: int) -> tuple:
        """(materialized dataset, skip counts of its decode, the run that decoded it)."""
        from clipscale.train.counters import skip_counts
        from clipscale.train.launch import stage_dataset

        with self.guard:
            lock = self.locks[key]
        with lock:
            if key not in self.rows:
                rows = stage_dataset(contract, stage).materialize()
                counts = skip_counts(contract.counter_name)
                self.rows[key] = (rows, counts, contract.run.name)
        return self.rows[key]

    def keys(self) -> list[str]:
        return list(self.rows)


def create_rows_cache(queue_name: str):
    """The sweep driver's cache for one launch (keep the handle: an unreferenced actor ends)."""
    return RowsCache.options(name=rows_cache_name(queue_name), namespace=NAMESPACE).remote()


def rows_cache_name(queue_name: str) -> str:
    return f"rows-{queue_name}"


def cached_rows(cache_name: str, key: str, contract: RunContract, stage: int):
    """The trial's rows from the sweep's cache; skips counted by another trial's decode are
    added to this trial's counter."""
    from clipscale.train.counters import add_skips

    cache = ray.get_actor(cache_name, namespace=NAMESPACE)
    rows, counts, decoded_by = ray.get(cache.get.remote(key, contract, stage))
    if decoded_by != contract.run.name and counts:
        add_skips(contract.counter_name, counts)
    return rows
