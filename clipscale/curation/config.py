"""``CurationConfig``: what ``clipscale curate`` reads, validated on entry.

An unknown key, a wrong type or an impossible value raises ``ConfigError`` naming the file and the
field before Ray starts.
"""
from __future__ import annotations

import hashlib
import json
import os
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from clipscale.config_core import read_yaml, validate

# Meta CLIP's thresholds leave about 6% of English matches in the tail (docs/curation.md, step 5).
DEFAULT_TAIL_SHARE = 0.06


class CurationConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    input: str | list[str] = Field(
        description="Raw pool: a folder of .tar/.parquet shards, a glob, a shard, or a list of those.")
    output: str = Field(
        description="Output folder: curated shards under shards/, decisions/, curation_report.json.")
    metadata: str = Field(
        description="Metadata folder, one LANG.txt (an entry a line) or LANG.json per language.")
    languages: list[str] | None = Field(
        None, description="Metadata languages to use; default: every file in the metadata folder.")
    english: str = Field("en", description="The language whose tail share sets the other thresholds.")
    t_en: int | None = Field(
        None, gt=0, description="English threshold, given (Meta CLIP: 20k at 400M, 170k at 2.5B). "
                                "Exclusive with target_tail_share.")
    target_tail_share: float | None = Field(
        None, gt=0.0, lt=1.0,
        description=f"English tail share to derive t_en from when t_en is not given (default {DEFAULT_TAIL_SHARE}).")
    mode: Literal["offline", "online"] = Field(
        "offline", description="offline: draw once and write only kept samples; online: write every "
                               "matched sample with its keep probabilities for per-epoch draws.")
    seed: int = Field(0, description="Seed of the caption pick and keep draws.")
    trust_json_language: bool = Field(
        True, description="Use the sample json's `language` when present instead of language ID.")
    lid_languages: list[str] | None = Field(
        None, description="Restrict language ID to these codes (py3langid's); default: all it knows.")
    lid_max_chars: int = Field(2000, gt=0, description="Characters of a caption language ID reads.")
    add_numbers: bool = Field(True, description="Add the numbers 0-99 to every language's entries.")
    captions_field: str = Field(
        "captions", description="json field with further captions of the same image (a list of "
                                "strings); one matched caption per image is picked at random.")
    entry_punctuation: Literal["wrap", "metaclip"] = Field(
        "wrap", description="Entries holding , . ; : ? ! or a backtick: wrap (default) spaces those "
                            "marks as captions are spaced, so 'St. Louis' can match; metaclip pads "
                            "entries as written, as Meta CLIP 2's code does, so they never match.")
    workers: int = Field(2, ge=1, description="Ray Data actors (each builds its automata once).")
    cpus_per_worker: float = Field(
        1.0, gt=0.0, description="CPUs each actor reserves; below 1 to leave room on tiny machines.")
    num_cpus: int | None = Field(
        None, ge=1, description="CPUs for a local ray.init; ignored when Ray is already running.")
    overwrite: bool = Field(
        False, description="Discard a previous curation in `output` made with another config.")

    @model_validator(mode="after")
    def _one_threshold_source(self):
        if self.t_en is not None and self.target_tail_share is not None:
            raise ValueError("give t_en or target_tail_share, not both")
        return self

    @property
    def tail_share_target(self) -> float | None:
        if self.t_en is not None:
            return None
        return DEFAULT_TAIL_SHARE if self.target_tail_share is None else self.target_tail_share

    def fingerprint(self, metadata: dict[str, list[str]]) -> str:
        """What the outputs depend on: a re-run with the same fingerprint may reuse finished
        shards; another one must not mix its outputs with them."""
        fields = self.model_dump(exclude={"output", "workers", "cpus_per_worker", "num_cpus",
                                          "overwrite", "input"})
        if fields["entry_punctuation"] == "wrap":
            # The default is how every earlier curation matched: its fingerprint stays the same.
            del fields["entry_punctuation"]
        blob = json.dumps({"config": fields, "metadata": metadata}, sort_keys=True,
                          ensure_ascii=False)
        return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:16]


def build_curation_config(data: dict, source: str = "<arguments>") -> CurationConfig:
    return validate(CurationConfig, data, source, "curation config")


def load_curation_config(path: str | os.PathLike, overrides: dict | None = None) -> CurationConfig:
    """YAML file (optionally a top-level ``curate:`` section) plus overrides (CLI flags)."""
    data = read_yaml(path)
    if set(data) == {"curate"} and isinstance(data["curate"], dict):
        data = data["curate"]
    data.update({k: v for k, v in (overrides or {}).items() if v is not None})
    return build_curation_config(data, str(path))
