"""``clipscale curate`` and ``clipscale curate build-metadata``.

``register(subparsers)`` adds the verb to the ``clipscale`` dispatcher's argparse subparsers; each
parser sets ``func`` (taking the parsed args, returning an exit code).
"""
from __future__ import annotations

import argparse
import json

from pydantic import BaseModel, ConfigDict, Field

from clipscale.cli.flags import add_model_flags, model_from_args, model_values


class CurateOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    config: str | None = Field(None, description="YAML CurationConfig (its fields, optionally under a "
                                                 "top-level `curate:`); the flags below override it")
    quiet: bool = Field(False, description="no progress bars")


class BuildMetadataOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    out: str = Field(description="metadata folder to write into")
    corpus: list[str] = Field(default_factory=list, description="UTF-8 text files, one document a line")
    lang: str | None = Field(None, description="language of --corpus")
    min_count: int = Field(100, ge=1, description="unigram count cut")
    min_pmi: float = Field(30.0, description="bigram PMI cut (natural log)")
    min_bigram_count: int = Field(5, ge=1, description="bigram count cut")
    emoji_lexicon: list[str] | None = Field(None, description="add the CLDR emoji names for these "
                                                              "languages (no LANG: all 14)")


def register(subparsers) -> argparse.ArgumentParser:
    from clipscale.curation.config import CurationConfig

    p = subparsers.add_parser(
        "curate", help="curate a raw pool into a balanced worldwide training set (Meta CLIP 2)",
        description="Language ID, per-language metadata matching, per-language balancing, "
                    "noisy-OR sampling. Flags override the --config file's fields.")
    add_model_flags(p, CurateOptions)
    add_model_flags(p.add_argument_group("curation (CurationConfig)"), CurationConfig,
                    aliases={"target_tail_share": "--tail-share"}, file_backed=True)
    p.set_defaults(func=run_curate)

    verbs = p.add_subparsers(dest="curate_verb", metavar="{build-metadata}")
    b = verbs.add_parser("build-metadata", help="write LANG.txt metadata files",
                         description="Entries from a text corpus (unigrams over a count, bigrams "
                                     "over a PMI, numbers 0-99) and/or the bundled CLDR emoji lexicons.")
    add_model_flags(b, BuildMetadataOptions, nargs={"emoji_lexicon": "*"})
    b.set_defaults(func=run_build_metadata)
    return p


def curation_config(args):
    """The CurationConfig of the ``--config`` file (if any) with the flags given over it."""
    from clipscale.curation.config import CurationConfig, load_curation_config

    opts = model_from_args(args, CurateOptions, kind="curate options")
    given = model_values(args, CurationConfig)
    if opts.config:
        return load_curation_config(opts.config, given)
    return model_from_args(args, CurationConfig, kind="curation config")


def run_curate(args) -> int:
    from clipscale.curation.job import run_curation

    opts = model_from_args(args, CurateOptions, kind="curate options")
    report = run_curation(curation_config(args), progress=not opts.quiet)
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

    opts = model_from_args(args, BuildMetadataOptions, kind="build-metadata options")
    entries: dict[str, list[str]] = {}
    if opts.corpus:
        if not opts.lang:
            raise MetadataError("--corpus needs --lang")

        def lines():
            for path in opts.corpus:
                with open(path, encoding="utf-8", errors="replace") as f:
                    yield from f

        entries[opts.lang] = build_from_corpus(lines(), opts.min_count, opts.min_pmi,
                                               opts.min_bigram_count, add_numbers=False)
    if opts.emoji_lexicon is not None:
        for lang in opts.emoji_lexicon or bundled_lexicon_languages():
            entries[lang] = entries.get(lang, []) + emoji_cldr_lexicon(lang)
    if not entries:
        raise MetadataError("nothing to build: give --corpus with --lang, or --emoji-lexicon")
    for lang, lang_entries in sorted(entries.items()):
        cleaned = clean_entries(lang_entries, add_numbers=True)
        path = write_metadata(opts.out, lang, cleaned)
        print(f"{path}: {len(cleaned)} entries")
    return 0
