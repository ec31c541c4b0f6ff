"""Typed configs of the evaluation suites (``eval.suites``): a discriminated union on ``kind``.

Formats (docs in README, "Evaluation suites"):

- ``clip_benchmark_wds``: clip_benchmark's webdataset layout (``classnames.txt``,
  ``zeroshot_classification_templates.txt``, optional ``dataset_type.txt``, ``<split>/nshards.txt``,
  ``<split>/0.tar`` ... with ``cls`` + an image, or ``txt`` captions one per line for retrieval).
- ``image_folder``: ImageNet-style ``CLASS/xxx.jpg`` with class names and templates per language
  from a JSON file (``{lang: {"classnames": {CLASS: name}, "templates": [...]}}``).
- ``multilingual_retrieval``: images and a ``captions.jsonl`` (one line per image:
  ``{"image": "rel/path.jpg", "captions": {lang: [caption, ...]}}``; XM3600 style).
"""
from __future__ import annotations

import os
from typing import Annotated, Callable, Literal, Union

from pydantic import BaseModel, ConfigDict, Field

NAME_PATTERN = r"^[A-Za-z0-9_.-]+$"


class _Suite(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    name: str = Field(pattern=NAME_PATTERN, description="Column prefix: `<name>/<metric>_<lang>`.")
    path: str = Field(description="The suite's folder (relative paths: to the file that names it).")

    def resolved(self, absolute: Callable[[str], str]) -> "_Suite":
        """A copy with every file field made absolute by ``absolute``."""
        return self.model_copy(update={f: absolute(getattr(self, f)) for f in self.file_fields()})

    @classmethod
    def file_fields(cls) -> list[str]:
        return ["path"]


class ClipBenchmarkWdsSuite(_Suite):
    kind: Literal["clip_benchmark_wds"]
    split: str = Field("test", description="The split folder holding nshards.txt and the tars.")
    language: str = Field("en", description="Language of the class names/captions (one per folder).")


class ImageFolderSuite(_Suite):
    kind: Literal["image_folder"]
    classnames: str = Field(description="JSON file: {lang: {\"classnames\": {CLASS: name}, "
                                        "\"templates\": [\"a photo of a {c}.\"]}}.")
    languages: list[str] | None = Field(None, min_length=1, description="Subset of the JSON's languages.")

    @classmethod
    def file_fields(cls) -> list[str]:
        return ["path", "classnames"]


class MultilingualRetrievalSuite(_Suite):
    kind: Literal["multilingual_retrieval"]
    captions: str = Field("captions.jsonl", description="Captions file, relative to `path`.")
    languages: list[str] | None = Field(None, min_length=1, description="Subset of the captions' languages.")


Suite = Annotated[Union[ClipBenchmarkWdsSuite, ImageFolderSuite, MultilingualRetrievalSuite],
                  Field(discriminator="kind")]


def check_unique_names(suites: list) -> None:
    names = [s.name for s in suites]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ValueError(f"suite names must be unique; repeated: {dup}")


def load_suite_file(path: str | os.PathLike) -> list:
    """A YAML file holding a list of suites (or ``{suites: [...]}``), paths relative to the file."""
    import yaml
    from pydantic import TypeAdapter, ValidationError

    from clipscale.config import ConfigError

    path = os.path.abspath(path)
    try:
        with open(path, encoding="utf-8") as f:
            doc = yaml.safe_load(f)
    except OSError as e:
        raise ConfigError(f"{path}: cannot read suite file ({e.strerror})") from None
    items = doc.get("suites") if isinstance(doc, dict) and "suites" in doc else doc
    if isinstance(items, dict):
        items = [items]
    try:
        suites = TypeAdapter(list[Suite]).validate_python(items)
        check_unique_names(suites)
    except ValidationError as e:
        errs = "; ".join(f"suites.{'.'.join(map(str, er['loc']))}: {er['msg']}" for er in e.errors())
        raise ConfigError(f"{path}: invalid suite: {errs}") from None
    except ValueError as e:
        raise ConfigError(f"{path}: {e}") from None
    base = os.path.dirname(path)
    return [s.resolved(lambda p: p if os.path.isabs(p) or "://" in p else os.path.join(base, p))
            for s in suites]


def parse_suite_arg(arg: str) -> list:
    """``--suite`` value: a suites YAML file, or one suite inline as ``key=value,...``
    (``kind=image_folder,name=inet,path=val,classnames=names.json``; paths relative to the cwd)."""
    from pydantic import TypeAdapter, ValidationError

    from clipscale.config import ConfigError

    if os.path.isfile(arg):
        return load_suite_file(arg)
    if "=" not in arg:
        raise ConfigError(f"--suite {arg}: neither a suites file nor key=value,... (no such file)")
    fields = dict(part.split("=", 1) for part in arg.split(",") if "=" in part)
    if "languages" in fields:
        fields["languages"] = fields["languages"].split("+")
    try:
        suite = TypeAdapter(Suite).validate_python(fields)
    except ValidationError as e:
        errs = "; ".join(f"{'.'.join(map(str, er['loc'])) or 'kind'}: {er['msg']}" for er in e.errors())
        raise ConfigError(f"--suite {arg}: {errs}") from None
    return [suite.resolved(os.path.abspath)]
