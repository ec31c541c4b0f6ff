"""``clipscale demo``: the main job on the built-in emoji world, end to end on one machine.

pool -> curation -> tokenizer -> training (the tiny config, 2 Ray Train workers, ZeRO-2)
-> scaling figures. Each step skips work an earlier demo in the same folder finished, so an
interrupted demo continues where it stopped.
"""
from __future__ import annotations

import time
from pathlib import Path

REPO_CONFIGS = Path(__file__).resolve().parents[1] / "configs"


def step(title: str):
    print(f"\n== {title} ==", flush=True)
    return time.time()


def run_demo(out: Path, num_samples: int = 40_000, samples_seen: int = 61_440,
             model: str = "tiny", workers: int = 2) -> dict:
    from analysis.figures import make_all
    from clipscale.config import load_run_config
    from clipscale.curation.config import CurationConfig
    from clipscale.curation.job import run_curation
    from clipscale.data.emoji_world import EmojiWorldConfig, generate_pool
    from clipscale.text.tokenizer import train_tokenizer
    from clipscale.train.launch import train

    out = out.resolve()
    outputs: dict[str, Path] = {}
    t0 = step(f"1/5 emoji-world pool: {num_samples} image-caption pairs in 14 languages")
    pool = out / "emoji-world"
    generate_pool(EmojiWorldConfig(num_samples=num_samples), pool, workers=2)
    outputs["pool"] = pool / "pool"
    print(f"   done in {time.time() - t0:.0f}s")

    t0 = step("2/5 curation: language ID, per-language metadata, matching, balancing (Ray Data)")
    curated = out / "curated"
    report = run_curation(CurationConfig(input=str(pool / "pool"), output=str(curated),
                                         metadata=str(pool / "lexicons"), workers=1,
                                         cpus_per_worker=0.5))
    outputs["curated shards"] = curated / "shards"
    outputs["curation report"] = curated / "curation_report.json"
    print(f"   done in {time.time() - t0:.0f}s")

    t0 = step("3/5 tokenizer: SentencePiece on the curated captions")
    tok = out / "tokenizer.model"
    if not tok.exists():
        train_tokenizer(curated / "shards", tok, vocab_size=2048)
    outputs["tokenizer"] = tok
    print(f"   done in {time.time() - t0:.0f}s")

    t0 = step(f"4/5 training: {model}, {samples_seen} samples seen, {workers} Ray Train workers, DeepSpeed ZeRO-2")
    cfg = load_run_config(REPO_CONFIGS / "tiny.yaml", [
        f"name=demo-{model}", f"output_dir={out / 'runs'}", f"data.train_shards={curated / 'shards'}",
        f"tokenizer.path={tok}", f"eval.eval_dir={pool / 'eval'}", f"model.name={model}",
        f"train.samples_seen={samples_seen}", f"train.num_workers={workers}"])
    resume = (cfg.run_dir / "run_info.json").exists()
    result = train(cfg, resume=resume)
    if result.error:
        raise RuntimeError(f"training failed: {result.error}")
    outputs["results table"] = cfg.table_dir
    outputs["W&B offline run"] = cfg.run_dir / "wandb"
    print(f"   done in {time.time() - t0:.0f}s")

    t0 = step("5/5 analysis: figures and report from the results table")
    figures = make_all(cfg.table_dir, out / "figures")
    outputs["figures"] = out / "figures"
    print(f"   {len(figures)} files in {time.time() - t0:.0f}s")
    return {"outputs": outputs, "curation": report}
