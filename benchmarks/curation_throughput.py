"""Curation throughput: captions/s per core for language ID + matching + sampling.

Compares, in one run, on the same captions (CLDR emoji names in the emoji package's 14 languages,
Zipf-distributed, 1-3 names a caption):

- ours: the production per-caption path (``CaptionMatcher``: py3langid + the language's automaton,
  noisy-OR keep probability, the seeded draw), one process;
- reference: a plain single-process loop, one pyahocorasick automaton over every language's
  entries, one caption at a time in Python (py3langid, match, noisy-OR, ``random.random``);
- naive: the same with Meta CLIP 1's loop over entries (``entry in text``) instead of an automaton;
- matching alone (no LID), automaton vs naive loop, to show where the time goes;
- the Ray Data job end to end (``run_curation``: read shards, both passes, write shards) with 1..N
  workers, captions/s overall and per worker.

    python benchmarks/curation_throughput.py [--captions 20000] [--naive-captions 1000] [--workers 1 2]
"""
from __future__ import annotations

import argparse
import json
import random
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from clipscale.curation.balance import entry_probabilities, keep_probability
from clipscale.curation.lid import LanguageIdentifier
from clipscale.curation.matching import (build_automaton, match_entries, match_entries_naive,
                                         normalize_caption, pad_entry)
from clipscale.curation.metadata import bundled_lexicon_languages, clean_entries, emoji_cldr_lexicon
from clipscale.curation.sampling import draw_keep
from clipscale.curation.shard_pass import CaptionMatcher
from clipscale.data.shards import Sample


def make_captions(n: int, metadata: dict[str, list[str]], seed: int = 0) -> list[tuple[str, str]]:
    rng = random.Random(seed)
    langs = sorted(metadata)
    names = {lang: metadata[lang][:1500] for lang in langs}
    ranks = np.arange(1, 1501)
    zipf = (1.0 / ranks) / (1.0 / ranks).sum()
    np_rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        lang = "en" if rng.random() < 0.35 else rng.choice(langs)
        k = rng.randint(1, 3)
        words = [names[lang][i] for i in np_rng.choice(1500, size=k, p=zipf)]
        out.append((lang, f"{rng.randint(1, 9)} " + ", ".join(words)))
    return out


def timed(fn, *args) -> float:
    t0 = time.perf_counter()
    fn(*args)
    return time.perf_counter() - t0


def ours(matcher: CaptionMatcher, p_e: dict, captions) -> None:
    for i, (_, text) in enumerate(captions):
        for row in matcher.caption_rows(Sample(key=str(i), image=b"x", text=text)):
            if row["matched_entry_ids"]:
                p = keep_probability(row["matched_entry_ids"], p_e[row["language"]])
                draw_keep(p, 0, str(i))


def reference(lid: LanguageIdentifier, automaton, p_flat: list[float], captions, rng) -> None:
    for _, text in captions:
        lid.identify(text)
        ids = {i for _, ids in automaton.iter(normalize_caption(text)) for i in ids}
        keep = 1.0
        for i in ids:
            keep *= 1.0 - p_flat[i]
        _ = rng.random() < 1.0 - keep if ids else False


def naive(lid: LanguageIdentifier, padded: list[str], p_flat: list[float], captions, rng) -> None:
    for _, text in captions:
        lid.identify(text)
        ids = match_entries_naive(padded, text)
        keep = 1.0
        for i in ids:
            keep *= 1.0 - p_flat[i]
        _ = rng.random() < 1.0 - keep if ids else False


def ray_scaling(captions, metadata, workers_list, shards: int) -> list[tuple]:
    import ray

    from clipscale.curation.config import CurationConfig
    from clipscale.curation.job import run_curation
    from clipscale.curation.metadata import write_metadata
    from clipscale.data.shards import write_tar
    from clipscale.ray_setup import init_ray

    root = Path(tempfile.mkdtemp(prefix="curation-bench-"))
    try:
        for lang, entries in metadata.items():
            write_metadata(root / "meta", lang, entries)
        per = -(-len(captions) // shards)
        for s in range(shards):
            write_tar(root / "pool" / f"{s:05d}.tar",
                      [Sample(key=f"{s}-{i}", image=b"\x89PNG", image_ext="png", text=t, meta={})
                       for i, (_, t) in enumerate(captions[s * per:(s + 1) * per])])
        init_ray(num_cpus=max(workers_list))
        out = []
        for w in workers_list:
            cfg = CurationConfig(input=str(root / "pool"), output=str(root / f"out{w}"),
                                 metadata=str(root / "meta"), workers=w, t_en=200,
                                 trust_json_language=False)
            t = timed(run_curation, cfg, False)
            # Inside the actors: captions per second of shard work (count pass: LID + matching;
            # sample pass: keep probability + draw + writing), i.e. per busy core.
            busy = {p: sum(json.loads(f.read_text())["seconds"]
                           for f in (root / f"out{w}" / "_work" / p).glob("*.json"))
                    for p in ("counted", "sampled")}
            out.append((w, len(captions) / t, len(captions) / busy["counted"],
                        len(captions) / busy["sampled"]))
        ray.shutdown()
        return out
    finally:
        shutil.rmtree(root, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--captions", type=int, default=20000)
    ap.add_argument("--naive-captions", type=int, default=1000)
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--shards", type=int, default=8)
    ap.add_argument("--ray-captions", type=int, default=40000)
    args = ap.parse_args()

    metadata = {lang: clean_entries(emoji_cldr_lexicon(lang)) for lang in bundled_lexicon_languages()}
    captions = make_captions(args.captions, metadata)
    n_entries = sum(len(e) for e in metadata.values())
    print(f"{len(metadata)} languages, {n_entries} entries, {len(captions)} captions")

    matcher = CaptionMatcher(metadata, trust_json_language=False)
    # p_e from this set's own counts, as the job would derive them.
    counts = {lang: np.zeros(len(e), dtype=np.int64) for lang, e in metadata.items()}
    for lang, text in captions:
        counts[lang][match_entries(matcher.automaton(lang), text)] += 1
    p_e = {lang: entry_probabilities(c, 50) for lang, c in counts.items()}
    flat_entries = [e for lang in sorted(metadata) for e in metadata[lang]]
    p_flat = [float(p) for lang in sorted(metadata) for p in p_e[lang]]
    t0 = time.perf_counter()
    one_automaton = build_automaton(flat_entries)
    build_s = time.perf_counter() - t0
    padded = [pad_entry(e) for e in flat_entries]
    lid, rng = matcher.lid, random.Random(0)
    for lang in metadata:  # build every automaton before timing
        matcher.automaton(lang)
    small = captions[: args.naive_captions]

    rows = [
        ("ours (CaptionMatcher + noisy-OR + seeded draw)", len(captions), timed(ours, matcher, p_e, captions)),
        ("reference (one pyahocorasick automaton, plain loop)", len(captions),
         timed(reference, lid, one_automaton, p_flat, captions, rng)),
        ("naive loop over entries", len(small), timed(naive, lid, padded, p_flat, small, rng)),
        ("matching only: automaton", len(captions),
         timed(lambda: [match_entries(one_automaton, t) for _, t in captions])),
        ("matching only: naive loop", len(small),
         timed(lambda: [match_entries_naive(padded, t) for _, t in small])),
        ("LID only (py3langid)", len(captions), timed(lambda: [lid.identify(t) for _, t in captions])),
    ]
    print(f"one automaton over {len(flat_entries)} entries built in {build_s:.2f} s")
    print(f"{'single process, 1 core':55s} {'captions':>9s} {'captions/s':>11s}")
    for name, n, secs in rows:
        print(f"{name:55s} {n:9d} {n / secs:11.0f}")

    ray_caps = make_captions(args.ray_captions, metadata, seed=1)
    print(f"\nRay Data job end to end ({len(ray_caps)} captions, {args.shards} tar shards, LID on):")
    print(f"{'workers':>7s} {'captions/s':>11s} {'per worker':>11s} {'count pass/core':>16s} "
          f"{'sample pass/core':>17s}")
    for w, rate, count_rate, sample_rate in ray_scaling(ray_caps, metadata, args.workers, args.shards):
        print(f"{w:7d} {rate:11.0f} {rate / w:11.0f} {count_rate:16.0f} {sample_rate:17.0f}")


if __name__ == "__main__":
    main()
