"""``clipscale curate`` and ``clipscale curate build-metadata``.

``register(subparsers)`` adds the verb to the ``clipscale`` dispatcher's argparse subparsers; each
parser sets ``func`` (taking the parsed args, returning an exit code).
"""
from __future__ import annotations

import argparse
import json
import sys


def register(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "curate", help="curate a raw pool into a balanced worldwide training set (Meta CLIP 2)",
        description="Language ID, per-language metadata matching, per-language balancing, "
                    "noisy-OR sampling. Flags override the --config file's fields.")
    p.add_argument("--config", help="YAML CurationConfig (fields as in clipscale.curation.config)")
    p.add_argument("--input", nargs="+", help="pool shards: folder, glob or files")
    p.add_argument("--output", help="output folder")
    p.add_argument("--metadata", help="metadata folder (LANG.txt per language)")
    p.add_argument("--languages", nargs="+", help="metadata languages to use (default: all files)")
    p.add_argument("--lid-languages", nargs="+", help="restrict language ID to these codes")
    p.add_argument("--mode", choices=["offline", "online"])
    p.add_argument("--seed", type=int)
    p.add_argument("--t-en", type=int, help="English threshold (exclusive with --tail-share)")
    p.add_argument("--tail-share", type=float, help="target English tail share (default 0.06)")
    p.add_argument("--entry-punctuation", choices=["wrap", "metaclip"],
                   help="entries with , . ; : ? ! `: wrap (default, they can match) or metaclip "
                        "(padded as written, as Meta CLIP 2 does: they never match)")
    p.add_argument("--workers", type=int, help="Ray Data actors")
    p.add_argument("--num-cpus", type=int, help="CPUs for a local Ray")
    p.add_argument("--no-trust-json-language", action="store_true",
                   help="run language ID even where the sample json names a language")
    p.add_argument("--overwrite", action="store_true", help="replace a curation made with another config")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=run_curate)

    verbs = p.add_subparsers(dest="curate_verb", metavar="{build-metadata}")
    b = verbs.add_parser("build-metadata", help="write LANG.txt metadata files",
                         description="Entries from a text corpus (unigrams over a count, bigrams "
                                     "over a PMI, numbers 0-99) and/or the bundled CLDR emoji lexicons.")
    b.add_argument("--out", required=True, help="metadata folder to write into")
    b.add_argument("--corpus", nargs="+", default=[], help="UTF-8 text files, one document a line")
    b.add_argument("--lang", help="language of --corpus")
    b.add_argument("--min-count", type=int, default=100, help="unigram count cut")
    b.add_argument("--min-pmi", type=float, default=30.0, help="bigram PMI cut (natural log)")
    b.add_argument("--min-bigram-count", type=int, default=5, help="bigram count cut")
    b.add_argument("--emoji-lexicon", nargs="*", metavar="LANG",
                   help="add the CLDR emoji names for these languages (no LANG: all 14)")
    b.set_defaults(func=run_build_metadata)
    return p


def _overrides(args) -> dict:
    out = {"input": args.input, "output": args.output, "metadata": args.metadata,
           "languages": args.languages, "lid_languages": args.lid_languages, "mode": args.mode,
           "seed": args.seed, "t_en": args.t_en, "target_tail_share": args.tail_share,
           "workers": args.workers, "num_cpus": args.num_cpus,
           "entry_punctuation": args.entry_punctuation}
    if args.no_trust_json_language:
        out["trust_json_language"] = False
    if args.overwrite:
        out["overwrite"] = True
    if isinstance(out["input"], list) and len(out["input"]) == 1:
        out["input"] = out["input"][0]
    return {k: v for k, v in out.items() if v is not None}


def run_curate(args) -> int:
    from clipscale.config import ConfigError
    from clipscale.curation.config import build_curation_config, load_curation_config
    from clipscale.curation.job import CurationError, run_curation
    from clipscale.curation.balance import ThresholdError
    from clipscale.curation.metadata import MetadataError
    from clipscale.data.shards import ShardError

    try:
        cfg = (load_curation_config(args.config, _overrides(args)) if args.config
               else build_curation_config(_overrides(args), "<command line>"))
        report = run_curation(cfg, progress=not args.quiet)
    except (ConfigError, MetadataError, ShardError, ThresholdError, CurationError) as e:
        print(f"clipscale curate: error: {e}", file=sys.stderr)
        return 2
    summary = {lang: {k: v[k] for k in ("pool", "matched", "kept", "t_lang", "head_entries",
                                        "max_entry_count_before", "max_entry_count_after")}
               for lang, v in report["languages"].items()}
    print(json.dumps({"written": report["written"], "samples": report["samples"],
                      "t_en": report["t_en"], "english_tail_share": report["english_tail_share"],
                      "corrupt_shards": len(report["shards"]["corrupt"]),
                      "languages": summary}, indent=1, ensure_ascii=False))
    return 0


def run_build_metadata(args) -> int:
    from clipscale.curation.metadata import (MetadataError, build_from_corpus, bundled_lexicon_languages,
                                             clean_entries, emoji_cldr_lexicon, write_metadata)

    entries: dict[str, list[str]] = {}
    try:
        if args.corpus:
            if not args.lang:
                raise MetadataError("--corpus needs --lang")

            def lines():
                for path in args.corpus:
                    with open(path, encoding="utf-8", errors="replace") as f:
                        yield from f

            entries[args.lang] = build_from_corpus(lines(), args.min_count, args.min_pmi,
                                                   args.min_bigram_count, add_numbers=False)
        if args.emoji_lexicon is not None:
            for lang in args.emoji_lexicon or bundled_lexicon_languages():
                entries[lang] = entries.get(lang, []) + emoji_cldr_lexicon(lang)
        if not entries:
            raise MetadataError("nothing to build: give --corpus with --lang, or --emoji-lexicon")
    except (MetadataError, OSError) as e:
        print(f"clipscale curate build-metadata: error: {e}", file=sys.stderr)
        return 2
    for lang, lang_entries in sorted(entries.items()):
        cleaned = clean_entries(lang_entries, add_numbers=True)
        path = write_metadata(args.out, lang, cleaned)
        print(f"{path}: {len(cleaned)} entries")
    return 0
