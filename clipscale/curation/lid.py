"""Language ID per caption, offline, with the model py3langid ships (no download at run time).

A language already present in the sample's json can be trusted instead (``trust_json_language``):
pools written by img2dataset-like tools with a known language, or the emoji-world generator.
"""
from __future__ import annotations

from typing import Iterable

LID_SOURCE_JSON = "json"
LID_SOURCE_MODEL = "py3langid"


class LanguageIdentifier:
    """py3langid's bundled model with normalised probabilities. ``max_chars`` bounds the text
    the model reads: the language of a 1 MB caption is settled by its first kilobytes, and the
    model's cost grows with the length. ``languages`` restricts the model's answers to a set
    (when the pool's languages are known, short captions are then not mistaken for others)."""

    def __init__(self, max_chars: int = 2000, languages: list[str] | None = None):
        from py3langid import langid

        self._model = langid.LanguageIdentifier.from_model_file(langid.MODEL_FILE, norm_probs=True)
        if languages:
            unknown = sorted(set(languages) - set(self._model.nb_classes))
            if unknown:
                raise ValueError(f"py3langid cannot identify {unknown}")
            self._model.set_languages(list(languages))
        self.max_chars = max_chars

    def identify(self, text: str) -> tuple[str, float]:
        lang, confidence = self._model.classify(text[: self.max_chars])
        return str(lang), float(confidence)


def canonical_language(code: str, known: Iterable[str]) -> str:
    """``pt-BR`` / ``PT_br`` -> ``pt`` when only ``pt`` has metadata; an exact known code wins."""
    code = code.strip().replace("_", "-")
    known = set(known)
    for candidate in (code, code.lower(), code.split("-")[0].lower()):
        if candidate in known:
            return candidate
    return code.lower()


def caption_language(text: str, meta: dict, lid: LanguageIdentifier, trust_json: bool,
                     known: Iterable[str]) -> tuple[str, float, str]:
    """(language, confidence, source) of one caption: the json's ``language`` when trusted and
    present (confidence 1), else the model's answer."""
    if trust_json:
        declared = meta.get("language")
        if isinstance(declared, str) and declared.strip():
            return canonical_language(declared, known), 1.0, LID_SOURCE_JSON
    lang, confidence = lid.identify(text)
    return canonical_language(lang, known), confidence, LID_SOURCE_MODEL
