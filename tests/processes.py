"""Killing a driver the way its machine dies, for the tests that resume after it."""
from __future__ import annotations

import psutil


def kill_tree(pid: int) -> int:
    """SIGKILL process ``pid`` and every process it started, as one machine failure would.

    Killing the driver's process group is not that: Ray's worker processes (the Train controller,
    the Train workers) each run in a process group of their own, so they outlive a group kill by
    the second or so they take to notice their raylet is gone, and in that time they can finish
    steps and register a checkpoint the test meant to interrupt. So the whole tree is frozen
    first (a frozen process starts nothing new), re-read until no new process appears, then
    killed. Returns how many processes were killed."""
    root = psutil.Process(pid)
    frozen: dict[int, psutil.Process] = {}
    while True:
        try:
            tree = [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            tree = []
        new = [p for p in tree if p.pid not in frozen]
        if not new:
            break
        for p in new:
            try:
                p.suspend()
            except psutil.Error:
                pass
            frozen[p.pid] = p
    for p in frozen.values():
        try:
            p.kill()
        except psutil.Error:
            pass
    return len(frozen)
