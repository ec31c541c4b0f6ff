"""Per-language metadata: load a folder (one file per language), build entries from a text
corpus (unigrams over a count, bigrams over a PMI, numbers 0-99), bundled lexicons (the CLDR
emoji names the emoji package ships, in its 14 languages)."""
from __future__ import annotations

import json
import math
import os
from collections import Counter
from pathlib import Path
from typing import Iterable, Iterator

from clipscale.atomic import atomic_path
from clipscale.curation.matching import (
    is_punctuation,
    is_unspaced_script,
    wrap_punctuation,
)
from clipscale.errors import ClipscaleError

# Numbers 0-99 are entries in every language (Meta CLIP).
NUMBERS = tuple(str(i) for i in range(100))
METADATA_SUFFIXES = (".txt", ".json")


class MetadataError(ClipscaleError, ValueError):
    """Metadata that cannot be used: missing folder, no language file, unreadable file."""


def clean_entries(entries: Iterable[str], add_numbers: bool = True) -> list[str]:
    """Stripped, non-empty, first occurrence kept (entry ids are positions in this list, so the
    order is stable), numbers 0-99 appended where missing."""
    seen: set[str] = set()
    out: list[str] = []
    for entry in entries:
        entry = entry.strip()
        if entry and entry not in seen:
            seen.add(entry)
            out.append(entry)
    if add_numbers:
        out.extend(n for n in NUMBERS if n not in seen)
    return out


def _read_language_file(path: Path) -> list[str]:
    try:
        if path.suffix == ".json":
            entries = json.loads(path.read_text(encoding="utf-8"))
            if not isinstance(entries, list) or not all(isinstance(e, str) for e in entries):
                raise MetadataError(f"{path}: a .json metadata file must hold a list of strings")
            return entries
        return path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise MetadataError(f"{path}: cannot read metadata ({e})") from e


def load_metadata(folder: str | os.PathLike, languages: Iterable[str] | None = None,
                  add_numbers: bool = True) -> dict[str, list[str]]:
    """``{language: entries}`` from ``folder/LANG.txt`` (one entry a line) or ``LANG.json`` (a
    list). ``languages`` restricts the set; a language asked for but absent is an error."""
    folder = Path(folder)
    if not folder.is_dir():
        raise MetadataError(f"metadata folder {folder} does not exist (build one with "
                            "`clipscale curate build-metadata`)")
    files = {p.stem: p for p in sorted(folder.iterdir())
             if p.suffix in METADATA_SUFFIXES and not p.name.startswith(".")}
    if languages is not None:
        wanted = list(languages)
        missing = [lang for lang in wanted if lang not in files]
        if missing:
            raise MetadataError(f"metadata folder {folder} has no file for {missing}")
        files = {lang: files[lang] for lang in wanted}
    if not files:
        raise MetadataError(f"metadata folder {folder} holds no LANG.txt or LANG.json file")
    metadata = {lang: clean_entries(_read_language_file(p), add_numbers) for lang, p in files.items()}
    empty = [lang for lang, entries in metadata.items() if not entries]
    if empty:
        raise MetadataError(f"metadata folder {folder}: no entry for {empty}")
    return metadata


def write_metadata(folder: str | os.PathLike, language: str, entries: Iterable[str]) -> Path:
    """Write ``folder/LANG.txt`` atomically; entries holding a line break cannot be one line."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    entries = [e for e in entries if "\n" not in e and "\r" not in e]
    path = folder / f"{language}.txt"
    with atomic_path(path) as tmp:
        Path(tmp).write_text("\n".join(entries) + "\n", encoding="utf-8")
    return path


def tokenize(text: str) -> Iterator[str]:
    """Whitespace words, marks split off by the caption normalisation, and each character of an
    unspaced script as its own token (Meta CLIP's simple tokenizer; a real segmenter would give
    better multi-character words for zh/ja/th and can feed ``build_from_corpus`` the same way)."""
    for word in wrap_punctuation(text).split():
        current: list[str] = []
        for char in word:
            if is_unspaced_script(char):
                if current:
                    yield "".join(current)
                    current = []
                yield char
            else:
                current.append(char)
        if current:
            yield "".join(current)


def _join_bigram(a: str, b: str) -> str:
    # Inside unspaced text the two tokens stand side by side; elsewhere a space separates them.
    return a + b if is_unspaced_script(a[-1]) and is_unspaced_script(b[0]) else f"{a} {b}"


def build_from_corpus(lines: Iterable[str], min_unigram_count: int = 100,
                      min_bigram_pmi: float = 30.0, min_bigram_count: int = 5,
                      add_numbers: bool = True) -> list[str]:
    """Entries from a corpus, as Meta CLIP builds them from Wikipedia: unigrams seen at least
    ``min_unigram_count`` times; bigrams seen at least ``min_bigram_count`` times whose pointwise
    mutual information log(P(ab) / (P(a) P(b))) is at least ``min_bigram_pmi``; numbers 0-99.
    A pure-punctuation token breaks the bigram chain. Unigrams by descending count, then bigrams
    by descending PMI; ties alphabetically, so the same corpus gives the same ids."""
    unigrams: Counter[str] = Counter()
    bigrams: Counter[tuple[str, str]] = Counter()
    for line in lines:
        previous = None
        for token in tokenize(line):
            if all(is_punctuation(c) for c in token):
                previous = None
                continue
            unigrams[token] += 1
            if previous is not None:
                bigrams[(previous, token)] += 1
            previous = token
    n_uni = sum(unigrams.values())
    n_bi = sum(bigrams.values())
    kept_unigrams = sorted((t for t, c in unigrams.items() if c >= min_unigram_count),
                           key=lambda t: (-unigrams[t], t))
    scored = []
    for (a, b), c in bigrams.items():
        if c < min_bigram_count:
            continue
        pmi = math.log((c / n_bi) / ((unigrams[a] / n_uni) * (unigrams[b] / n_uni)))
        if pmi >= min_bigram_pmi:
            scored.append((-pmi, _join_bigram(a, b)))
    kept_bigrams = [entry for _, entry in sorted(scored)]
    return clean_entries(kept_unigrams + kept_bigrams, add_numbers)


def emoji_cldr_lexicon(language: str) -> list[str]:
    """The CLDR short names the emoji package ships for ``language`` (``:red_apple:`` -> ``red
    apple``), the bundled lexicon behind the emoji-world pool."""
    import emoji

    if language not in emoji.LANGUAGES:
        raise MetadataError(f"the emoji package has no CLDR names for '{language}' "
                            f"(it has {', '.join(emoji.LANGUAGES)})")
    from clipscale.data.emoji_text import cldr_names

    return clean_entries(cldr_names(language), add_numbers=False)


def bundled_lexicon_languages() -> list[str]:
    import emoji

    return list(emoji.LANGUAGES)
