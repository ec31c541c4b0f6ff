"""The emoji-world evaluation sets rewritten in the standard suite formats, so the demo goes
through the same readers as ImageNet, XM3600 or a clip_benchmark dataset would.

From the emoji-world layout (``eval/classes.json``, ``eval/zeroshot.tar``,
``eval/retrieval/<lang>.tar``; evaluation/sets.py) this writes ``eval/suites/``::

    suites.yaml                     the suites below, ready for `eval.suites` / `clipscale eval --suite`
    folder/CLASS/KEY.png            image_folder: the zero-shot images, one folder per class
    folder/classnames.json          {lang: {"classnames": {CLASS: name}, "templates": [...]}}
    retrieval/images/LANG/KEY.png   multilingual_retrieval images
    retrieval/captions.jsonl        {"image": ..., "captions": {lang: [caption]}} per line
    wds/LANG/ , wds_retrieval/LANG/ clip_benchmark's webdataset layout, one folder per language

Image bytes are copied unchanged, so the image-folder suite's ``top1_<lang>`` equals the legacy
``zeroshot_top1_<lang>`` of the same model. The whole folder is built beside its target and
renamed into place, so an interrupted conversion leaves nothing half-written.
"""
from __future__ import annotations

import io
import json
import os
import shutil
import tarfile
import tempfile
from pathlib import Path

import yaml

from clipscale.data.shards import iter_shard

SUITES_FOLDER = "suites"
SUITE_FILE = "suites.yaml"


def _placeholder(template: str) -> str:
    return template.replace("{x}", "{c}")  # clip_benchmark fills templates with .format(c=name)


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mtime = len(data), 0
    tar.addfile(info, io.BytesIO(data))


def _write_wds(root: Path, samples: list[tuple[bytes, str, str]], classnames=None, templates=None):
    """clip_benchmark's layout (clip_benchmark/webdataset_builder.py): ``test/0.tar`` with
    ``s%07d.<ext>`` + ``.cls`` (or ``.txt``), ``test/nshards.txt``, class names and templates."""
    (root / "test").mkdir(parents=True)
    with tarfile.open(root / "test" / "0.tar", "w") as tar:
        for i, (image, ext, target) in enumerate(samples):
            _add(tar, f"s{i:07d}.{ext}", image)
            _add(tar, f"s{i:07d}.{'txt' if classnames is None else 'cls'}", target.encode("utf-8"))
    (root / "test" / "nshards.txt").write_text("1\n")
    if classnames is None:
        (root / "dataset_type.txt").write_text("retrieval\n")
    else:
        (root / "classnames.txt").write_text("\n".join(classnames) + "\n", encoding="utf-8")
        (root / "zeroshot_classification_templates.txt").write_text("\n".join(templates) + "\n",
                                                                     encoding="utf-8")


def _build(eval_dir: Path, out: Path) -> None:
    doc = json.loads((eval_dir / "classes.json").read_text(encoding="utf-8"))
    languages = list(doc["languages"])
    classes = sorted(doc["classes"], key=lambda c: c["label"])
    folders = [f"{c['label']:04d}" for c in classes]
    templates = {lang: [_placeholder(t) for t in doc["prompts"][lang]] for lang in languages}

    zeroshot = []
    for s in iter_shard(str(eval_dir / "zeroshot.tar")):
        if s.image is None or "label" not in s.meta:
            continue  # the legacy reader skips these too
        label = int(s.meta["label"])
        dest = out / "folder" / folders[label] / f"{s.key}.{s.image_ext}"
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(s.image)
        zeroshot.append((s.image, s.image_ext, str(label)))
    names = {lang: {"classnames": {f: c["names"][lang] for f, c in zip(folders, classes)},
                    "templates": templates[lang]} for lang in languages}
    (out / "folder" / "classnames.json").write_text(json.dumps(names, ensure_ascii=False, indent=1),
                                                    encoding="utf-8")

    lines = []
    for lang in languages:
        pairs = []
        for s in iter_shard(str(eval_dir / "retrieval" / f"{lang}.tar")):
            if s.image is None or s.text is None:
                continue
            rel = f"images/{lang}/{s.key}.{s.image_ext}"
            (out / "retrieval" / rel).parent.mkdir(parents=True, exist_ok=True)
            (out / "retrieval" / rel).write_bytes(s.image)
            lines.append(json.dumps({"image": rel, "captions": {lang: [s.text]}}, ensure_ascii=False))
            pairs.append((s.image, s.image_ext, s.text))
        _write_wds(out / "wds_retrieval" / lang, pairs)
        _write_wds(out / "wds" / lang, zeroshot, [c["names"][lang] for c in classes], templates[lang])
    (out / "retrieval" / "captions.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")

    suites = [{"name": "emoji_folder", "kind": "image_folder", "path": "folder",
               "classnames": "folder/classnames.json"},
              {"name": "emoji_retrieval", "kind": "multilingual_retrieval", "path": "retrieval"},
              {"name": "emoji_wds_en", "kind": "clip_benchmark_wds", "path": "wds/en", "language": "en"}]
    if "en" not in languages:
        suites = suites[:2]
    (out / SUITE_FILE).write_text(yaml.safe_dump({"suites": suites}, sort_keys=False), encoding="utf-8")


def write_emoji_suites(eval_dir: str | os.PathLike) -> Path:
    """Write ``eval_dir/suites/`` (see the module doc) unless it is already there; returns the
    suites file's path."""
    eval_dir = Path(eval_dir)
    final = eval_dir / SUITES_FOLDER
    if (final / SUITE_FILE).exists():
        return final / SUITE_FILE
    tmp = Path(tempfile.mkdtemp(prefix=f".{SUITES_FOLDER}.", dir=eval_dir))
    try:
        _build(eval_dir, tmp)
        if final.exists():
            shutil.rmtree(final)  # an earlier conversion that did not finish (no suites.yaml)
        os.chmod(tmp, 0o755)
        os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final / SUITE_FILE
