"""The config machinery every component shares: YAML reading, dotted overrides, one merge, one
validation-error format.

Runs (``clipscale.config``), sweeps (``clipscale.sweep.spec``), curation
(``clipscale.curation.config``) and the emoji world (``clipscale.data.emoji_world``) each own a
typed pydantic model; they read, override and validate it through these functions, so a bad
value is reported the same way everywhere: ``invalid <kind> <source>:`` then one
``  dotted.field: message`` line per problem.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from clipscale.errors import ConfigError

Model = TypeVar("Model", bound=BaseModel)


def format_validation_error(err: ValidationError, source: str, kind: str = "config") -> str:
    """``invalid <kind> <source>:`` and one ``  field.path: message`` line per error."""
    lines = [f"invalid {kind} {source}:"]
    for e in err.errors():
        loc = ".".join(str(p) for p in e["loc"]) or "(top level)"
        msg = "unknown key" if e["type"] == "extra_forbidden" else e["msg"].removeprefix("Value error, ")
        lines.append(f"  {loc}: {msg}")
    return "\n".join(lines)


def validate(model: type[Model], data: Any, source: str, kind: str = "config") -> Model:
    """``model.model_validate(data)``, a ValidationError turned into a ConfigError naming the fields."""
    try:
        return model.model_validate(data)
    except ValidationError as e:
        raise ConfigError(format_validation_error(e, source, kind)) from None


def parse_overrides(pairs: list[str]) -> dict:
    """``["train.lr=3e-4", "stages.0.image_size=32"]`` -> nested dict; values parsed as YAML
    scalars/lists so types match what a YAML file would give."""
    out: dict = {}
    for pair in pairs:
        key, eq, raw = pair.partition("=")
        if not eq or not key:
            raise ConfigError(f"override {pair!r}: expected FIELD=VALUE, e.g. train.lr=3e-4")
        node = out
        parts = key.split(".")
        for p in parts[:-1]:
            node = node.setdefault(p, {})
            if not isinstance(node, dict):
                raise ConfigError(f"override {pair!r}: {p} is set twice")
        node[parts[-1]] = parse_scalar(raw)
    return out


def parse_scalar(raw: str):
    """A command-line value as YAML reads it, except that ``3e-4`` is the number."""
    value = yaml.safe_load(raw)
    if isinstance(value, str):
        try:  # YAML 1.1 reads "3e-4" as a string; on a command line it means the number
            return float(value) if value.lower() not in ("nan", "inf", "-inf") else value
        except ValueError:
            pass
    return value


def nested(path: str, value: Any) -> dict:
    """``"stages.0.image_size", 32`` -> ``{"stages": {"0": {"image_size": 32}}}`` (the override
    form ``merge`` applies to lists by index)."""
    out: dict = {}
    node = out
    parts = path.split(".")
    for p in parts[:-1]:
        node = node.setdefault(p, {})
    node[parts[-1]] = value
    return out


def merge(base: Any, over: Any) -> Any:
    """``over`` laid onto ``base``: mappings merged key by key, a list updated by the digit keys of
    a mapping (``{"0": {...}}``), anything else replaced."""
    if isinstance(base, dict) and isinstance(over, dict):
        merged = dict(base)
        for k, v in over.items():
            merged[k] = merge(base.get(k), v) if k in base else v
        return merged
    if isinstance(base, list) and isinstance(over, dict) and all(k.isdigit() for k in over):
        merged = list(base)
        for k, v in over.items():
            i = int(k)
            if i >= len(merged):
                raise ConfigError(f"override index {i} is past the {len(merged)} items of a list")
            merged[i] = merge(merged[i], v)
        return merged
    return over


def read_yaml(path: str | os.PathLike) -> dict:
    """A YAML (or JSON) file whose top level is a mapping; errors name the file."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"{p}: config file not found")
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as e:
        raise ConfigError(f"{p}: not valid YAML ({e})") from e
    if not isinstance(data, dict):
        raise ConfigError(f"{p}: top level must be a mapping")
    return data
