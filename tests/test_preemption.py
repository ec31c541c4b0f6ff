"""Preemption parts without a cluster: the stop notice, a rank's watch, the driver's SIGTERM
handler and its grace period (a real subprocess and a real signal), trial driver placement.
The whole path through Ray Train is test_reliability_train.py's SIGTERM test. Fast."""
from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import time

from clipscale.train import preemption


def test_notice_reaches_a_watch_within_its_poll_interval(tmp_path):
    run = str(tmp_path / "run")
    watch = preemption.StopWatch(run, poll_s=0.05)
    try:
        time.sleep(0.2)
        assert not watch.agreed()
        preemption.request_stop([run], "test")  # also for a run folder not made yet
        deadline = time.time() + 5
        while not watch.agreed() and time.time() < deadline:
            time.sleep(0.02)
        assert watch.agreed() and preemption.stop_requested(run)
    finally:
        watch.close()
    preemption.clear_notice(run)
    assert not preemption.stop_requested(run)
    preemption.clear_notice(run)  # nothing to clear: no error


DRIVER = textwrap.dedent("""
    import sys, time
    from clipscale.train import preemption
    run, grace, finish_after = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
    preemption.install_driver_handler([run], grace)
    print("ready", flush=True)
    t0 = time.time()
    while not preemption.stop_requested(run) and time.time() - t0 < 60:
        time.sleep(0.05)
    time.sleep(finish_after)  # the workers checkpointing
    preemption.exit_if_stopped(run, "resume me")
""")


def start_driver(tmp_path, grace: float, finish_after: float) -> subprocess.Popen:
    p = subprocess.Popen([sys.executable, "-c", DRIVER, str(tmp_path / "run"), str(grace), str(finish_after)],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert p.stdout.readline().strip() == "ready"
    return p


def test_sigterm_writes_the_notice_and_the_driver_exits_143_when_the_workers_are_done(tmp_path):
    p = start_driver(tmp_path, grace=30, finish_after=0.5)
    t0 = time.time()
    p.send_signal(signal.SIGTERM)
    out = p.communicate(timeout=30)[0]
    assert p.returncode == preemption.EXIT_PREEMPTED == 143 and time.time() - t0 < 10
    assert "asking 1 run(s) to checkpoint and stop (grace period 30 s)" in out
    assert "stopped for preemption after a checkpoint; continue it with: resume me" in out
    assert preemption.stop_requested(str(tmp_path / "run"))


def test_the_grace_period_ends_a_driver_whose_workers_do_not_stop(tmp_path):
    p = start_driver(tmp_path, grace=1.0, finish_after=30)
    t0 = time.time()
    p.send_signal(signal.SIGTERM)
    out = p.communicate(timeout=30)[0]
    took = time.time() - t0
    assert p.returncode == -signal.SIGTERM and 0.9 < took < 10, (p.returncode, took, out)
    assert "grace period of 1 s is over; exiting" in out


def test_trial_drivers_go_to_the_head_unless_told_otherwise():
    assert preemption.driver_resources(None) == {"CPU": 0.01, "node:__internal_head__": 0.001}
    assert preemption.driver_resources("trial_driver") == {"CPU": 0.01, "trial_driver": 0.001}
    assert preemption.driver_resources("any") == {"CPU": 0.01}
