"""Preemption: on SIGTERM a run checkpoints where it is and exits, within a grace period.

Spot and preemptible machines (and Kubernetes pods) are stopped with SIGTERM, then killed a grace
period later (``train.preemption_grace_s``, default 30 s; set it below the platform's). The
signal reaches the driver (``clipscale train``, or the ``clipscale sweep`` driver for all its
trials). The driver writes a stop notice (``preempt.json``) into each of its run folders on the
run's storage, so it reaches the workers on every node. Each rank watches for the notice from a
small thread (every ``POLL_S``); after each step the ranks agree (an all-reduce of one flag, so
all stop at the same step), save a checkpoint unless that step just saved one, and return. The
run then ends without a ``finished`` row and ``--resume`` continues it from that checkpoint on
the same curve. If the workers have not finished when the grace period runs out, the driver
exits anyway and the last periodic checkpoint is the resume point. See docs/reliability.md.
"""
from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time

from clipscale import storage

NOTICE = "preempt.json"
POLL_S = 1.0
EXIT_PREEMPTED = 143  # 128 + SIGTERM: what a shell reports for a process stopped by SIGTERM


def notice_path(run_dir: str) -> str:
    return storage.join(run_dir, NOTICE)


def request_stop(run_dirs: list[str], reason: str) -> None:
    """Ask the runs' workers to checkpoint and stop (written where every node reads)."""
    for run_dir in run_dirs:  # also runs not started yet: a sweep must not start them now
        storage.write_text(notice_path(run_dir), json.dumps({"time": time.time(), "reason": reason}))


def stop_requested(run_dir: str) -> bool:
    return storage.exists(notice_path(run_dir))


def clear_notice(run_dir: str) -> None:
    """A resumed run starts without the notice that stopped it."""
    loc = notice_path(run_dir)
    if storage.exists(loc):
        fs, path = storage.resolve(loc)
        fs.delete_file(path)


class StopWatch:
    """One rank's view of the stop notice, polled in the background (never per step)."""

    def __init__(self, run_dir: str, poll_s: float = POLL_S):
        self.run_dir = run_dir
        self.seen = threading.Event()
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._poll, args=(poll_s,), daemon=True,
                                        name="clipscale-preemption-watch")
        self._thread.start()

    def _poll(self, poll_s: float) -> None:
        while not self._done.wait(poll_s):
            try:
                if stop_requested(self.run_dir):
                    self.seen.set()
                    return
            except OSError:  # storage briefly unreachable: look again next time
                continue

    def agreed(self) -> bool:
        """True on every rank once any rank has seen the notice (collective: call on all ranks)."""
        import torch
        import torch.distributed as dist

        flag = self.seen.is_set()
        if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
            t = torch.tensor([1 if flag else 0], dtype=torch.int32)
            dist.all_reduce(t, op=dist.ReduceOp.MAX)
            flag = bool(t.item())
        return flag

    def close(self) -> None:
        self._done.set()


def install_driver_handler(run_dirs: list[str], grace_s: float) -> None:
    """On SIGTERM: write the stop notice for ``run_dirs``, then give the workers ``grace_s``
    seconds before the process ends with the default SIGTERM action. Main thread only."""

    def on_sigterm(signum, frame):
        print(f"[clipscale] SIGTERM: asking {len(run_dirs)} run(s) to checkpoint and stop "
              f"(grace period {grace_s:g} s)", flush=True)
        try:
            request_stop(run_dirs, "SIGTERM")
        except OSError as e:
            print(f"[clipscale] could not write the stop notice ({e}); the last checkpoint is the "
                  "resume point", flush=True)

        def out_of_time():
            print(f"[clipscale] grace period of {grace_s:g} s is over; exiting", flush=True)
            sys.stdout.flush()
            os.kill(os.getpid(), signal.SIGTERM)  # the default action now (set below): exit

        timer = threading.Timer(grace_s, out_of_time)
        timer.daemon = True
        timer.start()
        signal.signal(signal.SIGTERM, signal.SIG_DFL)  # a second SIGTERM ends it at once

    signal.signal(signal.SIGTERM, on_sigterm)


def exit_if_stopped(run_dir: str, how_to_resume: str) -> None:
    """After the fit: a run stopped by the notice says so and exits with ``EXIT_PREEMPTED``."""
    if stop_requested(run_dir):
        print(f"[clipscale] {run_dir} stopped for preemption after a checkpoint; continue it "
              f"with: {how_to_resume}", flush=True)
        raise SystemExit(EXIT_PREEMPTED)


def driver_resources(driver_resource: str | None) -> dict:
    """Ray resources of a sweep's trial driver (the Tune trainable: a Train controller that
    holds no compute). By default it is pinned to the head node, which lives as long as the
    cluster: a driver on a worker node dies with that node and the trial has to be restarted.
    ``driver_resource`` names a custom resource the user gave the nodes that should host
    drivers (``ray start --resources='{"trial_driver": 1000}'``); ``"any"`` places it anywhere."""
    res = {"CPU": 0.01}
    if driver_resource == "any":
        return res
    res[driver_resource or "node:__internal_head__"] = 0.001
    return res
