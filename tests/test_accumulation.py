"""Feature-caching accumulation (train/accumulation.py) on DeepSpeed's engine, 2 gloo ranks: 4
accumulation steps give the same loss and the same parameter update as one full-batch step."""
from __future__ import annotations

import os

import pytest
import torch
import torch.distributed as dist

from clipscale.config import ConfigError, TrainConfig, build_run_config
from clipscale.train.accumulation import split_batch
from clipscale.train.step import Batch
from gloo_ranks import spawn_ranks

WORLD, LOCAL, STEPS = 2, 16, 4


def _batch(rank: int) -> Batch:
    g = torch.Generator().manual_seed(100 + rank)
    return Batch(torch.randn(LOCAL, 3, 32, 32, generator=g),
                 torch.randint(1, 64, (LOCAL, 8), generator=g))


def _update(loss: str, steps: int, rank: int) -> tuple[float, list[torch.Tensor]]:
    """Loss and parameter change of one optimizer step with ``steps`` accumulation steps."""
    import deepspeed

    from clipscale.models.clip import CLIP
    from clipscale.models.registry import get_spec
    from clipscale.train.accumulation import accumulated_step
    from clipscale.train.deepspeed_config import deepspeed_config
    from clipscale.train.engine import skip_cpu_shm_build
    from clipscale.train.step import train_step

    skip_cpu_shm_build()
    torch.manual_seed(0)
    model = CLIP(get_spec("tiny-s", vocab_size=64, context_length=8), loss=loss)
    before = [p.detach().clone() for p in model.parameters()]
    # SGD without momentum or decay: the update is -lr x gradient, so equal updates mean equal
    # gradients (Adam's first step would hide a gradient scaled by a constant).
    optimizer = torch.optim.SGD(model.parameters(), lr=1.0)
    train = TrainConfig(global_batch_size=WORLD * LOCAL, num_workers=WORLD, accumulation_steps=steps,
                        samples_seen=WORLD * LOCAL, grad_clip=0.0, zero_stage=2, loss=loss)
    engine, *_ = deepspeed.initialize(model=model, optimizer=optimizer,
                                      config=deepspeed_config(train, "fp32"), dist_init_required=False)
    batch = _batch(rank)
    if steps == 1:
        metrics = train_step(engine, batch, lr=0.5, loss=loss)
    else:
        metrics = accumulated_step(engine, batch, steps, lr=0.5, loss=loss)
    after = [p.detach().clone() for p in engine.module.parameters()]
    return metrics["loss"], [a - b for a, b in zip(after, before)]


def _worker(rank, port, out_dir):
    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(WORLD),
                      MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), DS_ACCELERATOR="cpu")
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=WORLD)
    try:
        results = {(loss, steps): _update(loss, steps, rank)
                   for loss in ("softmax", "sigmoid") for steps in (1, STEPS)}
        torch.save(results, f"{out_dir}/rank{rank}.pt")
    finally:
        dist.destroy_process_group()


@pytest.fixture(scope="module")
def updates(tmp_path_factory):
    return spawn_ranks(_worker, WORLD, tmp_path_factory.mktemp("accum"))


@pytest.mark.slow
@pytest.mark.parametrize("loss", ["softmax", "sigmoid"])
def test_four_accumulation_steps_equal_one_full_batch_step(updates, loss):
    for rank in range(WORLD):
        full_loss, full_delta = updates[rank][(loss, 1)]
        acc_loss, acc_delta = updates[rank][(loss, STEPS)]
        assert acc_loss == pytest.approx(full_loss, rel=1e-5)
        assert any(d.abs().max() > 1e-4 for d in full_delta)       # the step moved the weights
        for f, a in zip(full_delta, acc_delta):
            torch.testing.assert_close(a, f, rtol=1e-4, atol=1e-6)
    # ranks agree (data parallel): the update is the global batch's, not a rank's
    for f0, f1 in zip(updates[0][(loss, STEPS)][1], updates[1][(loss, STEPS)][1]):
        torch.testing.assert_close(f0, f1)


def test_split_batch_is_row_order_and_refuses_uneven_splits():
    b = Batch(torch.arange(8.0).view(8, 1, 1, 1), torch.arange(8).view(8, 1), torch.arange(8).view(8, 1))
    parts = split_batch(b, 4)
    assert [p.images.flatten().tolist() for p in parts] == [[0, 1], [2, 3], [4, 5], [6, 7]]
    assert torch.equal(torch.cat([p.patch_keep for p in parts]), b.patch_keep)
    with pytest.raises(ValueError, match="equal micro-batches"):
        split_batch(b, 3)


def test_accumulation_steps_must_divide_the_batch():
    with pytest.raises(ConfigError, match="num_workers x accumulation_steps"):
        build_run_config({"data": {"train_shards": "x"},
                          "train": {"global_batch_size": 12, "num_workers": 2, "accumulation_steps": 4}})
    from clipscale.train.deepspeed_config import deepspeed_config
    ds = deepspeed_config(TrainConfig(global_batch_size=64, num_workers=2, accumulation_steps=4), "fp32")
    assert (ds["train_micro_batch_size_per_gpu"], ds["gradient_accumulation_steps"]) == (8, 4)


@pytest.mark.slow
def test_a_run_with_two_accumulation_steps_lands_on_the_golden_curve(tiny_pool, tmp_path):
    """The loop hook end to end (Ray Train, DeepSpeed gradient_accumulation_steps=2): feature
    caching trains on the same loss as the reference run, so it ends on its golden curve."""
    import json
    from pathlib import Path

    from test_train import run_cli, tiny_config, write_yaml

    from clipscale.results import read_results

    cfg = write_yaml(tiny_config(tiny_pool, tmp_path, "accum", accumulation_steps=2),
                     tmp_path / "accum.yaml")
    assert run_cli(["train", str(cfg)]).wait(timeout=600) == 0
    repo = Path(__file__).resolve().parents[1]
    golden = json.loads((repo / "tests" / "assets" / "losses" / "tiny_s_zero2.json").read_text())
    df = read_results(tmp_path / "results")
    assert list(df["samples_seen"]) == golden["samples_seen"]
    assert df["loss"].tolist() == pytest.approx(golden["loss"], rel=2e-3)
