"""Held-out evaluation sets, loaded once and kept decoded.

Layout (what ``clipscale data emoji-world`` writes, and what a user's own sets must follow)::

    eval/classes.json          {"languages": [...], "prompts": {lang: ["{x} emoji", ...]},
                                "classes": [{"label": 0, "names": {lang: name}}, ...]}
    eval/zeroshot.tar          KEY.jpg + KEY.json {"label": int}
    eval/retrieval/<lang>.tar  KEY.jpg + KEY.txt (the caption)

Images are kept as uint8 (a quarter of the memory of floats) and normalised per batch. The folder
is a local path or a URI (s3://, gs://, file://; see clipscale/storage.py).
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field

import numpy as np

from clipscale import storage
from clipscale.data.images import ImageDecodeError, decode_image
from clipscale.data.shards import iter_shard
from clipscale.errors import NotFound

_CACHE: dict[tuple[str, int], "EvalSets"] = {}


@dataclass
class EvalSets:
    eval_dir: str
    image_size: int
    languages: list[str]
    class_names: dict[str, list[str]]          # language -> name of each label
    prompts: dict[str, list[str]]              # language -> templates with "{x}" for the name
    zeroshot_images: np.ndarray                # uint8 [N, H, W, 3]
    zeroshot_labels: np.ndarray                # int64 [N]
    retrieval: dict[str, tuple[np.ndarray, list[str]]] = field(default_factory=dict)
    skipped: int = 0                           # corrupt images / captions left out

    @property
    def num_classes(self) -> int:
        return len(next(iter(self.class_names.values())))

    @classmethod
    def load(cls, eval_dir: str | os.PathLike, image_size: int) -> "EvalSets":
        """Read and decode the sets; cached per (folder, image size) within the process."""
        d = eval_dir if storage.is_uri(eval_dir) else os.path.abspath(eval_dir)
        key = (d, int(image_size))
        if key not in _CACHE:
            _CACHE[key] = _load(d, int(image_size))
        return _CACHE[key]


def _load(d: str, size: int) -> EvalSets:
    classes_file, zs_file = storage.join(d, "classes.json"), storage.join(d, "zeroshot.tar")
    for p in (classes_file, zs_file):
        if not storage.is_file(p):
            raise NotFound(f"evaluation set incomplete: {p} is missing (generate one "
                                    "with `clipscale data emoji-world`)")
    doc = json.loads(storage.read_text(classes_file))
    languages = list(doc["languages"])
    classes = sorted(doc["classes"], key=lambda c: c["label"])
    if [c["label"] for c in classes] != list(range(len(classes))):
        raise ValueError(f"{classes_file}: labels must be 0..C-1")
    missing = [(c["label"], lang) for c in classes for lang in languages
               if not c["names"].get(lang)]
    if missing:
        raise ValueError(f"{classes_file}: classes without a name in some language: {missing[:5]}")
    names = {lang: [c["names"][lang] for c in classes] for lang in languages}
    prompts = {lang: list(doc.get("prompts", {}).get(lang) or ["{x}"]) for lang in languages}

    skipped = 0
    images, labels = [], []
    for s in iter_shard(zs_file):
        try:
            images.append(decode_image(s.image, size))
            labels.append(int(s.meta["label"]))
        except (ImageDecodeError, KeyError, TypeError, ValueError):
            skipped += 1
    retrieval = {}
    for lang in languages:
        p = storage.join(d, "retrieval", f"{lang}.tar")
        if not storage.is_file(p):
            raise NotFound(f"evaluation set incomplete: {p} is missing")
        r_images, captions = [], []
        for s in iter_shard(p):
            if s.text is None or s.image is None:
                skipped += 1
                continue
            try:
                r_images.append(decode_image(s.image, size))
            except ImageDecodeError:
                skipped += 1
                continue
            captions.append(s.text)
        if len(captions) < 2:
            raise ValueError(f"{p}: fewer than 2 usable pairs")
        retrieval[lang] = (np.stack(r_images), captions)
    if not images:
        raise ValueError(f"{zs_file}: no usable zero-shot image")
    return EvalSets(d, size, languages, names, prompts, np.stack(images),
                    np.array(labels, dtype=np.int64), retrieval, skipped)


def chance_levels(sets: EvalSets, ks=(1, 5)) -> dict[str, float]:
    """What a random ranking scores on each metric: 1/C for zero-shot top-1 (C classes), and
    min(k, N)/N for recall@k over N pairs."""
    out = {}
    z = 1.0 / sets.num_classes
    for lang in sets.languages:
        out[f"zeroshot_top1_{lang}"] = z
        n = len(sets.retrieval[lang][1])
        for k in ks:
            out[f"i2t_r{k}_{lang}"] = out[f"t2i_r{k}_{lang}"] = min(k, n) / n
    out["zeroshot_top1_mean"] = z
    if any(lang != "en" for lang in sets.languages):
        out["zeroshot_top1_non_en"] = z
    return out
