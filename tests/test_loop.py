"""The training loop core in-process: the real tiny-s model and AdamW in a ``PlainEngine``, a
plain batch iterator over decoded emoji-world rows, the real evaluator and results table, no Ray.
Runs in seconds; the Ray/DeepSpeed edge of the same loop is tests/test_train.py's."""
from __future__ import annotations

import math
from functools import partial

import numpy as np
import pytest

from clipscale.config import build_run_config
from clipscale.results import read_results
from clipscale.run_inputs import data_summary, store_tokenizer
from clipscale.train import checkpoint as ckpt
from clipscale.train.batches import make_batch
from clipscale.train.cadence import Cadence
from clipscale.train.contract import RunContract
from clipscale.train.engine import build_plain_engine
from clipscale.train.loop import FAILED, FINISHED, Loop, run
from clipscale.train.plan import model_spec, plan_run
from clipscale.train.schedule import cosine_lr
from clipscale.train.step import train_step
from clipscale.train.tracking import Tracker


@pytest.fixture(scope="module")
def plain_data(tiny_pool, tmp_path_factory):
    """A tokenizer trained on the pool and the first shard decoded once (400 rows at 32 px)."""
    from clipscale.data.shards import list_shards
    from clipscale.train.data import decode_shard

    shards = list_shards(str(tiny_pool / "pool"))
    captions, _ = data_summary(shards, 1600)
    tok = store_tokenizer(captions, str(tmp_path_factory.mktemp("tok") / "tokenizer.model"), 512)
    ctx = model_spec(build_run_config(run_dict(tiny_pool, tmp_path_factory.mktemp("x")))).text.context_length
    blocks = list(decode_shard({"path": [shards[0]]}, tokenizer_path=tok, image_size=32, context_length=ctx,
                               block_rows=400, counter_name=""))
    rows = {k: np.concatenate([b[k] for b in blocks]) for k in ("image", "tokens")}
    return {"tokenizer": tok, "rows": rows, "pool": tiny_pool}


def run_dict(pool, out, **train) -> dict:
    return {"name": "plain", "output_dir": str(out),
            "data": {"train_shards": str(pool / "pool")}, "model": {"name": "tiny-s"},
            "tokenizer": {"vocab_size": 512},
            "stages": [{"image_size": 32, "text_tokens": 16, "image_reduction": "random", "image_keep": 0.5}],
            "train": {"samples_seen": 512, "global_batch_size": 32, "lr": 2e-3, "warmup_samples": 64,
                      "num_workers": 1, "checkpoint_every_samples": 128, **train},
            "eval": {"every_samples": 256, "batch_size": 128},
            "logging": {"wandb_mode": "disabled", "log_every_steps": 1}}


def plain_batches(rows: dict, cfg, plan, rng: ckpt.WorkerRng, state: ckpt.TrainState, stage: int):
    """The rows in order, epoch after epoch, from the state's data position (as the Ray edge's
    ``stage_batches`` does with a Ray Data stream)."""
    b = cfg.train.global_batch_size
    n = len(rows["tokens"]) // b
    while True:
        for i in range(state.batch_in_epoch, n):
            raw = {k: v[i * b:(i + 1) * b] for k, v in rows.items()}
            yield make_batch(raw, cfg.stages[stage], plan[stage], "cpu", "fp32", rng)
        state.epoch += 1
        state.batch_in_epoch = 0


class Run:
    """One in-process run: a plain engine and a loop that records what it publishes."""

    def __init__(self, data, out, evaluate=False, **train):
        import torch

        d = run_dict(data["pool"], out, **train)
        if evaluate:
            d["eval"]["eval_dir"] = str(data["pool"] / "eval")
        self.cfg = cfg = build_run_config(d)
        self.contract = RunContract(run=cfg, run_id=cfg.name, tokenizer_path=data["tokenizer"], vocab_size=512,
                                    keep_rates=None, languages="en", english_share=1.0, counter_name="")
        self.rng = ckpt.WorkerRng.seeded(cfg.train.seed, 0)
        self.engine, precision, params = build_plain_engine(cfg, 512)
        self.published, self.losses = [], {}
        evaluator = None
        if evaluate:
            from clipscale.train.evaluator import Evaluator
            evaluator = Evaluator(cfg, data["tokenizer"], torch.device("cpu"), precision)
        plan = plan_run(cfg)
        self.loop = Loop(contract=self.contract, engine=self.engine, plan=plan,
                         cadence=Cadence.from_config(cfg), batches=partial(plain_batches, data["rows"], cfg, plan, self.rng.mask),
                         schedule=partial(cosine_lr, base_lr=cfg.train.lr, warmup_samples=cfg.train.warmup_samples,
                                          total_samples=cfg.train.samples_seen),
                         step=partial(train_step, loss=cfg.train.loss), publish=self.publish, rng=self.rng,
                         evaluator=evaluator, tracker=Tracker(mode="disabled", project="", entity=None, group=None,
                                                              run_id=cfg.name, run_dir=out, config={}),
                         params=params, hooks=[self.record_loss])

    def publish(self, payload: dict, folder: str | None) -> None:
        self.published.append((payload, folder))

    def record_loss(self, loop, state, result) -> None:
        self.losses[state.step] = result.metrics["loss"]

    def run(self, state: ckpt.TrainState | None = None) -> str:
        return run(self.loop, state or ckpt.TrainState())


def test_loop_runs_to_the_end_and_reports_on_the_cadence(plain_data, tmp_path, one_thread):
    r = Run(plain_data, tmp_path, evaluate=True)
    assert r.run() == FINISHED
    assert sorted(r.losses) == list(range(1, 17))  # 512 samples / batch 32
    # a report at every checkpoint (128 samples) and eval (256); checkpoints carry a folder
    assert [p["samples_seen"] for p, _ in r.published] == [128, 256, 384, 512]
    assert all(folder for _, folder in r.published)
    assert [p["status"] for p, _ in r.published] == ["running"] * 3 + ["finished"]
    df = read_results(r.cfg.table_dir)
    assert list(df["samples_seen"]) == [256, 512] and list(df["status"]) == ["running", "finished"]
    assert df["loss"].tolist() == [r.losses[8], r.losses[16]]      # the loss of the step that got there
    assert df["zeroshot_top1_mean"].notna().all()
    assert df["compute"].iloc[-1] == pytest.approx(512 * r.loop.plan[0].train_flops_per_sample)
    assert r.losses[16] < r.losses[1]                               # it learns


@pytest.fixture(scope="module")
def full_run(plain_data, tmp_path_factory):
    """An unbroken 16-step run without evaluation; its checkpoint folders are kept."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # see conftest.one_thread
    full = Run(plain_data, tmp_path_factory.mktemp("full"))
    full.run()
    torch.set_num_threads(threads)
    return full


def test_resume_from_a_checkpoint_continues_the_same_curve(full_run, plain_data, tmp_path, one_thread):
    """Weights, optimizer, data position and the mask generator (random masking here) are in the
    checkpoint: a fresh engine restored at step 8 trains steps 9-16 exactly as the unbroken run."""
    full = full_run
    (folder,) = [f for p, f in full.published if p["step"] == 8]
    resumed = Run(plain_data, tmp_path / "b")
    state = ckpt.restore(resumed.engine, folder, 0, resumed.rng)
    assert (state.step, state.samples_seen, state.batch_in_epoch) == (8, 256, 8)
    resumed.run(state)
    assert sorted(resumed.losses) == list(range(9, 17))
    assert [resumed.losses[s] for s in range(9, 17)] == [full.losses[s] for s in range(9, 17)]


def test_mask_generator_state_is_checkpointed(full_run, plain_data, tmp_path, one_thread):
    """Without the mask generator's state the resumed run draws other masks (and losses)."""
    full = full_run
    (folder,) = [f for p, f in full.published if p["step"] == 8]
    resumed = Run(plain_data, tmp_path / "b")
    state = ckpt.restore(resumed.engine, folder, 0, resumed.rng)
    resumed.rng.mask.manual_seed(12345)  # what restoring without the mask state would leave
    resumed.run(state)
    assert resumed.losses[9] != full.losses[9]


def test_non_finite_loss_writes_a_failed_row_and_stops(plain_data, tmp_path, one_thread):
    r = Run(plain_data, tmp_path, lr=1e30, warmup_samples=0)
    assert r.run() == FAILED
    last = max(r.losses)
    assert last < 16 and not math.isfinite(r.losses[last])
    assert all(math.isfinite(r.losses[s]) for s in range(1, last))
    payload, folder = r.published[-1]
    assert payload["status"] == "failed" and folder is None   # no checkpoint of a diverged model
    assert "non-finite loss" in payload["failure"] and payload["step"] == last
    df = read_results(r.cfg.table_dir)
    assert list(df["status"]) == ["failed"] and df["samples_seen"].iloc[0] == last * 32


def test_contract_keeps_the_run_info_record_and_drops_shards_for_workers(tmp_path, tiny_pool):
    import pickle

    cfg = build_run_config(run_dict(tiny_pool, tmp_path))
    record = {"run_id": "plain", "tokenizer_path": "/t.model", "vocab_size": 512, "keep_rates": {"en": 0.5},
              "languages": "en,fr", "english_share": 0.4}
    c = RunContract.from_record(cfg, record, ["/a.tar", "/b.tar"])
    # a record from before online curation was streamed reads as offline data
    assert c.record() == {**record, "online_epochs": None} and c.online_epochs is None
    assert c.shards == ("/a.tar", "/b.tar") and c.counter_name == "skips-plain"
    w = pickle.loads(pickle.dumps(c.for_workers()))
    assert w.shards == () and w.record() == c.record() and w.run == cfg
    online = RunContract.from_record(cfg, {**record, "online_epochs": 3}, [])
    assert online.online_epochs == 3 and online.record()["online_epochs"] == 3
