"""``clipscale demo``: the main job on the built-in emoji world, end to end on one machine.

pool -> curation -> tokenizer -> the demo sweep (sweeps/demo.yaml: model size x image tokens and
model size x English share, trials packed into long-lived Ray Train groups on Ray Tune; its layout:
docs/throughput.md) -> scaling
figures. Each step skips work an earlier demo in the same folder finished, so an interrupted demo continues where
it stopped (the sweep resumes: finished trials are kept, interrupted ones continue).
"""
from __future__ import annotations

import time
from pathlib import Path

REPO_SWEEPS = Path(__file__).resolve().parents[1] / "sweeps"


def step(title: str):
    print(f"\n== {title} ==", flush=True)
    return time.time()


# The demo's emoji world, sized for its budget (docs/recipe.md): curation keeps ~24k pairs, which a
# worldwide trial of sweeps/demo.yaml (98,304 samples) sees ~4 times (English-only: its ~10k English
# pairs ~9 times), and a world of 50 concepts in 8 languages is learnt far above chance within ~33k
# samples of CPU training (the 300-concept, 14-language default is not). 1,000 zero-shot images (20
# a class) so the report's intervals can resolve differences of a few points (docs/statistics.md).
DEMO_POOL_SAMPLES = 64_000
DEMO_WORLD = dict(image_size=32, num_concepts=50, eval_num_classes=50, eval_images_per_class=20,
                  max_emoji_per_image=2, languages=["en", "es", "ja", "de", "fr", "pt", "ru", "zh"])


def run_demo(out: Path, num_samples: int = DEMO_POOL_SAMPLES,
             sweep_file: Path = REPO_SWEEPS / "demo.yaml") -> dict:
    from analysis.figures import make_all
    from clipscale.curation.config import CurationConfig
    from clipscale.curation.job import run_curation
    from clipscale.data.emoji_world import EmojiWorldConfig, generate_pool
    from clipscale.sweep.sweep import load
    from clipscale.sweep.tune import launch
    from clipscale.text.tokenizer import train_tokenizer

    out = out.resolve()
    t_demo = time.time()
    outputs: dict[str, Path] = {}
    world = EmojiWorldConfig(num_samples=num_samples, **DEMO_WORLD)
    t0 = step(f"1/5 emoji-world pool: {num_samples} image-caption pairs in {len(world.languages)} languages")
    pool = out / "emoji-world"
    generate_pool(world, pool, workers=2)
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

    sweep = load(sweep_file, [
        f"output_dir={out / 'runs'}", f"data.train_shards={curated / 'shards'}",
        f"tokenizer.path={tok}", f"eval.eval_dir={pool / 'eval'}"])
    train = sweep.trials[0][1].train
    layout = (f"back to back in {sweep.spec.max_concurrent_trials or 'several'} long-lived 1-worker Ray Train groups"
              if sweep.spec.pack_trials else f"each a {train.num_workers}-worker Ray Train run")
    t0 = step(f"4/5 sweep {sweep.name}: {len(sweep.trials)} trials ({', '.join(sweep.spec.axes)}) on Ray Tune, "
              f"{layout}, DeepSpeed ZeRO-{train.zero_stage}")
    folder = Path(sweep.root)  # the demo keeps everything under a local folder
    summary = launch(sweep, resume=(folder / "sweep.json").exists())
    if summary["errors"]:
        raise RuntimeError(f"demo sweep: trials failed: {summary['errors']}")
    table = Path(sweep.table_dir)
    outputs["results table"] = table
    outputs["sweep folder"] = folder
    outputs["W&B offline runs"] = folder / "<trial>" / "wandb"
    print(f"   {len(summary['ran'])} trials run, {len(summary['skipped_finished'])} already finished, "
          f"in {time.time() - t0:.0f}s")
    if summary["ran"]:
        from clipscale.train.timing import describe_split
        print(f"   where the trials' time went: {describe_split(folder / 'timings')}")

    t0 = step("5/5 analysis: figures and report from the results table")
    figures = make_all(table, out / "figures")
    outputs["figures"] = out / "figures"
    if "summary.json" in figures:  # the effects' verdicts; `clipscale demo` prints them last
        outputs["summary"] = figures["summary.json"]
    print(f"   {len(figures)} files in {time.time() - t0:.0f}s")
    return {"outputs": outputs, "curation": report, "wall_s": time.time() - t_demo}
