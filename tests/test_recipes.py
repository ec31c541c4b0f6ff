"""Paper-pinned sweep files and the lr rule: every published number is checked here, so an edit
that drifts from the papers fails (sources are cited next to each value in the sweep files)."""
from __future__ import annotations

from pathlib import Path

import pytest

from clipscale.config import ConfigError, build_run_config
from clipscale.sweep.dry_run import dry_run
from clipscale.sweep.expand import load_trials
from clipscale.sweep.sweep import load
from clipscale.train.schedule import cosine_lr, lr_at

SWEEPS = Path(__file__).resolve().parents[1] / "sweeps"


def test_clipa_v2_h14_carries_the_published_recipe():
    _, _, trials = load_trials(SWEEPS / "clipa_v2_h14.yaml")
    (_, cfg), = trials
    pre, ft = cfg.stages
    assert cfg.model.name == "ViT-H-14"
    # Pretraining: 84 px, 8 syntax-sampled tokens, batch 65,536, 8e-6 per 256 = 2.048e-3, 3,200 warmup steps.
    assert (pre.image_size, pre.text_tokens, pre.text_reduction, pre.image_reduction) == (84, 8, "syntax", "none")
    assert pre.global_batch_size == 65536 and pre.lr_per_256 == 8e-6
    assert cfg.stage_peak_lr(0) == pytest.approx(2.048e-3, rel=1e-12)
    assert pre.warmup_samples == 3200 * 65536
    assert pre.samples == (1_281_167 * 10_000 // 65536) * 65536      # 10,000 ImageNet epochs of steps
    # Fine-tuning: 224 px, 32 tokens, 30% patches masked, batch 32,768, 4e-7 per 256 = 5.12e-5, 800 warmup steps.
    assert (ft.image_size, ft.text_tokens, ft.image_reduction, ft.image_keep) == (224, 32, "random", 0.7)
    assert ft.global_batch_size == 32768 and ft.lr_per_256 == 4e-7
    assert cfg.stage_peak_lr(1) == pytest.approx(5.12e-5, rel=1e-12)
    assert ft.warmup_samples == 26_214_400 == 800 * 32768
    assert cfg.stage_samples()[1] == 131_072_000 * 4
    t = cfg.train
    assert (t.betas, t.eps, t.weight_decay, t.grad_clip) == ((0.9, 0.95), 1e-8, 0.2, 0.0)


def test_metaclip2_ablation_carries_the_published_recipe():
    sweep, _, trials = load_trials(SWEEPS / "metaclip2_ablation.yaml")
    assert len(trials) == 8
    seen = set()
    for trial, cfg in trials:
        t = cfg.train
        assert cfg.stages[0].image_size == 224 and cfg.model.name in ("ViT-L-14", "ViT-H-14")
        assert (t.lr, t.lr_per_256, t.betas, t.eps, t.weight_decay, t.grad_clip) == (
            4e-4, None, (0.9, 0.95), 1e-6, 0.1, 0.0)
        assert t.warmup_samples == 2000 * t.global_batch_size
        scale = {(12_800_000_000, 32768): "1.0x", (29_440_000_000, 196 * 48 * 8): "2.3x"}[
            (t.samples_seen, t.global_batch_size)]
        seen.add((cfg.model.name, cfg.data.english_share, scale))
    assert len(seen) == 8                                      # the full 2 x 2 x 2 design
    assert round(29_440_000_000 / 12_800_000_000, 2) == 2.3 and round(75264 / 32768, 1) == 2.3


def test_dry_run_prints_each_stages_effective_lr():
    text, _ = dry_run(load(SWEEPS / "clipa_v2_h14.yaml"), flops_per_s=1e12, resources={"CPU": 4.0, "GPU": 0.0})
    assert "batch 65,536 lr 0.002048" in text and "batch 32,768 lr 5.12e-05" in text


BASE = {"data": {"train_shards": "x"}, "model": {"name": "tiny"}}


def test_lr_rule_absolute_or_per_256_not_both():
    cfg = build_run_config({**BASE, "train": {"lr_per_256": 1e-5, "global_batch_size": 512}})
    assert cfg.train.peak_lr == pytest.approx(2e-5)
    assert build_run_config({**BASE, "train": {"lr": 3e-4}}).train.peak_lr == 3e-4
    with pytest.raises(ConfigError, match="train: .*lr or lr_per_256"):
        build_run_config({**BASE, "train": {"lr": 3e-4, "lr_per_256": 1e-5}})
    with pytest.raises(ConfigError, match=r"stages.0: .*lr or lr_per_256"):
        build_run_config({**BASE, "stages": [{"lr": 1e-3, "lr_per_256": 1e-5}]})
    with pytest.raises(ConfigError, match="warmup_samples on a stage"):
        build_run_config({**BASE, "stages": [{"warmup_samples": 10}]})


def test_default_schedule_is_the_reference_cosine_bit_for_bit():
    cfg = build_run_config({**BASE, "train": {"samples_seen": 20000, "warmup_samples": 2000}})
    for s in range(0, 20000, 128):
        assert lr_at(cfg, s) == cosine_lr(s, cfg.train.lr, 2000, 20000)


def test_a_stage_with_its_own_lr_restarts_warmup_and_decay():
    cfg = build_run_config({**BASE, "train": {"samples_seen": 2000, "global_batch_size": 100,
                                              "warmup_samples": 100},
                            "stages": [{"samples": 1000}, {"lr_per_256": 2.56e-4, "global_batch_size": 50,
                                                            "warmup_samples": 200}]})
    assert cfg.stage_batch_size(1) == 50 and cfg.stage_peak_lr(1) == pytest.approx(5e-5)
    assert lr_at(cfg, 500) == cosine_lr(500, 1e-3, 100, 1000)
    assert lr_at(cfg, 1000) == cosine_lr(0, 5e-5, 200, 1000) == pytest.approx(5e-5 / 200)
    assert lr_at(cfg, 1200) == pytest.approx(5e-5)
    assert lr_at(cfg, 1999) < 1e-9
