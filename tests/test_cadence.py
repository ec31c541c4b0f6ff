"""The cadence: what is due after a step, decided between two sample counts."""
from __future__ import annotations

from clipscale.config import build_run_config
from clipscale.train.cadence import Cadence, crossed


def cadence(**kw) -> Cadence:
    base = dict(total_samples=4096, stage_ends=(4096,), log_every_steps=4, eval_every_samples=2048,
                checkpoint_every_samples=1024)
    return Cadence(**{**base, **kw})


def due(c: Cadence, batch: int, what: str) -> list[int]:
    """Samples seen after each step at which ``what`` is due, over the whole run."""
    out, s, step = [], 0, 0
    while s < c.total_samples:
        step += 1
        d = c.decide(0, step, s, s + batch)
        s += batch
        if getattr(d, what):
            out.append(s)
    return out


def test_crossed_is_half_open():
    assert crossed(0, 64, 64) and not crossed(64, 128, 256) and crossed(192, 256, 256)
    assert not crossed(0, 63, 64) and crossed(1000, 1056, 1024)


def test_eval_and_checkpoint_at_multiples_and_at_the_end():
    c = cadence()
    assert due(c, 64, "eval") == [2048, 4096]
    assert due(c, 64, "checkpoint") == [1024, 2048, 3072, 4096]
    assert due(c, 64, "last") == [4096]


def test_a_batch_that_does_not_divide_every_still_triggers_once_per_multiple():
    c = cadence(total_samples=3000, stage_ends=(3000,))
    assert due(c, 96, "checkpoint") == [1056, 2112, 3072]  # first step past 1024, 2048, and the last
    assert due(c, 96, "eval") == [2112, 3072]


def test_log_every_k_steps_and_the_last_step():
    c = cadence(total_samples=64 * 10, stage_ends=(640,))
    assert due(c, 64, "log") == [256, 512, 640]


def test_no_eval_without_an_evaluator():
    assert due(cadence(eval_every_samples=None), 64, "eval") == []
    assert due(cadence(eval_every_samples=None), 64, "report") == [1024, 2048, 3072, 4096]


def test_stage_ends_from_the_config():
    cfg = build_run_config({"data": {"train_shards": "/x"}, "model": {"name": "tiny-s"},
                            "stages": [{"image_size": 32, "samples": 1024}, {"image_size": 32}],
                            "train": {"samples_seen": 1536, "global_batch_size": 64},
                            "eval": {"eval_dir": "/e", "every_samples": 512}})
    c = Cadence.from_config(cfg)
    assert c.stage_ends == (1024, 1536) and c.eval_every_samples == 512
    assert c.decide(0, 16, 960, 1024).stage_done and not c.decide(0, 15, 896, 960).stage_done
    assert c.decide(1, 24, 1472, 1536).last
    assert Cadence.from_config(cfg, evaluate=False).eval_every_samples is None
