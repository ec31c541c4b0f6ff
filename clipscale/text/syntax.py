"""CLIPA's ``syntax`` text reduction: keep nouns first, then adjectives, then verbs, in caption order.

Tagging must work offline from what pip installs, and spaCy's and NLTK's English models are
downloads, so English uses a small rule-and-lexicon tagger written for caption text: closed-class
words (determiners, pronouns, prepositions, conjunctions, auxiliaries, numbers) from word lists;
adjectives from a list of common caption adjectives (colours, sizes, textures, moods) and
suffixes (-ous, -ful, -ive, -able, -ible, -al, -ic, -ish, -less in words over 5 letters, so "table"
stays a noun; -y after 4 letters); verbs
from a short list and suffixes (-ing, -ed, -ize, -ise, -ate); every other word is a noun (the
commonest open class in alt-text); -ly adverbs rank with the function words. It is a heuristic, not a trained tagger: its job is the
ranking CLIPA uses, and an error only moves a word one rank.

Other languages have no tagger here. For them the reduction keeps the caption's order and drops
only the short function words it can tell without a tagger: tokens of one or two characters in
scripts that separate words with spaces (articles, prepositions and particles in the emoji-world
languages: "de", "la", "и", "в", "ve", ...), then truncates. Scripts without spaces (Chinese,
Japanese, Thai) are not split into words, so for them ``syntax`` is ``truncate``.
"""
from __future__ import annotations

import re
from typing import Callable

NOUN, ADJ, VERB, OTHER = 0, 1, 2, 3   # the keep order: lower first

_CLOSED = set("""a an the this that these those some any each every no all both either neither
i me my mine you your yours he him his she her hers it its we us our ours they them their theirs
in on at of to from with without by for about above below over under into onto off out up down
near behind beside between among through across along around against toward towards inside
and or but nor so yet if then than as while because though although
is are was were be been being am do does did has have had will would shall should can could
may might must not very too also just there here what which who whom whose where when why how
""".split())
_ADJ = set("""red blue green yellow white black orange purple pink gray grey brown golden silver
big small large tiny little huge long short tall high low wide narrow thick thin round square flat
old new young hot cold warm cool wet dry soft hard smooth rough heavy light dark bright pale clear
happy sad angry funny cute pretty beautiful ugly nice good bad great best worst fresh sweet sour
empty full open closed clean dirty fast slow quiet loud rich poor strong weak simple plain
colorful colourful smiling laughing crying grinning winking
""".split())
_VERB = set("""run runs ran walk walks jump jumps sit sits sat stand stands stood eat eats ate
drink drinks play plays look looks see sees saw hold holds held make makes made take takes took
give gives gave go goes went come comes came fly flies flew swim swims show shows shown""".split())
_ADJ_SUFFIX = ("ous", "ful", "ive", "able", "ible", "al", "ic", "ish", "less")
_VERB_SUFFIX = ("ing", "ed", "ize", "ise", "ate")
_NUMBER = re.compile(r"^\d+([.,]\d+)?$")
# Scripts written without spaces between words: no word split, so syntax = truncate there.
_UNSPACED = re.compile(r"[\u3040-\u30ff\u3400-\u9fff\uf900-\ufaff\u0e00-\u0e7f]")


def english_tag(word: str) -> int:
    w = word.lower().strip(".,;:!?\"'()[]")
    if not w or w in _CLOSED or _NUMBER.match(w) or not any(c.isalpha() for c in w):
        return OTHER
    if w in _ADJ:
        return ADJ
    if w in _VERB:
        return VERB
    if w.endswith("ly") and len(w) > 4:
        return OTHER  # adverbs: not in CLIPA's keep order
    if w.endswith(_VERB_SUFFIX) and len(w) > 4:
        # "-ing"/"-ed" words in alt-text are mostly participles acting as verbs ("dog running")
        return VERB
    if w.endswith(_ADJ_SUFFIX) and len(w) > 5 or (w.endswith("y") and len(w) > 4):
        return ADJ
    return NOUN


def other_language_tag(word: str) -> int:
    """No tagger: short words are taken as function words, the rest keep equal rank (order)."""
    w = word.strip(".,;:!?\"'()[]«»")
    return OTHER if len(w) <= 2 or not any(c.isalpha() for c in w) else NOUN


def tag_words(words: list[str], language: str) -> list[int]:
    tag = english_tag if language == "en" else other_language_tag
    return [tag(w) for w in words]


def select_words(words: list[str], ranks: list[int], budget: int,
                 cost: Callable[[list[str]], list[int]]) -> list[str]:
    """Words taken by rank (noun, adjective, verb, other; earlier first within a rank) while their
    token cost fits ``budget``, returned in caption order. Ranked ``OTHER`` words are dropped
    unless nothing else is left to keep."""
    costs = cost(words)
    order = sorted(range(len(words)), key=lambda i: (ranks[i], i))
    content = [i for i in order if ranks[i] != OTHER] or order
    chosen, used = [], 0
    for i in content:
        if used + costs[i] > budget:
            if used == 0:      # the first word alone is too long: keep it; the tokenizer cuts it
                chosen.append(i)
            break
        chosen.append(i)
        used += costs[i]
    return [words[i] for i in sorted(chosen)]


def syntax_reduce(caption: str, language: str, budget: int,
                  cost: Callable[[list[str]], list[int]]) -> str:
    """The caption cut to ``budget`` tokens the syntax way (see the module docstring)."""
    if _UNSPACED.search(caption):
        return caption
    words = caption.split()
    if not words:
        return caption
    return " ".join(select_words(words, tag_words(words, language), budget, cost))
