"""Phase records of a run and the split of a trial's wall into phases (train/timing.py)."""
from __future__ import annotations

import pytest

from clipscale.train.timing import (PHASES, PhaseTimes, describe_split, overhead, read_attempts, split,
                                   train_rate)


def attempt(t0: float, *, samples: int = 1000, ev: float = 2.0, ck: float = 1.0) -> dict:
    marks = dict(zip(("worker_start", "engine_built", "loop_start", "first_batch", "first_step",
                      "last_step", "loop_end"), (t0, t0 + 3, t0 + 5, t0 + 6, t0 + 6.5, t0 + 26, t0 + 27)))
    return {"marks": marks, "seconds": {"eval": ev, "checkpoint": ck}, "samples": samples}


def trial(attempts: list[dict]) -> dict:
    return {"trial": "t", "start": 100.0, "prepared": 101.0, "fit_start": 102.0, "fit_end": 140.0,
            "attempts": attempts}


def test_split_names_each_phase_and_sums_to_the_wall():
    phases = split(trial([attempt(110.0)]))
    assert list(phases) == list(PHASES)
    assert phases == pytest.approx({"prepare": 1, "trainer_build": 1, "worker_group_start": 8,
                                    "engine_init": 3, "loop_setup": 2, "first_batch": 1,
                                    "train": 20 - 3, "eval": 2, "checkpoint": 1, "teardown": 140 - 136})
    assert sum(phases.values()) == pytest.approx(40.0)
    assert train_rate(trial([attempt(110.0)])) == pytest.approx(1000 / 17)


def test_a_packed_trial_prepares_in_the_worker():
    """A lane's trial (train/lane.py) prepares its run after worker_start: that is its prepare
    phase, and its engine start-up is counted from the end of it."""
    a = attempt(110.0)
    a["marks"]["prepared"] = 111.5
    phases = split(trial([a]))
    assert phases["prepare"] == pytest.approx(1 + 1.5)
    assert phases["worker_group_start"] == pytest.approx(8) and phases["engine_init"] == pytest.approx(1.5)
    assert sum(phases.values()) == pytest.approx(40.0)


def test_a_restarted_worker_group_counts_both_attempts_training():
    rec = trial([attempt(104.0, samples=400, ev=0, ck=1), attempt(132.0, samples=600, ev=2, ck=1)])
    rec["fit_end"] = 165.0
    phases = split(rec)
    # 19 s of the first attempt + 17 s of the second, minus the sections inside each
    assert phases["train"] == pytest.approx((20 - 1) + (20 - 3))
    assert phases["eval"] == pytest.approx(2) and phases["checkpoint"] == pytest.approx(2)
    assert sum(phases.values()) == pytest.approx(65.0)
    # the first attempt's start-up (2 s) and its 8 s after the last step count as start-up
    assert phases["worker_group_start"] == pytest.approx(132 - 102 - 20)
    assert min(phases.values()) >= 0
    assert train_rate(rec) == pytest.approx(1000 / 36)


def test_a_worker_that_never_stepped_trains_zero_seconds():
    a = attempt(110.0)
    for k in ("first_batch", "first_step", "last_step"):
        del a["marks"][k]
    phases = split(trial([a]))
    assert phases["train"] == 0 and sum(phases.values()) == pytest.approx(40.0)


def test_overhead_is_one_minus_training_over_wall_summed():
    a, b = trial([attempt(110.0)]), trial([attempt(110.0, ev=0, ck=0)])
    assert overhead([a, b]) == pytest.approx(1 - (17 + 20) / 80)


def test_phase_times_write_one_file_per_attempt(tmp_path):
    p = PhaseTimes()
    p.mark("worker_start")
    first = p.marks["worker_start"]
    p.mark("worker_start")                     # first time kept
    assert p.marks["worker_start"] == first
    with p.timed("eval"):
        pass
    with p.timed("eval"):
        pass
    assert p.seconds["eval"] >= 0 and set(p.seconds) == {"eval", "checkpoint"}
    p.write(str(tmp_path))
    assert read_attempts(str(tmp_path)) == [p.record()]
    assert read_attempts(str(tmp_path), since=first + 1) == []
    assert read_attempts(str(tmp_path / "missing")) == []


def test_describe_split_reads_a_sweeps_timing_folder(tmp_path):
    import json
    (tmp_path / "a.json").write_text(json.dumps(trial([attempt(110.0)])))
    (tmp_path / "b.json").write_text(json.dumps(trial([attempt(110.0, ev=0, ck=0)])))
    line = describe_split(tmp_path)
    assert line.startswith("prepare 2%") and "train 46%" in line and line.endswith("(sweep overhead 54%)")
    assert describe_split(tmp_path / "none") == "no timing records"


def test_first_item_early_keeps_every_item_in_order_and_raises_in_the_caller():
    import threading

    from clipscale.train.prefetch import FirstItemEarly

    pulled_in = []

    def items():
        pulled_in.append(threading.current_thread().name)
        yield from range(5)

    early = FirstItemEarly(items())
    assert list(early) == [0, 1, 2, 3, 4]
    assert pulled_in == ["clipscale-first-item"]      # the stream started in the background
    assert list(FirstItemEarly(iter([]))) == []

    def broken():
        raise RuntimeError("no full batch")
        yield
    with pytest.raises(RuntimeError, match="no full batch"):
        list(FirstItemEarly(broken()))
