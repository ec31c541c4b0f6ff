"""The work on one shard, without Ray: the counting pass (language ID + matching, an index of
matches written next to the outputs, partial counts returned) and the sampling pass (keep
probabilities, the seeded draw, the curated shard and the decisions table).

A shard's partial counts are integers per (language, entry); summing them over shards in any
order gives the pool's counts exactly.
"""
from __future__ import annotations

import json
from collections import Counter, defaultdict
from pathlib import Path
from typing import Iterable

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from clipscale.atomic import atomic_path
from clipscale.curation.balance import keep_probability
from clipscale.curation.lid import LanguageIdentifier, caption_language
from clipscale.curation.matching import build_automaton, match_entries
from clipscale.curation.sampling import draw_keep, pick_caption
from clipscale.data.shards import MEMBER_PROBLEMS, Sample, iter_shard, write_shard

# Why a sample has no usable caption; counted from its caption rows, once each.
CAPTION_PROBLEMS = ("undecodable_caption", "no_caption")

INDEX_SCHEMA = pa.schema([
    ("key", pa.string()), ("caption_index", pa.int32()), ("language", pa.string()),
    ("lid_confidence", pa.float32()), ("lid_source", pa.string()),
    ("matched_entry_ids", pa.list_(pa.int32())), ("problem", pa.string()),
])
DECISIONS_SCHEMA = pa.schema(list(INDEX_SCHEMA) + [
    ("keep_prob", pa.float64()), ("chosen", pa.bool_()), ("kept", pa.bool_()),
])


def image_captions(text: str | None, meta: dict, captions_field: str) -> list[str | None]:
    """An image's captions: the ``.txt`` one first (None when unreadable, so indices stay
    stable), then the strings listed under ``captions_field`` in its json."""
    extra = meta.get(captions_field)
    extra = [c for c in extra if isinstance(c, str)] if isinstance(extra, list) else []
    return [text] + extra


def write_table_atomic(path: Path, table: pa.Table) -> None:
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp)


def write_json_atomic(path: Path, data, indent: int | None = None) -> None:
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as f:
        json.dump(data, f, ensure_ascii=False, sort_keys=indent is None, indent=indent)


class CaptionMatcher:
    """Language ID and matching for every caption; automata are built on first use of a
    language and kept for the life of the object (one per Ray actor), never per batch."""

    def __init__(self, metadata: dict[str, list[str]], trust_json_language: bool = True,
                 lid_max_chars: int = 2000, captions_field: str = "captions",
                 lid_languages: list[str] | None = None, entry_punctuation: str = "wrap"):
        self.metadata = metadata
        self.entry_punctuation = entry_punctuation
        self.trust_json_language = trust_json_language
        self.captions_field = captions_field
        self.lid = LanguageIdentifier(lid_max_chars, lid_languages)
        self.automata: dict = {}

    def automaton(self, lang: str):
        if lang not in self.automata:
            self.automata[lang] = build_automaton(self.metadata[lang], self.entry_punctuation)
        return self.automata[lang]

    def caption_rows(self, sample: Sample) -> list[dict]:
        """One index row per caption of the sample; ``problem`` says why a caption cannot match."""
        base = {"key": sample.key, "language": None, "lid_confidence": None, "lid_source": None,
                "matched_entry_ids": [], "problem": None}
        if any(p in MEMBER_PROBLEMS for p in sample.problems):
            return []  # a tar member that was not read: counted once, by its kind, in count_shard
        if sample.image is None:
            return [dict(base, caption_index=0, problem="no_image")]
        rows = []
        for i, caption in enumerate(image_captions(sample.text, sample.meta, self.captions_field)):
            row = dict(base, caption_index=i)
            rows.append(row)
            if caption is None:
                row["problem"] = next((p for p in sample.problems
                                       if p in CAPTION_PROBLEMS), "no_caption")
                continue
            if not caption.strip():
                row["problem"] = "empty_caption"
                continue
            # The json's language describes the .txt caption; further captions go through LID.
            meta = sample.meta if i == 0 else {}
            lang, confidence, source = caption_language(
                caption, meta, self.lid, self.trust_json_language, self.metadata)
            row.update(language=lang, lid_confidence=confidence, lid_source=source)
            if lang not in self.metadata:
                row["problem"] = "no_metadata"
                continue
            row["matched_entry_ids"] = match_entries(self.automaton(lang), caption)
            if not row["matched_entry_ids"]:
                row["problem"] = "no_match"
        return rows


def count_shard(shard: str, matcher: CaptionMatcher, index_path: Path) -> dict:
    """Counting pass over one shard: writes the index of matches, returns its partial counts
    and statistics (json-able). Samples are streamed; only this shard's index is held."""
    rows: list[dict] = []
    problems: Counter[str] = Counter()
    pool: Counter[str] = Counter()
    matched: Counter[str] = Counter()
    no_metadata: Counter[str] = Counter()
    counts: dict[str, Counter[int]] = defaultdict(Counter)
    samples = 0
    for sample in iter_shard(shard):
        samples += 1
        # Caption and image problems are counted from the rows below, once each.
        problems.update(p for p in sample.problems
                        if p not in (*CAPTION_PROBLEMS, "no_image"))
        for row in matcher.caption_rows(sample):
            rows.append(row)
            lang = row["language"]
            if row["problem"] not in (None, "no_match", "no_metadata"):
                problems[row["problem"]] += 1
            if lang is None:
                continue
            pool[lang] += 1
            if row["problem"] == "no_metadata":
                no_metadata[lang] += 1
            if row["matched_entry_ids"]:
                matched[lang] += 1
                counts[lang].update(row["matched_entry_ids"])
    write_table_atomic(index_path, pa.Table.from_pylist(rows, schema=INDEX_SCHEMA))
    return {"shard": shard, "samples": samples, "captions": len(rows), "problems": dict(problems),
            "pool": dict(pool), "matched": dict(matched), "no_metadata": dict(no_metadata),
            "counts": {lang: {str(e): n for e, n in c.items()} for lang, c in counts.items()}}


def _group_rows(index: pa.Table) -> dict[str, list[dict]]:
    by_key: dict[str, list[dict]] = defaultdict(list)
    for row in index.to_pylist():
        by_key[row["key"]].append(row)
    return by_key


def sample_shard(shard: str, index_path: Path, p_e: dict[str, np.ndarray], out_path: Path,
                 decisions_path: Path, mode: str, seed: int, captions_field: str) -> dict:
    """Sampling pass over one shard: noisy-OR keep probability per caption, one matched caption
    per image picked and drawn (seeded by the key), the curated shard (offline: kept samples;
    online: every sample with a match, keep probabilities in its json) and the decisions table."""
    by_key = _group_rows(pq.read_table(index_path))
    decisions: list[dict] = []
    kept_by_lang: Counter[str] = Counter()
    kept_counts: dict[str, Counter[int]] = defaultdict(Counter)

    def curated() -> Iterable[Sample]:
        for sample in iter_shard(shard):
            rows = by_key.get(sample.key, [])
            for row in rows:
                lang = row["language"]
                row["keep_prob"] = (keep_probability(row["matched_entry_ids"], p_e[lang])
                                    if lang in p_e else 0.0)
                row["chosen"] = row["kept"] = False
            decisions.extend(rows)
            keep_probs = [r["keep_prob"] for r in rows]
            chosen = pick_caption([i for i, p in enumerate(keep_probs) if p > 0.0], seed, sample.key)
            if chosen is None:
                continue
            row = rows[chosen]
            row["chosen"] = True
            row["kept"] = draw_keep(row["keep_prob"], seed, sample.key)
            if row["kept"]:
                kept_by_lang[row["language"]] += 1
                kept_counts[row["language"]].update(row["matched_entry_ids"])
            if mode == "offline" and not row["kept"]:
                continue
            yield _curated_sample(sample, rows, chosen, mode, seed, captions_field)

    written = write_shard(out_path, curated())
    write_table_atomic(decisions_path, pa.Table.from_pylist(decisions, schema=DECISIONS_SCHEMA))
    return {"shard": shard, "written": written, "kept": dict(kept_by_lang),
            "kept_counts": {lang: {str(e): n for e, n in c.items()} for lang, c in kept_counts.items()}}


def _curated_sample(sample: Sample, rows: list[dict], chosen: int, mode: str, seed: int,
                    captions_field: str) -> Sample:
    row = rows[chosen]
    meta = dict(sample.meta)
    if mode == "offline":
        # The picked caption becomes the sample's caption; its language is recorded.
        captions = image_captions(sample.text, sample.meta, captions_field)
        meta.pop(captions_field, None)
        meta["language"] = row["language"]
        meta["curation"] = {"keep_prob": row["keep_prob"], "caption_index": chosen,
                            "lid_confidence": row["lid_confidence"], "lid_source": row["lid_source"]}
        text = captions[chosen]
    else:
        # Online: every matched sample is written with its keep probabilities; training draws
        # over them every epoch (train/online_stream.py, README "Online curation in training").
        meta["language"] = rows[0]["language"] or row["language"]
        meta["curation"] = {"keep_probs": [r["keep_prob"] for r in rows],
                            "languages": [r["language"] for r in rows],
                            "seed": seed, "captions_field": captions_field}
        text = sample.text
    return Sample(key=sample.key, image=sample.image, image_ext=sample.image_ext, text=text,
                  meta=meta)
