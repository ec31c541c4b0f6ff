"""``clipscale curate``: the Ray Data curation job.

Shards flow through two actor pools (``map_batches`` with a callable class, one shard per batch
so memory is bounded by one shard whatever the pool size):

1. counting pass: language ID + matching per caption; each shard writes its index of matches and
   returns its partial counts; the driver sums them (integers: exact in any order);
2. thresholds: t_lang per language from the English tail share, p_e per entry (driver);
3. sampling pass: keep probabilities, the seeded draw, curated shards and decisions tables.

Each finished shard leaves a small marker, so a re-run skips it (resume after a crash).
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import time
from pathlib import Path

import numpy as np

from clipscale.curation.balance import entry_probabilities, language_thresholds
from clipscale.curation.config import CurationConfig
from clipscale.curation.metadata import load_metadata
from clipscale.curation.report import build_report, write_report
from clipscale.curation.shard_pass import CaptionMatcher, count_shard, sample_shard, write_json_atomic
from clipscale.data.shards import ShardError, list_shards
from clipscale.errors import ClipscaleError
from clipscale.ray_setup import init_ray


class CurationError(ClipscaleError, RuntimeError):
    """A curation that cannot go on (inconsistent output folder, unusable pool)."""


class _Layout:
    """Where each output lives under the output folder."""

    def __init__(self, output: str | os.PathLike):
        self.root = Path(output).absolute()
        self.shards = self.root / "shards"
        self.decisions = self.root / "decisions"
        self.work = self.root / "_work"
        self.index = self.work / "index"
        self.counted = self.work / "counted"
        self.sampled = self.work / "sampled"
        self.state = self.work / "state.json"
        self.entry_probs = self.root / "entry_probs.npz"
        self.thresholds = self.root / "thresholds.json"
        self.report = self.root / "curation_report.json"
        self.plot = self.root / "curation_report.png"


class _CountActor:
    """Counting pass worker: loads the metadata and keeps one automaton per language for its
    whole life (built on the language's first caption), across every shard it is given."""

    def __init__(self, output: str, metadata_dir: str, languages, add_numbers: bool,
                 trust_json_language: bool, lid_max_chars: int, lid_languages, captions_field: str,
                 entry_punctuation: str = "wrap"):
        self.layout = _Layout(output)
        metadata = load_metadata(metadata_dir, languages, add_numbers)
        self.matcher = CaptionMatcher(metadata, trust_json_language, lid_max_chars, captions_field,
                                      lid_languages, entry_punctuation)

    def __call__(self, batch: dict) -> dict:
        return {"result": np.array([json.dumps(self.one(str(s))) for s in batch["shard"]], dtype=object)}

    def one(self, shard: str) -> dict:
        name = Path(shard).name
        marker = self.layout.counted / f"{name}.json"
        if marker.exists():
            return dict(json.loads(marker.read_text(encoding="utf-8")), resumed=True)
        started = time.perf_counter()
        try:
            result = count_shard(shard, self.matcher, self.layout.index / f"{name}.parquet")
        except ShardError as e:
            # A corrupt shard is reported and skipped; no marker, so a re-run tries it again.
            return {"shard": shard, "error": e.reason}
        result["seconds"] = time.perf_counter() - started
        write_json_atomic(marker, result)
        return result


class _SampleActor:
    """Sampling pass worker: loads p_e once; a shard's marker records the probabilities it was
    drawn with, so a re-run with other thresholds redraws instead of reusing stale shards."""

    def __init__(self, output: str, probs_digest: str, mode: str, seed: int, captions_field: str):
        self.layout = _Layout(output)
        with np.load(self.layout.entry_probs) as f:
            self.p_e = {lang: f[lang] for lang in f.files}
        self.probs_digest, self.mode, self.seed, self.captions_field = probs_digest, mode, seed, captions_field

    def __call__(self, batch: dict) -> dict:
        return {"result": np.array([json.dumps(self.one(str(s))) for s in batch["shard"]], dtype=object)}

    def one(self, shard: str) -> dict:
        name = Path(shard).name
        marker = self.layout.sampled / f"{name}.json"
        if marker.exists():
            done = json.loads(marker.read_text(encoding="utf-8"))
            if done.get("probs_digest") == self.probs_digest:
                return dict(done, resumed=True)
        started = time.perf_counter()
        try:
            result = sample_shard(shard, self.layout.index / f"{name}.parquet", self.p_e,
                                  self.layout.shards / name,
                                  self.layout.decisions / f"{Path(name).stem}.parquet",
                                  self.mode, self.seed, self.captions_field)
        except ShardError as e:  # unreadable since the counting pass
            return {"shard": shard, "error": e.reason}
        result["probs_digest"] = self.probs_digest
        result["seconds"] = time.perf_counter() - started
        write_json_atomic(marker, result)
        return result


def _run_pass(actor_cls, shards: list[str], kwargs: dict, cfg: CurationConfig, desc: str,
              progress: bool, totals: dict[str, np.ndarray], field: str) -> list[dict]:
    """Run one pass; each shard's partial counts (``field``) are added into ``totals`` as they
    arrive and dropped, so the driver holds one array per language, not one per shard."""
    import ray.data
    from tqdm import tqdm

    logging.getLogger("ray.data").setLevel(logging.WARNING)  # per-dataset INFO lines drown the bar
    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = False  # one tqdm bar over shards instead of Ray's per-operator bars
    ctx.print_on_execution_start = False
    ds = ray.data.from_items([{"shard": s} for s in shards], override_num_blocks=len(shards))
    ds = ds.map_batches(actor_cls, fn_constructor_kwargs=kwargs, batch_size=1, batch_format="numpy",
                        compute=ray.data.ActorPoolStrategy(size=_pool_size(cfg, len(shards))),
                        num_cpus=cfg.cpus_per_worker)
    results = []
    with tqdm(total=len(shards), desc=desc, unit="shard", disable=not progress) as bar:
        for row in ds.iter_rows():
            result = json.loads(row["result"])
            add_counts(totals, result.pop(field, {}))
            results.append(result)
            bar.update(1)
    return sorted(results, key=lambda r: r["shard"])


def _pool_size(cfg: CurationConfig, n_shards: int) -> int:
    """Actors that can all be placed: an actor pool asking for more CPUs than the cluster has
    waits forever (the few-CPU trap), so the pool shrinks to fit, and says so."""
    import ray

    cpus = float(ray.cluster_resources().get("CPU", 0.0))
    if cpus < cfg.cpus_per_worker:
        raise CurationError(f"Ray has {cpus:g} CPUs; each curation worker asks for "
                            f"{cfg.cpus_per_worker:g} (lower cpus_per_worker)")
    size = min(cfg.workers, n_shards, int(cpus // cfg.cpus_per_worker))
    if size < min(cfg.workers, n_shards):
        logging.getLogger(__name__).warning(
            "curation: %d workers asked, %g CPUs at %g each: running %d",
            cfg.workers, cpus, cfg.cpus_per_worker, size)
    return size


def _check_state(layout: _Layout, fingerprint: str, overwrite: bool) -> None:
    if layout.state.exists():
        previous = json.loads(layout.state.read_text(encoding="utf-8")).get("fingerprint")
        if previous != fingerprint:
            if not overwrite:
                raise CurationError(
                    f"{layout.root} holds a curation made with another config or metadata; "
                    "choose another output folder or set overwrite: true")
            for folder in (layout.shards, layout.decisions, layout.work):
                shutil.rmtree(folder, ignore_errors=True)
    write_json_atomic(layout.state, {"fingerprint": fingerprint})


def add_counts(totals: dict[str, np.ndarray], partial: dict[str, dict[str, int]]) -> None:
    """Add one shard's partial counts ``{lang: {entry_id: n}}`` into ``totals`` (int64, exact)."""
    for lang, by_entry in partial.items():
        ids = np.fromiter((int(e) for e in by_entry), dtype=np.int64, count=len(by_entry))
        np.add.at(totals[lang], ids, np.fromiter(by_entry.values(), dtype=np.int64, count=len(by_entry)))


def run_curation(cfg: CurationConfig, progress: bool = True) -> dict:
    """Curate ``cfg.input`` into ``cfg.output``; returns the report (also written as json)."""
    started = time.time()
    shards = list_shards(cfg.input)
    names = [Path(s).name for s in shards]
    if len(set(names)) != len(names):
        raise CurationError("two pool shards share a file name; curated shards keep input names")
    metadata = load_metadata(cfg.metadata, cfg.languages, cfg.add_numbers)
    layout = _Layout(cfg.output)
    layout.root.mkdir(parents=True, exist_ok=True)
    _check_state(layout, cfg.fingerprint(metadata), cfg.overwrite)
    init_ray(use_gpu=False, num_cpus=cfg.num_cpus)
    zeros = {lang: np.zeros(len(entries), dtype=np.int64) for lang, entries in metadata.items()}

    counts = {lang: z.copy() for lang, z in zeros.items()}
    count_results = _run_pass(_CountActor, shards, dict(
        output=str(layout.root), metadata_dir=str(Path(cfg.metadata).absolute()),
        languages=list(metadata), add_numbers=cfg.add_numbers,
        trust_json_language=cfg.trust_json_language, lid_max_chars=cfg.lid_max_chars,
        lid_languages=cfg.lid_languages, captions_field=cfg.captions_field,
        entry_punctuation=cfg.entry_punctuation),
        cfg, "count", progress, counts, "counts")
    counted = [r["shard"] for r in count_results if "error" not in r]
    t_lang, english_tail_share, t_en = language_thresholds(
        counts, cfg.english, cfg.t_en, cfg.tail_share_target)
    p_e = {lang: entry_probabilities(counts[lang], t) for lang, t in t_lang.items()}
    np.savez(layout.entry_probs, **p_e)
    write_json_atomic(layout.thresholds, {"t_lang": t_lang, "t_en": t_en,
                                          "english_tail_share": english_tail_share})
    digest = hashlib.sha256(b"".join(lang.encode() + p_e[lang].tobytes() for lang in sorted(p_e)))
    digest.update(f"{cfg.mode}:{cfg.seed}".encode())

    kept_counts = {lang: z.copy() for lang, z in zeros.items()}
    sample_results = _run_pass(_SampleActor, counted, dict(
        output=str(layout.root), probs_digest=digest.hexdigest()[:16], mode=cfg.mode,
        seed=cfg.seed, captions_field=cfg.captions_field),
        cfg, "sample", progress, kept_counts, "kept_counts")
    report = build_report(cfg, shards, count_results, sample_results, counts, kept_counts, t_lang,
                          t_en, english_tail_share, wall_s=time.time() - started)
    write_report(report, counts, kept_counts, t_lang, layout.report, layout.plot)
    return report
