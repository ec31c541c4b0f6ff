"""The built-in pool: emoji world.

Images of 1-3 twemoji emoji on a varied background, each with an alt-text-like caption in one of
14 languages built around the emoji's CLDR names. Concept frequencies follow a Zipf law, the
language mix is web-like by default (English about a third), and a share of pairs are noise. The
generator also writes held-out evaluation sets (zero-shot classes named in every language, and
image-caption pairs per language for retrieval).

Determinism: ``world_seed`` fixes the world (which emoji are concepts, how common each is, and the
evaluation sets); ``seed`` fixes the pool's samples. Shard ``i`` draws from its own generator
seeded with ``(seed, i)``, so shards are byte-identical however many processes write them.
"""
from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from clipscale.data import emoji_render as R
from clipscale.data.emoji_text import (COLORS, GENERIC_CAPTIONS, LANGUAGES, PROMPTS, TEMPLATES,
                                       Concept, build_concepts, candidate_emoji, count_phrase,
                                       join_names, write_lexicons)
from clipscale.data.emoji_suites import write_emoji_suites
from clipscale.data.shards import Sample, write_tar

__all__ = ["EmojiWorldConfig", "generate_pool", "world_concepts", "write_lexicons",
           "DEFAULT_LANGUAGE_MIX", "zipf_probs"]

# Web-like: English well under half, then a long tail (roughly the shape of Common Crawl's
# language distribution, restricted to the 14 CLDR languages of the emoji package).
DEFAULT_LANGUAGE_MIX: dict[str, float] = {
    "en": 0.35, "es": 0.10, "ja": 0.08, "de": 0.07, "fr": 0.07, "pt": 0.06, "ru": 0.06,
    "zh": 0.05, "it": 0.04, "ko": 0.03, "tr": 0.03, "id": 0.02, "fa": 0.02, "ar": 0.02,
}

POOL_SEED_STREAM, ZEROSHOT_STREAM, RETRIEVAL_STREAM, WORLD_STREAM = 1, 2, 3, 4


class EmojiWorldConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    num_samples: int = Field(10_000, ge=1, description="Image-caption pairs in the pool.")
    samples_per_shard: int = Field(1_000, ge=1, description="Pairs per pool shard (tar).")
    image_size: int = Field(64, ge=16, le=1024, description="Side of the square images, pixels.")
    image_format: Literal["jpg", "png"] = Field("jpg", description="Encoding of the images.")
    jpeg_quality: int = Field(90, ge=1, le=100, description="JPEG quality when image_format=jpg.")
    languages: list[str] = Field(default_factory=lambda: list(LANGUAGES),
                                 description="Languages with captions and evaluation sets.")
    language_mix: dict[str, float] | None = Field(
        None, description="Relative caption share per language (normalised; missing = 0). "
                          "None: the web-like default restricted to `languages`.")
    english_share: float | None = Field(
        None, ge=0.0, le=1.0, description="If set, English gets exactly this share and the other "
                                          "languages keep their relative mix for the rest.")
    num_concepts: int = Field(300, ge=2, description="Emoji concepts in the world (capped by the "
                              "emoji that have a name in all 14 languages and a twemoji PNG).")
    zipf_exponent: float = Field(1.0, ge=0.0, description="Concept of rank r is drawn with "
                                 "probability proportional to r^-s; 0 gives uniform concepts.")
    max_emoji_per_image: int = Field(3, ge=1, le=3, description="Emoji per image: 1 to this.")
    count_share: float = Field(0.1, ge=0.0, le=1.0, description="Share of images showing one "
                               "concept 2-3 times, captioned with the number ('3 cat face').")
    noise_share: float = Field(0.1, ge=0.0, le=1.0, description="Share of pairs whose caption "
                               "does not describe the image.")
    generic_noise_fraction: float = Field(0.3, ge=0.0, le=1.0, description="Of the noise pairs, "
                                          "the fraction with a generic caption ('IMG_0412.jpg'); "
                                          "the rest name other, unrelated concepts.")
    seed: int = Field(0, description="Seed of the pool's samples.")
    world_seed: int = Field(0, description="Seed of the world: concept choice, concept "
                            "frequency order and evaluation sets. Keep it fixed across replicates.")
    eval_num_classes: int = Field(100, ge=2, description="Zero-shot classes, spread evenly over "
                                  "the frequency ranks so head and tail concepts are both tested.")
    eval_images_per_class: int = Field(3, ge=1, description="Zero-shot images per class.")
    eval_retrieval_pairs: int = Field(200, ge=2, description="Retrieval pairs per language.")

    @model_validator(mode="after")
    def _check(self) -> "EmojiWorldConfig":
        bad = [lang for lang in self.languages if lang not in LANGUAGES]
        if bad or not self.languages or len(set(self.languages)) != len(self.languages):
            raise ValueError(f"languages must be distinct, non-empty, from {list(LANGUAGES)}; "
                             f"got {self.languages}")
        if self.language_mix is not None:
            extra = set(self.language_mix) - set(self.languages)
            if extra or any(v < 0 for v in self.language_mix.values()) \
                    or sum(self.language_mix.values()) <= 0:
                raise ValueError("language_mix: keys must be in `languages`, values >= 0 with a "
                                 f"positive sum; got {self.language_mix}")
        if self.english_share is not None:
            if "en" not in self.languages:
                raise ValueError("english_share is set but 'en' is not in languages")
            if self.english_share < 1.0 and len(self.languages) == 1:
                raise ValueError("english_share < 1 needs a language besides English")
        if self.eval_num_classes > self.num_concepts:
            raise ValueError(f"eval_num_classes ({self.eval_num_classes}) > num_concepts "
                             f"({self.num_concepts})")
        return self

    def mix(self) -> dict[str, float]:
        """Resolved caption share per language, summing to 1, in `languages` order."""
        base = self.language_mix if self.language_mix is not None else DEFAULT_LANGUAGE_MIX
        w = {lang: float(base.get(lang, 0.0)) for lang in self.languages}
        if self.english_share is not None:
            others = sum(v for k, v in w.items() if k != "en")
            if others <= 0:  # e.g. a mix that was English-only: spread the rest evenly
                w = {k: (0.0 if k == "en" else 1.0) for k in w}
                others = len(w) - 1
            rest = 1.0 - self.english_share
            w = {k: (self.english_share if k == "en" else v / others * rest) for k, v in w.items()}
        total = sum(w.values())
        if total <= 0:
            raise ValueError("language mix gives every language a zero share")
        return {k: v / total for k, v in w.items()}


def zipf_probs(n: int, s: float) -> np.ndarray:
    """P(rank r) = r^-s / sum_k k^-s for r = 1..n."""
    w = np.arange(1, n + 1, dtype=np.float64) ** -s
    return w / w.sum()


def world_concepts(cfg: EmojiWorldConfig) -> list[Concept]:
    """The world's concepts, most frequent first (concept id = Zipf rank - 1)."""
    n_cand = len(candidate_emoji())
    if cfg.num_concepts > n_cand:
        raise ValueError(f"num_concepts={cfg.num_concepts} but only {n_cand} emoji have a name "
                         "in all 14 languages and a twemoji PNG")
    order = np.random.default_rng([cfg.world_seed, WORLD_STREAM]).permutation(n_cand)
    return build_concepts([int(i) for i in order], cfg.num_concepts)


# ---- planning one pair: every random draw happens here, in a fixed order ----

def _draw_concepts(rng, probs, max_k, count_share) -> tuple[list[int], list[int]]:
    """(distinct concept ids, multiplicity of each) for one image."""
    if max_k > 1 and rng.random() < count_share:
        return [int(rng.choice(len(probs), p=probs))], [int(rng.integers(2, max_k + 1))]
    k = int(rng.integers(1, max_k + 1))
    draws = [int(c) for c in rng.choice(len(probs), size=k, p=probs)]
    ids = list(dict.fromkeys(draws))  # i.i.d. draws; a repeat becomes a count
    return ids, [draws.count(c) for c in ids]


def _caption(rng, concepts, ids, counts, lang, color) -> tuple[str, int]:
    names = [count_phrase(concepts[c].names[lang], n, lang) for c, n in zip(ids, counts)]
    t = int(rng.integers(len(TEMPLATES[lang])))
    return TEMPLATES[lang][t].format(x=join_names(names, lang), c=COLORS[color][1][lang]), t


def plan_pair(rng: np.random.Generator, cfg: EmojiWorldConfig, concepts: list[Concept],
              probs: np.ndarray, lang: str, noise: bool) -> tuple[R.Scene, str, dict]:
    """One scene, its caption and its metadata."""
    ids, counts = _draw_concepts(rng, probs, cfg.max_emoji_per_image, cfg.count_share)
    order = [c for c, n in zip(ids, counts) for _ in range(n)]
    color, style, jitter, tex = R.draw_background(rng)
    placements = R.draw_placements(rng, [concepts[c].png for c in order], cfg.image_size)
    scene = R.Scene(cfg.image_size, color, style, jitter, tex, tuple(placements))
    noise_kind = None
    cap_ids, cap_counts = ids, counts
    if noise:
        if rng.random() < cfg.generic_noise_fraction:
            noise_kind = "generic"
            g = GENERIC_CAPTIONS[int(rng.integers(len(GENERIC_CAPTIONS)))]
            caption = g.format(n=int(rng.integers(10000)), m=int(rng.integers(1, 21)))
            cap_ids, cap_counts, template = [], [], -1
        else:
            noise_kind = "mismatch"
            for _ in range(16):  # redraw until the caption shares no concept with the image
                cap_ids, cap_counts = _draw_concepts(rng, probs, cfg.max_emoji_per_image,
                                                     cfg.count_share)
                if not set(cap_ids) & set(ids):
                    break
    if noise_kind != "generic":
        caption, template = _caption(rng, concepts, cap_ids, cap_counts, lang, color)
    meta = {"language": lang, "concepts": ids, "counts": counts,
            "emoji": [concepts[c].char for c in ids], "is_noise": noise, "noise": noise_kind,
            "caption_concepts": cap_ids, "background": color, "template": template}
    return scene, caption, meta


# ---- pool shards ----

def _shard_range(cfg: EmojiWorldConfig, i: int) -> range:
    start = i * cfg.samples_per_shard
    return range(start, min(start + cfg.samples_per_shard, cfg.num_samples))


def _encode(cfg: EmojiWorldConfig, scene: R.Scene) -> bytes:
    return R.encode(R.render(scene), cfg.image_format, cfg.jpeg_quality)


def make_shard(cfg_json: str, index: int, path: str, render: bool = True) -> dict:
    """Plan (and, if ``render``, write) pool shard ``index``. Returns its counts, so a re-run
    that skips a finished shard still reports the whole pool by re-planning without rendering."""
    cfg = EmojiWorldConfig.model_validate_json(cfg_json)
    concepts = world_concepts(cfg)
    probs = zipf_probs(len(concepts), cfg.zipf_exponent)
    mix = cfg.mix()
    langs, lang_p = list(mix), np.array(list(mix.values()))
    rng = np.random.default_rng([cfg.seed, POOL_SEED_STREAM, index])
    stats = {"languages": {}, "noise": 0, "concept_images": [0] * len(concepts)}
    samples = []
    for g in _shard_range(cfg, index):
        lang = langs[int(rng.choice(len(langs), p=lang_p))]
        noise = bool(rng.random() < cfg.noise_share)
        scene, caption, meta = plan_pair(rng, cfg, concepts, probs, lang, noise)
        stats["languages"][lang] = stats["languages"].get(lang, 0) + 1
        stats["noise"] += noise
        for c in meta["concepts"]:
            stats["concept_images"][c] += 1
        if render:
            samples.append(Sample(key=f"{g:09d}", image=_encode(cfg, scene),
                                  image_ext=cfg.image_format, text=caption, meta=meta))
    if render:
        write_tar(path, samples)
    return stats


def _make_shard_star(args) -> dict:
    return make_shard(*args)


# ---- evaluation sets ----

def eval_class_ids(cfg: EmojiWorldConfig) -> list[int]:
    """Zero-shot classes: concept ids spread evenly over the frequency ranks."""
    ids = np.linspace(0, cfg.num_concepts - 1, cfg.eval_num_classes).round().astype(int)
    return [int(i) for i in dict.fromkeys(ids.tolist())]


def write_zeroshot(cfg: EmojiWorldConfig, concepts: list[Concept], eval_dir: Path) -> int:
    classes = eval_class_ids(cfg)
    rng = np.random.default_rng([cfg.world_seed, ZEROSHOT_STREAM])
    samples = []
    for label, cid in enumerate(classes):
        for j in range(cfg.eval_images_per_class):
            color, style, jitter, tex = R.draw_background(rng)
            pl = R.draw_placements(rng, [concepts[cid].png], cfg.image_size)
            scene = R.Scene(cfg.image_size, color, style, jitter, tex, tuple(pl))
            samples.append(Sample(key=f"zs{label:04d}_{j:03d}", image=_encode(cfg, scene),
                                  image_ext=cfg.image_format, text=concepts[cid].names["en"],
                                  meta={"label": label, "concept": cid}))
    doc = {"languages": list(cfg.languages),
           "prompts": {lang: list(PROMPTS[lang]) for lang in cfg.languages},
           "classes": [{"label": i, "concept": cid, "emoji": concepts[cid].char,
                        "names": {lang: concepts[cid].names[lang] for lang in cfg.languages}}
                       for i, cid in enumerate(classes)]}
    (eval_dir / "classes.json").write_text(json.dumps(doc, ensure_ascii=False, indent=1),
                                           encoding="utf-8")
    return write_tar(eval_dir / "zeroshot.tar", samples)


def write_retrieval(cfg: EmojiWorldConfig, concepts: list[Concept], lang: str,
                    path: Path) -> int:
    """Pairs whose concept multisets are all distinct, so each caption has one right image.
    Concepts are uniform here: retrieval should test the whole world, not just its head."""
    li = list(LANGUAGES).index(lang)
    rng = np.random.default_rng([cfg.world_seed, RETRIEVAL_STREAM, li])
    uniform = np.full(len(concepts), 1.0 / len(concepts))
    seen: set = set()
    samples = []
    for _ in range(cfg.eval_retrieval_pairs * 50):
        if len(samples) == cfg.eval_retrieval_pairs:
            break
        scene, caption, meta = plan_pair(rng, cfg, concepts, uniform, lang, noise=False)
        key = tuple(sorted(zip(meta["concepts"], meta["counts"])))
        if key in seen:
            continue
        seen.add(key)
        samples.append(Sample(key=f"{lang}_{len(samples):05d}", image=_encode(cfg, scene),
                              image_ext=cfg.image_format, text=caption, meta=meta))
    if len(samples) < cfg.eval_retrieval_pairs:
        raise ValueError(f"could not draw {cfg.eval_retrieval_pairs} distinct retrieval pairs "
                         f"from {len(concepts)} concepts; lower eval_retrieval_pairs")
    return write_tar(path, samples)


# ---- driver ----

def generate_pool(config: EmojiWorldConfig, out_dir: str | os.PathLike, workers: int = 1,
                  progress: bool = True) -> dict:
    """Write ``out_dir/pool/shard-%05d.tar``, ``out_dir/eval/`` (``classes.json``,
    ``zeroshot.tar``, ``retrieval/<lang>.tar``), ``concepts.json``, ``lexicons/<lang>.txt``,
    ``emoji_world.json`` (the config) and ``summary.json``. Finished shards of the same config
    are skipped on a re-run; a different config in the same folder is an error.
    ``workers > 1`` writes shards in spawned processes (output identical to ``workers=1``); a
    script calling it that way needs the usual ``if __name__ == "__main__":`` guard."""
    from tqdm import tqdm

    cfg = config
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    manifest = out / "emoji_world.json"
    cfg_json = cfg.model_dump_json()
    if manifest.exists():
        old = EmojiWorldConfig.model_validate_json(manifest.read_text(encoding="utf-8"))
        if old != cfg:
            raise ValueError(f"{out} holds an emoji-world pool made with another config; "
                             "use a fresh folder")
    else:
        manifest.write_text(json.dumps(cfg.model_dump(), indent=1), encoding="utf-8")
    concepts = world_concepts(cfg)

    n_shards = math.ceil(cfg.num_samples / cfg.samples_per_shard)
    tasks = []
    for i in range(n_shards):
        path = out / "pool" / f"shard-{i:05d}.tar"
        tasks.append((cfg_json, i, str(path), not path.exists()))
    bar = tqdm(total=n_shards, desc="emoji-world shards", unit="shard", disable=not progress)
    if workers > 1 and n_shards > 1:
        import multiprocessing as mp
        # spawn: safe when the caller already runs threads (torch, Ray); the cost is a re-import
        with mp.get_context("spawn").Pool(min(workers, n_shards)) as pool:
            results = []
            for r in pool.imap(_make_shard_star, tasks):
                results.append(r)
                bar.update()
    else:
        results = []
        for t in tasks:
            results.append(make_shard(*t))
            bar.update()
    bar.close()

    ev = out / "eval"
    (ev / "retrieval").mkdir(parents=True, exist_ok=True)
    if not (ev / "zeroshot.tar").exists() or not (ev / "classes.json").exists():
        write_zeroshot(cfg, concepts, ev)
    for lang in tqdm(cfg.languages, desc="retrieval sets", disable=not progress):
        p = ev / "retrieval" / f"{lang}.tar"
        if not p.exists():
            write_retrieval(cfg, concepts, lang, p)
    write_emoji_suites(ev)  # the same sets in the standard suite formats (data/emoji_suites.py)
    (out / "concepts.json").write_text(json.dumps(
        [{"id": c.id, "emoji": c.char, "names": c.names} for c in concepts],
        ensure_ascii=False, indent=1), encoding="utf-8")
    write_lexicons(out / "lexicons", cfg.languages)

    langs: dict[str, int] = {}
    concept_images = [0] * len(concepts)
    for r in results:
        for k, v in r["languages"].items():
            langs[k] = langs.get(k, 0) + v
        concept_images = [a + b for a, b in zip(concept_images, r["concept_images"])]
    summary = {"num_samples": cfg.num_samples, "num_shards": n_shards,
               "pool_dir": str(out / "pool"), "eval_dir": str(ev),
               "languages": {k: langs.get(k, 0) for k in cfg.languages},
               "noise": sum(r["noise"] for r in results), "num_concepts": len(concepts),
               "concept_images": concept_images,
               "eval": {"zeroshot_classes": len(eval_class_ids(cfg)),
                        "zeroshot_images": len(eval_class_ids(cfg)) * cfg.eval_images_per_class,
                        "retrieval_pairs_per_language": cfg.eval_retrieval_pairs}}
    (out / "summary.json").write_text(json.dumps(summary, indent=1), encoding="utf-8")
    return summary
