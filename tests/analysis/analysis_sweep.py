"""A synthetic sweep with known structure, shared by the analysis tests (imported by name: no conftest,
so this folder needs no __init__.py that would shadow the analysis package).

Error falls with parameters and samples seen (a Chinchilla-like surface), shorter token sequences cost
accuracy less the larger the model (inverse scaling), and worldwide training costs English accuracy only
for small models (the curse of multilinguality).
"""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import numpy as np  # noqa: E402

LANGS = "en es ja ko pt it fr de fa id zh ru tr ar".split()
MODELS = {"tiny": 1e6, "small": 4e6, "base": 1.6e7}
SAMPLES = (1e5, 3e5, 1e6)
FULL_IMAGE, FULL_TEXT = 64, 32


EVAL_N, CLASSES = 1000, 100  # zero-shot images scored per language and classes: chance is 1%


def synthetic_rows(seed: int = 0) -> list[dict]:
    rng = np.random.default_rng(seed)
    rows = []
    configs = [(i, FULL_TEXT) for i in (16, 36, 64)] + [(FULL_IMAGE, t) for t in (8, 16)]
    for model, params in MODELS.items():
        for image_tokens, text_tokens in configs:
            for samples in SAMPLES:
                for mix in ("english-only", "worldwide"):
                    run_id = f"{model}-i{image_tokens}-t{text_tokens}-s{int(samples)}-{mix}"
                    flops = 6.0 * params * (image_tokens + text_tokens)
                    loss = 1.5 + 400.0 / params ** 0.35 + 300.0 / samples ** 0.3
                    error = 0.15 + 2.0 * params ** -0.15 + 5.0 * samples ** -0.25
                    # token reduction hurts less as the model grows (CLIPA's inverse scaling)
                    penalty = 40.0 / params ** 0.5 * (FULL_IMAGE / image_tokens - 1 + 0.5 * (FULL_TEXT / text_tokens - 1))
                    acc_en = 1.0 - error - penalty + float(rng.normal(0, 0.001))
                    # worldwide data costs English accuracy below some capacity; "small" recovers at the largest scale
                    if mix == "english-only":
                        gap = 0.0
                    elif model == "tiny" or (model == "small" and samples < 1e6):
                        gap = -0.03
                    else:
                        gap = 0.004
                    acc = {"en": acc_en + gap}
                    for lang in LANGS[1:]:
                        base = acc_en - (0.25 if mix == "english-only" else 0.06)
                        acc[lang] = base + float(rng.normal(0, 0.001))
                    row = {"run_id": run_id, "sweep": "synthetic", "model": model, "image_size": 64,
                           "patch_size": 8, "image_tokens": image_tokens, "text_tokens": text_tokens,
                           "image_reduction": "resize", "text_reduction": "truncate",
                           "languages": "en" if mix == "english-only" else ",".join(LANGS),
                           "english_share": 1.0 if mix == "english-only" else 0.5, "seed": 0,
                           "samples_seen": int(samples), "params": int(params), "train_flops_per_sample": flops,
                           "compute": flops * samples, "wall_time_s": 10.0, "status": "finished",
                           "timestamp": "2026-01-01T00:00:00Z", "loss": loss * float(np.exp(rng.normal(0, 0.003)))}
                    for lang, a in acc.items():
                        row[f"zeroshot_top1_{lang}"] = a
                        row[f"i2t_r1_{lang}"] = min(1.0, a + 0.05)
                        row[f"zeroshot_n_{lang}"] = EVAL_N
                    row["zeroshot_classes"] = CLASSES
                    row["zeroshot_top1_mean"] = float(np.mean(list(acc.values())))
                    row["zeroshot_top1_non_en"] = float(np.mean([acc[x] for x in LANGS[1:]]))
                    rows.append(row)
    # an intermediate evaluation: analyses must use each run's last one
    first = dict(rows[0], samples_seen=50_000, status="running", zeroshot_top1_mean=0.01)
    rows.append(first)
    return rows
