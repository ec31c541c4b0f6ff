"""Caption normalisation, entry padding and Aho-Corasick substring matching (docs/curation.md, step 3).

Matching is case-sensitive and every matched entry counts, overlapping ones included; a caption's
matches are the *set* of entry ids found in it (count_e counts captions, not occurrences).
"""
from __future__ import annotations

import string
import unicodedata
from typing import Literal, Sequence

import ahocorasick

# The marks the caption normalisation wraps in spaces, in the order Meta CLIP applies them.
WRAPPED_PUNCTUATION = (",", ".", ";", ":", "?", "!", "`")
SPACED_CONTROLS = ("\t", "\r", "\n")

# Scripts that put no spaces between words: an entry side in one of these is not padded, so the
# entry still matches inside unspaced text. Meta CLIP 2's list leaves kana out (so kana entries
# never match inside Japanese text); clipscale includes it (docs/curation.md, step 3). Hangul is spaced and is not here.
_UNSPACED_RANGES = (
    (0x2E80, 0x2EFF),    # CJK radicals supplement
    (0x2F00, 0x2FDF),    # Kangxi radicals
    (0x2FF0, 0x2FFF),    # ideographic description characters
    (0x3040, 0x309F),    # hiragana
    (0x30A0, 0x30FF),    # katakana (incl. the prolonged sound mark)
    (0x31F0, 0x31FF),    # katakana phonetic extensions
    (0xFF66, 0xFF9F),    # halfwidth katakana
    (0x3400, 0x4DBF),    # CJK extension A
    (0x4E00, 0x9FFF),    # CJK unified ideographs
    (0xF900, 0xFAFF),    # CJK compatibility ideographs
    (0x20000, 0x2A6DF), (0x2A700, 0x2B73F), (0x2B740, 0x2B81F), (0x2B820, 0x2CEAF),
    (0x2CEB0, 0x2EBEF), (0x2F800, 0x2FA1F), (0x30000, 0x3134F),  # CJK extensions B-G
    (0x0E00, 0x0E7F),    # Thai
    (0x0E80, 0x0EFF),    # Lao
    (0x1000, 0x109F),    # Myanmar
    (0xA9E0, 0xA9FF), (0xAA60, 0xAA7F),  # Myanmar extended B, A
    (0x1780, 0x17FF), (0x19E0, 0x19FF),  # Khmer, Khmer symbols
    (0x0F00, 0x0FFF),    # Tibetan
)
_ASCII_PUNCTUATION = frozenset(string.punctuation)

# How an entry holding one of WRAPPED_PUNCTUATION becomes a key (`curation.entry_punctuation`):
# "wrap" puts its inside through the caption's wrapping so it can match; "metaclip" pads the
# entry as written, as Meta CLIP 2's get_spaced_metadata does, so it never matches.
EntryPunctuation = Literal["wrap", "metaclip"]
ENTRY_PUNCTUATION_MODES: tuple[str, ...] = ("wrap", "metaclip")

# Meta CLIP 2's own side test (metaclip/curation/substr_matching.py, is_cjk_or_similar): its
# script ranges (no kana, no Myanmar/Khmer extensions) and its punctuation, which is ASCII
# punctuation plus this fixed list of full-width marks rather than Unicode category P.
_METACLIP_RANGES = (
    (0x4E00, 0x9FFF), (0x3400, 0x4DBF), (0x20000, 0x2A6DF), (0x2A700, 0x2B73F),
    (0x2B740, 0x2B81F), (0x2B820, 0x2CEAF), (0x2CEB0, 0x2EBEF), (0xF900, 0xFAFF),
    (0x2E80, 0x2EFF), (0x2F00, 0x2FDF), (0x2FF0, 0x2FFF),
    (0x0E00, 0x0E7F), (0x0E80, 0x0EFF), (0x1000, 0x109F), (0x1780, 0x17FF), (0x0F00, 0x0FFF),
)
_METACLIP_EXTRA_PUNCTUATION = frozenset("，。、；：？！“”‘’（）【】《》〈〉「」『』～—")


def is_punctuation(char: str) -> bool:
    """ASCII punctuation (which includes symbols such as ``$`` and ``+``) or Unicode category P."""
    return char in _ASCII_PUNCTUATION or unicodedata.category(char).startswith("P")


def is_unspaced_script(char: str) -> bool:
    cp = ord(char)
    return any(lo <= cp <= hi for lo, hi in _UNSPACED_RANGES)


def needs_no_pad(char: str) -> bool:
    """True when an entry side ending in ``char`` must not be padded with a space."""
    return is_unspaced_script(char) or is_punctuation(char)


def metaclip_needs_no_pad(char: str) -> bool:
    """Meta CLIP 2's ``is_cjk_or_similar``: its unspaced-script ranges or its punctuation."""
    cp = ord(char)
    return (any(lo <= cp <= hi for lo, hi in _METACLIP_RANGES) or char in _ASCII_PUNCTUATION
            or char in _METACLIP_EXTRA_PUNCTUATION)


def wrap_punctuation(text: str) -> str:
    for mark in WRAPPED_PUNCTUATION:
        text = text.replace(mark, f" {mark} ")
    for control in SPACED_CONTROLS:
        text = text.replace(control, " ")
    return text


def normalize_caption(text: str) -> str:
    """Pad both ends with a space, wrap each of ``, . ; : ? !`` and the backtick in spaces, turn
    tab, CR and LF into spaces. Nothing else changes (no case folding, no space collapsing)."""
    return wrap_punctuation(f" {text} ")


def pad_entry(entry: str, entry_punctuation: EntryPunctuation = "wrap") -> str:
    """The key an entry is searched under.

    ``metaclip``: Meta CLIP 2's get_spaced_metadata exactly: the entry as written, each side
    padded unless ``metaclip_needs_no_pad``; an entry holding ``, . ; : ? !`` or the backtick
    therefore never matches a normalised caption.

    ``wrap`` (default): each side gets a space unless its character is an unspaced script or punctuation. The entry's
    inside goes through the same punctuation wrapping as captions: a caption never contains a bare
    ``.`` (normalisation always spaces it), so an entry like ``St. Louis`` padded as-is could never
    match; wrapped, it matches exactly where the caption has ``St. Louis``. Which sides are padded
    is decided on the entry as written.
    """
    if not entry:
        raise ValueError("empty metadata entry")
    if entry_punctuation == "metaclip":
        key = entry
        if not metaclip_needs_no_pad(entry[0]):
            key = " " + key
        if not metaclip_needs_no_pad(entry[-1]):
            key = key + " "
        return key
    if entry_punctuation != "wrap":
        raise ValueError(f"entry_punctuation must be one of {ENTRY_PUNCTUATION_MODES}, "
                         f"got {entry_punctuation!r}")
    key = wrap_punctuation(entry)
    if not needs_no_pad(entry[0]):
        key = " " + key
    if not needs_no_pad(entry[-1]):
        key = key + " "
    return key


def build_automaton(entries: Sequence[str],
                    entry_punctuation: EntryPunctuation = "wrap") -> ahocorasick.Automaton:
    """One automaton per language; values are lists of entry ids because a raw list may hold an
    entry twice, and every id must count (Meta CLIP keeps the last id of a repeated key; the
    metadata loader drops repeats, so curation never sees the difference)."""
    automaton = ahocorasick.Automaton()
    for entry_id, entry in enumerate(entries):
        key = pad_entry(entry, entry_punctuation)
        ids = automaton.get(key, None)
        if ids is None:
            automaton.add_word(key, [entry_id])
        else:
            ids.append(entry_id)
    if len(automaton) == 0:
        raise ValueError("no metadata entries to build an automaton from")
    automaton.make_automaton()
    return automaton


def match_entries(automaton: ahocorasick.Automaton, caption: str) -> list[int]:
    """Sorted ids of every entry found in the normalised caption (overlapping matches included)."""
    found: set[int] = set()
    for _end, ids in automaton.iter(normalize_caption(caption)):
        found.update(ids)
    return sorted(found)


def match_entries_naive(padded_entries: Sequence[str], caption: str) -> list[int]:
    """The loop over entries Meta CLIP 1 started with: same answer as ``match_entries``, O(entries)
    per caption. Kept as the reference the benchmark and the tests compare against."""
    text = normalize_caption(caption)
    return [i for i, key in enumerate(padded_entries) if key in text]
