"""Read an evaluation suite (see suite_config.py for the formats) into one of two shapes.

``ClassificationData``: images, labels and, per language, class names and prompt templates.
``RetrievalData``: images and, per language, captions with the image each belongs to.

Every malformed input raises ``SuiteError`` naming the file and the field (or tar member, or
line) before any model runs, so a bad suite never yields numbers on part of a set. Images stay
encoded until scoring (``ImageList``), so an ImageNet-size folder is not held decoded.
"""
from __future__ import annotations

import json
import os
import re
import tarfile
from dataclasses import dataclass, field

import numpy as np

from clipscale.config import ConfigError
from clipscale.data.images import ImageDecodeError, decode_image
from clipscale.evaluation.suite_config import (ClipBenchmarkWdsSuite, ImageFolderSuite,
                                               MultilingualRetrievalSuite)

IMAGE_EXTENSIONS = ("webp", "png", "jpg", "jpeg")  # clip_benchmark's wds reader, in its order
# sets up to this many decoded bytes are kept decoded between evaluations (training evaluates often)
DECODED_CACHE_BYTES = 2 << 30


class SuiteError(ConfigError):
    """A malformed evaluation suite; the message names the file and the field."""


@dataclass
class ImageList:
    """Encoded images (bytes, or a file path) with a name for each, for error messages."""
    items: list[bytes | str]
    names: list[str]
    _decoded: dict = field(default_factory=dict, repr=False)

    def __len__(self) -> int:
        return len(self.items)

    def _decode(self, i: int, size: int) -> np.ndarray:
        item = self.items[i]
        try:
            data = item if isinstance(item, bytes) else open(item, "rb").read()
            return decode_image(data, size)
        except (OSError, ImageDecodeError) as e:
            raise SuiteError(f"{self.names[i]}: unreadable image ({e})") from None

    def batches(self, size: int, batch_size: int):
        """uint8 [B, size, size, 3] batches in order; a small set is decoded once and kept."""
        if size in self._decoded:
            arr = self._decoded[size]
            for i in range(0, len(arr), batch_size):
                yield arr[i:i + batch_size]
            return
        keep = len(self) * size * size * 3 <= DECODED_CACHE_BYTES
        parts = []
        for i in range(0, len(self), batch_size):
            batch = np.stack([self._decode(j, size) for j in range(i, min(i + batch_size, len(self)))])
            if keep:
                parts.append(batch)
            yield batch
        if keep and parts:
            self._decoded[size] = np.concatenate(parts)


@dataclass
class ClassificationData:
    images: ImageList
    labels: np.ndarray                      # int64 [N]
    classnames: dict[str, list[str]]        # language -> name of each label
    templates: dict[str, list[str]]         # language -> templates with "{c}" for the name

    task = "zeroshot_classification"

    @property
    def languages(self) -> list[str]:
        return list(self.classnames)


@dataclass
class RetrievalData:
    images: ImageList
    captions: dict[str, tuple[list[str], np.ndarray]]  # language -> (captions, image index of each)

    task = "zeroshot_retrieval"

    @property
    def languages(self) -> list[str]:
        return list(self.captions)


def read_suite(suite) -> ClassificationData | RetrievalData:
    readers = {"clip_benchmark_wds": read_clip_benchmark_wds, "image_folder": read_image_folder,
               "multilingual_retrieval": read_multilingual_retrieval}
    return readers[suite.kind](suite)


def check_suites(suites) -> None:
    """Read every suite once (indexes and names, images left encoded) so a malformed one fails
    where the run is launched, not on the workers."""
    for suite in suites:
        read_suite(suite)


def _text(path: str, what: str) -> str:
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except FileNotFoundError:
        raise SuiteError(f"{path}: missing ({what})") from None
    except (OSError, UnicodeDecodeError) as e:
        raise SuiteError(f"{path}: unreadable ({what}: {e})") from None


def check_templates(templates, where: str) -> list[str]:
    if not isinstance(templates, list) or not templates or not all(isinstance(t, str) for t in templates):
        raise SuiteError(f"{where}: needs a non-empty list of template strings")
    bad = [t for t in templates if not any(p in t for p in ("{c}", "{}", "{x}"))]
    if bad:
        raise SuiteError(f"{where}: template {bad[0]!r} has no class-name placeholder ({{c}})")
    return templates


# ---- clip_benchmark webdataset ----

_KEY = re.compile(r"^((?:.*/|)[^./]+)\.([^/]*)$")  # webdataset's key/extension split


def _wds_samples(tar_path: str) -> dict[str, dict[str, bytes]]:
    samples: dict[str, dict[str, bytes]] = {}
    try:
        with tarfile.open(tar_path) as tar:
            for m in tar:
                match = _KEY.match(m.name)
                if not m.isfile() or not match:
                    continue
                samples.setdefault(match.group(1), {})[match.group(2).lower()] = tar.extractfile(m).read()
    except FileNotFoundError:
        raise SuiteError(f"{tar_path}: missing (listed by nshards.txt)") from None
    except (tarfile.TarError, OSError) as e:
        raise SuiteError(f"{tar_path}: unreadable tar ({e})") from None
    return samples


def read_clip_benchmark_wds(suite: ClipBenchmarkWdsSuite) -> ClassificationData | RetrievalData:
    root, lang = suite.path, suite.language
    nshards_file = os.path.join(root, suite.split, "nshards.txt")
    raw = _text(nshards_file, "number of shards").strip()
    if not raw.isdigit() or int(raw) < 1:
        raise SuiteError(f"{nshards_file}: expected a positive integer, got {raw!r}")
    type_file = os.path.join(root, "dataset_type.txt")
    kind = _text(type_file, "").strip().lower() if os.path.isfile(type_file) else "classification"
    if kind not in ("classification", "retrieval"):
        raise SuiteError(f"{type_file}: dataset type {kind!r} is not supported (classification, retrieval)")
    items, names, labels, captions, text_image = [], [], [], [], []
    for s in range(int(raw)):
        tar_path = os.path.join(root, suite.split, f"{s}.tar")
        for key, members in _wds_samples(tar_path).items():
            where = f"{tar_path}: sample {key!r}"
            ext = next((e for e in IMAGE_EXTENSIONS if e in members), None)
            if ext is None:
                raise SuiteError(f"{where}: no image member (.{', .'.join(IMAGE_EXTENSIONS)})")
            if kind == "retrieval":
                if "txt" not in members:
                    raise SuiteError(f"{where}: no 'txt' captions member")
                lines = [c for c in members["txt"].decode("utf-8", "replace").splitlines() if c.strip()]
                if not lines:
                    raise SuiteError(f"{where}: 'txt' holds no caption")
                captions += lines
                text_image += [len(items)] * len(lines)
            else:
                try:
                    labels.append(int(members["cls"].decode().strip()))
                except KeyError:
                    raise SuiteError(f"{where}: no 'cls' label member") from None
                except ValueError:
                    raise SuiteError(f"{where}: 'cls' is not an integer") from None
            items.append(members[ext])
            names.append(f"{tar_path}: {key}.{ext}")
    images = ImageList(items, names)
    if kind == "retrieval":
        if len(items) < 2:
            raise SuiteError(f"{root}: retrieval needs at least 2 images, found {len(items)}")
        return RetrievalData(images, {lang: (captions, np.array(text_image, dtype=np.int64))})
    cn_file = os.path.join(root, "classnames.txt")
    classnames = [c.strip() for c in _text(cn_file, "class names").splitlines()]
    tp_file = os.path.join(root, "zeroshot_classification_templates.txt")
    templates = [t.strip() for t in _text(tp_file, "templates").splitlines() if t.strip()]
    check_templates(templates, tp_file)
    if not items:
        raise SuiteError(f"{os.path.join(root, suite.split)}: no samples")
    bad = sorted({c for c in labels if not 0 <= c < len(classnames)})
    if bad:
        raise SuiteError(f"{os.path.join(root, suite.split)}: 'cls' {bad[0]} outside the "
                         f"{len(classnames)} classes of {cn_file}")
    return ClassificationData(images, np.array(labels, dtype=np.int64), {lang: classnames},
                              {lang: templates})


# ---- ImageNet-style folder + per-language names ----

def read_image_folder(suite: ImageFolderSuite) -> ClassificationData:
    root, names_file = suite.path, suite.classnames
    if not os.path.isdir(root):
        raise SuiteError(f"{root}: not a folder (image_folder suite {suite.name!r}, field 'path')")
    folders = sorted(d for d in os.listdir(root) if os.path.isdir(os.path.join(root, d)))
    if len(folders) < 2:
        raise SuiteError(f"{root}: an image-folder suite needs at least 2 class folders")
    try:
        doc = json.loads(_text(names_file, "class names per language"))
    except json.JSONDecodeError as e:
        raise SuiteError(f"{names_file}: invalid JSON ({e})") from None
    if not isinstance(doc, dict) or not doc:
        raise SuiteError(f"{names_file}: expected {{language: {{classnames, templates}}}}")
    languages = suite.languages or list(doc)
    classnames, templates = {}, {}
    for lang in languages:
        entry = doc.get(lang)
        if not isinstance(entry, dict):
            raise SuiteError(f"{names_file}: field '{lang}': language missing")
        names = entry.get("classnames")
        if not isinstance(names, dict):
            raise SuiteError(f"{names_file}: field '{lang}.classnames': expected {{class folder: name}}")
        missing = [f for f in folders if not isinstance(names.get(f), str) or not names[f].strip()]
        if missing:
            raise SuiteError(f"{names_file}: field '{lang}.classnames': no name for class folder(s) "
                             f"{missing[:5]} ({len(missing)} of {len(folders)})")
        extra = sorted(set(names) - set(folders))
        if extra:
            raise SuiteError(f"{names_file}: field '{lang}.classnames': class(es) {extra[:5]} have no "
                             f"folder in {root}")
        classnames[lang] = [names[f] for f in folders]
        templates[lang] = check_templates(entry.get("templates"), f"{names_file}: field '{lang}.templates'")
    items, labels = [], []
    for label, folder in enumerate(folders):
        files = sorted(f for f in os.listdir(os.path.join(root, folder))
                       if f.rsplit(".", 1)[-1].lower() in IMAGE_EXTENSIONS)
        if not files:
            raise SuiteError(f"{os.path.join(root, folder)}: class folder without images")
        items += [os.path.join(root, folder, f) for f in files]
        labels += [label] * len(files)
    return ClassificationData(ImageList(items, list(items)), np.array(labels, dtype=np.int64),
                              classnames, templates)


# ---- multilingual retrieval, several captions per image ----

def read_multilingual_retrieval(suite: MultilingualRetrievalSuite) -> RetrievalData:
    root = suite.path
    cap_file = os.path.join(root, suite.captions)
    lines = _text(cap_file, "captions").splitlines()
    items, per_lang = [], {}
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        where = f"{cap_file}:{n}"
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as e:
            raise SuiteError(f"{where}: invalid JSON ({e})") from None
        image, caps = (rec.get("image"), rec.get("captions")) if isinstance(rec, dict) else (None, None)
        if not isinstance(image, str) or not image:
            raise SuiteError(f"{where}: field 'image': missing")
        if not os.path.isfile(os.path.join(root, image)):
            raise SuiteError(f"{where}: field 'image': {os.path.join(root, image)} does not exist")
        if not isinstance(caps, dict) or not any(
                isinstance(v, list) and any(isinstance(c, str) and c.strip() for c in v) for v in caps.values()):
            raise SuiteError(f"{where}: field 'captions': image {image!r} has no caption")
        for lang, texts in caps.items():
            if not isinstance(texts, list) or not all(isinstance(c, str) for c in texts):
                raise SuiteError(f"{where}: field 'captions.{lang}': expected a list of strings")
            texts = [c for c in texts if c.strip()]
            if texts:
                caps_l, idx_l = per_lang.setdefault(lang, ([], []))
                caps_l += texts
                idx_l += [len(items)] * len(texts)
        items.append(os.path.join(root, image))
    languages = suite.languages or sorted(per_lang)
    captions = {}
    for lang in languages:
        if lang not in per_lang:
            raise SuiteError(f"{cap_file}: field 'captions.{lang}': no image has captions in {lang!r}")
        texts, idx = per_lang[lang]
        if len(set(idx)) < 2:
            raise SuiteError(f"{cap_file}: field 'captions.{lang}': retrieval needs at least 2 images")
        captions[lang] = (texts, np.array(idx, dtype=np.int64))
    return RetrievalData(ImageList(items, list(items)), captions)
