"""Statistical power of the report's three effects at a demo-sized grid: how often each is resolved.

A grid like the demo's (3 model sizes x 3 image-token lengths x 2 language mixes, one step of samples seen)
with planted effects: full-length zero-shot accuracy 0.10 / 0.15 / 0.20 by size; accuracy lost at the
shortest tokens 0.08 / 0.05 / 0.02 (difference of drops 0.06, CLIPA's direction); worldwide training's
English gap -0.04 / -0.02 / 0.00 (change 0.04, Meta CLIP 2's direction). Every accuracy is drawn as
Binomial(n, p)/n over 100 classes, per language (p floored at chance); the effects are computed as the report does
(analysis/effects.py) and the share of draws each is resolved in is printed for each eval size and seed
count. It says how many eval images (and seeds) a sweep needs before its effects can be resolved.

    python benchmarks/effect_power.py [--draws 10] [--sizes 300 1000] [--seeds 1 3]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from analysis.effects import RESOLVED, all_effects  # noqa: E402
from analysis.load import results_frame  # noqa: E402

LANGS = "en es ja ko pt it fr de fa id zh ru tr ar".split()
# name: (params, full-length accuracy, drop at the shortest length, English gap of the worldwide mix)
MODELS = {"small": (3e5, 0.10, 0.08, -0.04), "medium": (1e6, 0.15, 0.05, -0.02), "large": (3e6, 0.20, 0.02, 0.0)}
TOKENS = {4: 1.0, 16: 0.4, 64: 0.0}  # share of the drop at each length
CHANCE = 0.01  # 100 classes; a planted accuracy below it is floored there


def grid(n: int, seeds: int, rng: np.random.Generator):
    rows = []
    for model, (params, full, drop, gap) in MODELS.items():
        for tokens, share in TOKENS.items():
            for mix in ("english-only", "worldwide"):
                for seed in range(seeds):
                    acc = full - drop * share
                    flops = 6 * params * (tokens + 16)
                    row = {"run_id": f"{model}-{tokens}-{mix}-{seed}", "sweep": "power", "model": model,
                           "image_size": 32, "patch_size": 8, "image_tokens": tokens, "text_tokens": 16,
                           "image_reduction": "resize", "text_reduction": "truncate",
                           "languages": "en" if mix == "english-only" else ",".join(LANGS),
                           "english_share": 1.0 if mix == "english-only" else 0.35, "seed": seed,
                           "samples_seen": 100_000, "params": int(params), "train_flops_per_sample": flops,
                           "compute": flops * 1e5, "wall_time_s": 1.0, "status": "finished",
                           "timestamp": "", "zeroshot_classes": 100}
                    for lang in LANGS:
                        p = acc + gap if lang == "en" and mix == "worldwide" else \
                            acc if lang == "en" else acc * (0.9 if mix == "worldwide" else 0.3)
                        row[f"zeroshot_top1_{lang}"] = rng.binomial(n, max(p, CHANCE)) / n
                        row[f"zeroshot_n_{lang}"] = n
                    row["zeroshot_top1_mean"] = float(np.mean([row[f"zeroshot_top1_{x}"] for x in LANGS]))
                    rows.append(row)
    return results_frame(rows)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--draws", type=int, default=10)
    ap.add_argument("--sizes", type=int, nargs="+", default=[300, 1000], help="zero-shot images per language")
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 3], help="runs per grid cell")
    ap.add_argument("--resamples", type=int, default=300)
    args = ap.parse_args(argv)
    print("eval images  seeds  resolved share: (a) inverse scaling  (b) English gap  (c) power law")
    for n in args.sizes:
        for seeds in args.seeds:
            rng = np.random.default_rng(0)
            hits = np.zeros(3)
            for draw in range(args.draws):
                effects = all_effects(grid(n, seeds, rng), n_resamples=args.resamples, seed=draw)
                hits += [e.verdict == RESOLVED for e in effects]
            a, b, c = hits / args.draws
            print(f"{n:11d}  {seeds:5d}  {a:34.2f}  {b:15.2f}  {c:13.2f}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
