"""``curation_report.json`` and its plot: per language, pool, matched, kept, t_lang, tail share,
and the entry-count distribution before and after balancing (head flattened, tail kept)."""
from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np

from clipscale.curation.balance import tail_share


def log2_histogram(counts: np.ndarray) -> dict:
    """Entries per count bin [2^k, 2^(k+1)); entries never matched are left out (``zero``)."""
    counts = np.asarray(counts, dtype=np.int64)
    positive = counts[counts > 0]
    if positive.size == 0:
        return {"bin_lower_edges": [], "entries": [], "zero": int(counts.size)}
    bins = np.floor(np.log2(positive)).astype(np.int64)
    per_bin = np.bincount(bins)
    return {"bin_lower_edges": [int(2 ** k) for k in range(per_bin.size)],
            "entries": per_bin.tolist(), "zero": int(counts.size - positive.size)}


def language_summary(before: np.ndarray, after: np.ndarray, t: int) -> dict:
    """Head = entries counted above t_lang before balancing; tail = the rest."""
    head = before > t
    tail_before = int(before[~head].sum())
    return {
        "entries": int(before.size), "matched_entries": int((before > 0).sum()),
        "head_entries": int(head.sum()),
        "head_matches_before": int(before[head].sum()), "head_matches_after": int(after[head].sum()),
        "tail_matches_before": tail_before, "tail_matches_after": int(after[~head].sum()),
        "tail_kept_share": (int(after[~head].sum()) / tail_before) if tail_before else None,
        "max_entry_count_before": int(before.max(initial=0)),
        "max_entry_count_after": int(after.max(initial=0)),
        "histogram_before": log2_histogram(before), "histogram_after": log2_histogram(after),
    }


def _total(results: list[dict], field: str) -> Counter:
    total: Counter = Counter()
    for r in results:
        total.update(r.get(field, {}))
    return total


def build_report(cfg, shards, count_results, sample_results, counts, kept_counts, t_lang, t_en,
                 english_tail_share, wall_s: float) -> dict:
    pool, matched = _total(count_results, "pool"), _total(count_results, "matched")
    kept = _total(sample_results, "kept")
    errors = [{"shard": r["shard"], "reason": r["error"]}
              for r in count_results + sample_results if "error" in r]
    languages = {}
    for lang in sorted(counts):
        if lang not in t_lang:
            continue  # a metadata language absent from the pool
        entry = {"pool": int(pool[lang]), "matched": int(matched[lang]), "kept": int(kept[lang]),
                 "t_lang": int(t_lang[lang]), "tail_share": tail_share(counts[lang], t_lang[lang])}
        entry.update(language_summary(counts[lang], kept_counts[lang], t_lang[lang]))
        languages[lang] = entry
    return {
        "mode": cfg.mode, "seed": cfg.seed, "english": cfg.english, "t_en": int(t_en),
        "english_tail_share": english_tail_share, "target_tail_share": cfg.tail_share_target,
        "kept_means": "the draw written" if cfg.mode == "offline" else "the epoch-0 draw",
        "shards": {"total": len(shards), "counted": sum("error" not in r for r in count_results),
                   "sampled": sum("error" not in r for r in sample_results),
                   "resumed": sum(bool(r.get("resumed")) for r in sample_results),
                   "corrupt": errors},
        "samples": sum(r.get("samples", 0) for r in count_results),
        "captions": sum(r.get("captions", 0) for r in count_results),
        "written": sum(r.get("written", 0) for r in sample_results),
        "problems": dict(sorted(_total(count_results, "problems").items())),
        "no_metadata_languages": dict(_total(count_results, "no_metadata").most_common()),
        "languages": languages,
        "wall_s": round(wall_s, 2),
    }


def plot_entry_counts(counts: dict, kept_counts: dict, t_lang: dict, path: Path) -> None:
    """Per language: entry counts by rank (log-log), before and after balancing, with t_lang."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    langs = [lang for lang in sorted(t_lang) if counts[lang].sum() > 0]
    cols = min(4, max(1, len(langs)))
    rows = -(-len(langs) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4 * cols, 3 * rows), squeeze=False)
    for ax, lang in zip(axes.flat, langs):
        order = np.argsort(-counts[lang], kind="stable")
        before, after = counts[lang][order], kept_counts[lang][order]
        ranks = np.arange(1, before.size + 1)
        ax.loglog(ranks[before > 0], before[before > 0], label="before", lw=1.5)
        ax.loglog(ranks[after > 0], after[after > 0], ".", ms=2, label="after")
        ax.axhline(t_lang[lang], color="k", ls="--", lw=0.8, label="t_lang")
        ax.set_title(f"{lang} (t={t_lang[lang]})", fontsize=9)
        ax.set_xlabel("entry rank", fontsize=8)
        ax.set_ylabel("captions", fontsize=8)
    for ax in list(axes.flat)[len(langs):]:
        ax.axis("off")
    if langs:
        axes.flat[0].legend(fontsize=7)
    fig.suptitle("entry counts before / after balancing (head flattened, tail kept)")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def write_report(report: dict, counts, kept_counts, t_lang, json_path: Path, plot_path: Path) -> None:
    from clipscale.curation.shard_pass import write_json_atomic

    report["plot"] = plot_path.name
    plot_entry_counts(counts, kept_counts, t_lang, plot_path)
    write_json_atomic(json_path, report, indent=1)
