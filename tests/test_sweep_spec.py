"""Sweep files: axes expand into trials, every trial's run config is validated on entry (bad
files refused with the field named), and the dry run's figures are the plan's."""
from __future__ import annotations

import pytest
import yaml

from clipscale.config import ConfigError
from clipscale.sweep.dry_run import dry_run, schedule_seconds
from clipscale.sweep.expand import expand, load_trials
from clipscale.sweep.spec import load_sweep
from clipscale.sweep.sweep import concurrency, load
from clipscale.train.plan import plan_run

BASE = {"output_dir": "out", "data": {"train_shards": "pool"}, "model": {"name": "tiny-s"},
        "stages": [{"image_size": 32, "text_tokens": 16}],
        "train": {"samples_seen": 2048, "global_batch_size": 64}}


def sweep_file(tmp_path, **fields):
    p = tmp_path / "sweep.yaml"
    p.write_text(yaml.safe_dump({"name": "s", "base": BASE, **fields}))
    return p


def test_grid_expands_every_combination_with_stable_ids(tmp_path):
    p = sweep_file(tmp_path, axes={"model": ["tiny-s", "tiny"], "image_tokens": [4, 16],
                                   "text_tokens": [8, 16], "english_share": [0.5]})
    sweep, root, trials = load_trials(p)
    assert len(trials) == 8 and root == str((tmp_path / "out" / "s").resolve())
    params = [t.params for t, _ in trials]
    assert params[0] == {"model": "tiny-s", "image_tokens": 4, "text_tokens": 8, "english_share": 0.5}
    assert params[-1] == {"model": "tiny", "image_tokens": 16, "text_tokens": 16, "english_share": 0.5}
    assert len({t.id for t, _ in trials}) == 8
    base = {**BASE, "output_dir": "out"}
    assert [t.id for t in expand(sweep, base)] == [t.id for t, _ in trials]   # ids are stable
    edited = {**base, "train": {**BASE["train"], "lr": 1e-4}}
    assert not {t.id for t in expand(sweep, edited)} & {t.id for t, _ in trials}  # a new base: new trials
    for trial, cfg in trials:
        assert cfg.name == trial.id and cfg.sweep == "s" and cfg.logging.group == "s"
        assert cfg.model.name == trial.params["model"]
        assert cfg.stages[0].image_size == {4: 16, 16: 32}[trial.params["image_tokens"]]
        assert plan_run(cfg)[0].image_tokens == trial.params["image_tokens"]
        assert cfg.stages[0].text_tokens == trial.params["text_tokens"]
        assert cfg.data.english_share == 0.5
        # one results table and one tokenizer for the whole sweep
        assert cfg.table_dir == f"{root}/results" and cfg.tokenizer.path == f"{root}/tokenizer.model"
        assert cfg.run_dir == f"{root}/{trial.id}"


def test_list_mode_and_field_paths(tmp_path):
    p = sweep_file(tmp_path, mode="list", points=[
        {"model": "tiny", "stages.0.image_size": 16},
        {"model": "tiny-s", "train.samples_seen": 4096, "train.seed": 3, "languages": ["en", "fr"]}])
    _, _, trials = load_trials(p)
    (a, ca), (b, cb) = trials
    assert (ca.model.name, ca.stages[0].image_size, ca.train.samples_seen) == ("tiny", 16, 2048)
    assert (cb.train.samples_seen, cb.train.seed, cb.data.languages) == (4096, 3, ["en", "fr"])


@pytest.mark.parametrize("fields,message", [
    ({"axes": {"model.nmae": ["tiny"]}}, r"axes.model.nmae: unknown axis"),
    ({"axes": {"colour": [1]}}, r"axes.colour: unknown axis"),
    ({"axes": {"model": []}}, r"axes.model: empty list"),
    ({"axes": {}}, r"axes: a grid sweep needs at least one axis"),
    ({"axes": {"model": ["tiny"]}, "bogus": 1}, r"bogus: unknown key"),
    ({"mode": "list", "points": []}, r"points: mode: list needs at least one point"),
    ({"mode": "list", "points": [{"wrong.field": 1}]}, r"points.0: axes.wrong.field: unknown axis"),
])
def test_invalid_sweep_files_are_refused_with_the_field_named(tmp_path, fields, message):
    p = sweep_file(tmp_path, **fields)
    with pytest.raises(ConfigError, match=message) as e:
        load_sweep(p)
    assert str(p) in str(e.value)


@pytest.mark.parametrize("axes,message", [
    ({"text_tokens": [16, 64]}, r"stages\[0\].text_tokens=64 exceeds the context length 32[\s\S]*axis text_tokens=64"),
    ({"image_tokens": [16, 50]}, r"axes.image_tokens: 50 is not a square"),
    ({"image_size": [32, 36]}, r"image_size=36 is not a multiple[\s\S]*axis image_size=36"),
    ({"model": ["tiny", "ViT-Z-99"]}, r"model.name"),
    ({"image_reduction": ["block"], "image_keep": [0.3]}, r"image_keep=0.3: no rectangle[\s\S]*axis image_keep=0.3"),
    ({"english_share": [1.5]}, r"data.english_share[\s\S]*axis english_share=1.5"),
])
def test_a_trial_the_model_cannot_take_is_refused_naming_the_axis(tmp_path, axes, message):
    with pytest.raises(ConfigError, match=message):
        load_trials(sweep_file(tmp_path, axes=axes))


def test_dry_run_figures_are_the_plan(tmp_path):
    p = sweep_file(tmp_path, axes={"model": ["tiny-s", "tiny"], "image_tokens": [4, 16]})
    trials = load(p).trials
    resources = {"CPU": 4.0, "GPU": 0.0}
    text, figures = dry_run(load(p), flops_per_s=1e10, utilisation=0.5, startup_s=30,
                            resources=resources)
    assert len(figures["trials"]) == 4
    for est, (trial, cfg) in zip(figures["trials"], trials):
        plan = plan_run(cfg)
        assert est.compute == sum(s.compute for s in plan) == 2048 * plan[0].train_flops_per_sample
        assert est.flops_per_sample == plan[0].train_flops_per_sample
        # 2 workers x 0.5 CPU = one core at 1e10 FLOP/s x 0.5, plus start-up
        assert est.seconds == pytest.approx(est.compute / (1.0 * 1e10 * 0.5) + 30)
        assert trial.id in text
    # a trial holds 2 x 0.5 CPU for its workers + 4 readers x 0.25: two fit in 4 CPUs
    assert figures["concurrency"] == 2
    assert figures["total_seconds"] == pytest.approx(schedule_seconds([e.seconds for e in figures["trials"]], 2))
    assert "GFLOPs/sample" in text and "estimated sweep time" in text and "given" in text


def test_dry_run_of_a_packed_sweep_pays_start_up_once_per_lane(tmp_path):
    from clipscale.sweep.dry_run import DEFAULT_STARTUP_S, LANE_STARTUP_S, PACKED_TRIAL_S

    axes = {"model": ["tiny-s", "tiny"], "image_tokens": [4, 16]}
    resources = {"CPU": 4.0, "GPU": 0.0}
    one_worker = {**BASE, "train": {**BASE.get("train", {}), "num_workers": 1}}
    _, alone = dry_run(load(sweep_file(tmp_path, axes=axes, base=one_worker)), flops_per_s=1e10,
                       resources=resources)
    text, packed = dry_run(load(sweep_file(tmp_path, axes=axes, base=one_worker, pack_trials=True)),
                           flops_per_s=1e10, resources=resources)
    for a, b in zip(alone["trials"], packed["trials"]):
        assert a.seconds - b.seconds == pytest.approx(DEFAULT_STARTUP_S - PACKED_TRIAL_S)
    assert packed["total_seconds"] == pytest.approx(
        schedule_seconds([e.seconds for e in packed["trials"]], 2) + LANE_STARTUP_S)
    assert f"+ {LANE_STARTUP_S:.0f} s per lane" in text
    assert schedule_seconds([10, 10, 10], 2, slot_start=5) == 25


def test_concurrency_and_schedule():
    assert concurrency({"CPU": 16, "GPU": 8}, {"CPU": 4, "GPU": 2}, 10) == 4
    assert concurrency({"CPU": 16, "GPU": 1}, {"CPU": 4, "GPU": 2}, 10) == 1   # at least one
    assert concurrency({"CPU": 64}, {"CPU": 2}, 3) == 3                      # no more than the trials
    assert concurrency({"CPU": 64}, {"CPU": 2}, 10, cap=2) == 2
    # per-trial needs: k slots only if the k largest fit together
    assert concurrency({"CPU": 10}, [{"CPU": 2}, {"CPU": 6}, {"CPU": 3}, {"CPU": 1}], 4) == 2
    assert concurrency({"CPU": 11}, [{"CPU": 2}, {"CPU": 6}, {"CPU": 3}, {"CPU": 1}], 4) == 3
    assert schedule_seconds([10, 10, 10], 2) == 20
    assert schedule_seconds([30, 10, 10, 10], 2) == 30


def test_repository_sweeps_validate_and_dry_run():
    from pathlib import Path

    root = Path(__file__).resolve().parents[1] / "sweeps"
    sizes = {"smoke": 2, "demo": 12, "inverse_scaling": 18, "multilinguality": 12, "clipa_v2_h14": 1,
             "metaclip2_ablation": 8}
    for name, n in sizes.items():
        path = root / f"{name}.yaml"
        assert path.read_text().startswith("# clipscale sweep sweeps/")
        sweep = load(path)
        assert len(sweep.trials) == n, name
        _, figures = dry_run(sweep, flops_per_s=1e10, resources={"CPU": 4.0, "GPU": 0.0})
        assert figures["total_seconds"] > 0
    _, _, (( _, clipa),) = load_trials(root / "clipa_v2_h14.yaml")
    pre, fine = plan_run(clipa)
    assert (pre.samples, pre.image_size, pre.image_tokens, pre.text_tokens) == (12_811_632_640, 84, 36, 8)
    assert (fine.samples, fine.image_size, fine.image_tokens) == (524_288_000, 224, 179)  # 30% masked


def test_a_num_workers_axis_sizes_concurrency_per_trial(tmp_path):
    """Trials of 1, 2 and 4 workers: the slots are what the widest trials need side by side, not
    what the first trial needs."""
    p = sweep_file(tmp_path, axes={"train.num_workers": [1, 2, 4]})
    sweep = load(p)
    cpu = [r["CPU"] for r in sweep.resources(use_gpu=False)]
    # workers x 0.5 CPU + 4 readers x 0.25
    assert cpu == [1.5, 2.0, 3.0]
    assert sweep.concurrency({"CPU": 5.0}, use_gpu=False) == 2      # 3.0 + 2.0 fit; 3 + 2 + 1.5 do not
    assert sweep.concurrency({"CPU": 4.0}, use_gpu=False) == 1      # trials[0] alone would say 2
    gpu = [r["GPU"] for r in sweep.resources(use_gpu=True)]
    assert gpu == [1.0, 2.0, 4.0]
    assert sweep.concurrency({"CPU": 64.0, "GPU": 6.0}, use_gpu=True) == 2
    assert sweep.concurrency({"CPU": 64.0, "GPU": 7.0}, use_gpu=True) == 3
    _, figures = dry_run(sweep, flops_per_s=1e10, resources={"CPU": 4.0, "GPU": 0.0})
    assert figures["concurrency"] == 1


@pytest.mark.parametrize("axis,values,field", [
    ("train.use_gpu", [True, False], "train.use_gpu"),
    ("results_dir", ["a", "b"], "results_dir"),
    ("train.max_failures", [0, 2], "train.max_failures"),
    ("tokenizer.vocab_size", [1024, 2048], "tokenizer.vocab_size"),
])
def test_sweep_wide_settings_must_agree(tmp_path, axis, values, field):
    p = sweep_file(tmp_path, axes={axis: values})
    with pytest.raises(ConfigError, match=rf"{field} is sweep-wide .* differs between trials: s-000-\w+ has"):
        load(p)


def test_sweep_wide_settings_are_the_sweeps(tmp_path):
    p = sweep_file(tmp_path, axes={"model": ["tiny-s", "tiny"]})
    sweep = load(p)
    assert sweep.table_dir == sweep.trials[1][1].table_dir == f"{sweep.root}/results"
    assert sweep.use_gpu(0) is False and sweep.use_gpu(8) is True      # auto follows the cluster
    assert sweep.tokenizer_to_train is not None
    # a tokenizer the base run names is its own: vocab sizes may differ then
    named = sweep_file(tmp_path, axes={"tokenizer.vocab_size": [1024, 2048]})
    data = yaml.safe_load(named.read_text())
    data["base"]["tokenizer"] = {"path": str(tmp_path / "tok.model")}
    named.write_text(yaml.safe_dump(data))
    assert load(named).tokenizer_to_train is None
