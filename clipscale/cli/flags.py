"""The one way a verb defines its flags: from a typed model.

A verb states its options as a pydantic model (its own, or a component's config such as
``CurationConfig``); ``add_model_flags`` makes one flag per field (``num_samples`` ->
``--num-samples``, the field's description as help, its type and choices from the annotation) and
``model_values`` reads back the flags the user gave, so the model's defaults and validators apply
unchanged and a bad value is a ``ConfigError`` naming the field. A nested run config is reached
with dotted flags instead (``--train.lr 3e-4``, ``--stages.0.image_size 32``, or ``--set
FIELD=VALUE``), turned into overrides by ``overrides_from_flags``.

Types: ``bool`` -> ``--flag / --no-flag``; ``Literal`` -> choices; ``int``/``float``/``str``;
``list[...]`` -> one or more values, each of which may be comma-separated (``--languages en ja``
or ``--languages en,ja``); ``dict[str, float]`` -> ``KEY=VALUE`` items the same way. A field
listed in ``positional`` is a positional argument.
"""
from __future__ import annotations

import argparse
import types
import typing
from typing import Any

from pydantic import BaseModel

from clipscale.config_core import validate


def flag_name(field: str) -> str:
    return "--" + field.replace("_", "-")


def _split(text: str) -> list[str]:
    return [x.strip() for x in text.split(",") if x.strip()]


def _pairs(text: str) -> dict[str, float]:
    """``en=0.3,es=0.2`` -> {"en": 0.3, "es": 0.2}."""
    out = {}
    for part in _split(text):
        key, _, value = part.partition("=")
        try:
            out[key.strip()] = float(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected KEY=NUMBER, got {part!r}") from None
    return out


def _flat(values: list) -> list:
    return [x for v in values for x in (v if isinstance(v, list) else [v])]


class _Items(argparse.Action):
    """Collects the values of a list or dict flag (each value possibly comma-separated)."""

    def __call__(self, parser, namespace, values, option_string=None):
        if self.type is _pairs:
            merged: dict = {}
            for v in values:
                merged.update(v)
            setattr(namespace, self.dest, merged)
        else:  # a repeated flag adds to the values of the earlier ones
            setattr(namespace, self.dest, (getattr(namespace, self.dest) or []) + _flat(values))


def _members(annotation) -> tuple:
    """The types a field accepts, ``None`` dropped (``int | None`` -> (int,))."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return tuple(a for a in typing.get_args(annotation) if a is not type(None))
    return (annotation,)


def _kind(annotation) -> tuple[str, Any]:
    members = _members(annotation)
    for m in members:
        origin = typing.get_origin(m)
        if origin is list:
            return "list", (typing.get_args(m) or (str,))[0]
        if origin is dict:
            return "dict", None
    m = members[0]
    if typing.get_origin(m) is typing.Literal:
        return "choice", typing.get_args(m)
    if isinstance(m, type) and issubclass(m, str) and hasattr(m, "__members__"):   # a str Enum
        return "choice", tuple(e.value for e in m)
    if m is bool or bool in members:
        return "bool", None
    for t in (int, float):
        if t in members:
            return "scalar", t
    return "scalar", str


def _default_text(f) -> str:
    default = f.get_default(call_default_factory=True)
    if f.is_required():
        return "required"
    return "optional" if default is None else f"default: {getattr(default, 'value', default)}"


def add_model_flags(parser, model: type[BaseModel], *, positional: tuple[str, ...] = (),
                    skip: tuple[str, ...] = (), aliases: dict[str, str] | None = None,
                    nargs: dict[str, str] | None = None, file_backed: bool = False,
                    whole: tuple[str, ...] = ()) -> None:
    """One flag per field of ``model`` (``skip`` none; ``aliases`` adds another flag name,
    ``nargs`` sets a list flag's count, e.g. ``"*"`` where no value means all). Every flag defaults
    to unset (None), so ``model_values`` sees only what was given. ``file_backed``: a config file
    may give the required fields, so the flags are not required (validation names what is missing).
    ``whole``: list fields whose values hold commas of their own (not split on them)."""
    aliases, nargs = aliases or {}, nargs or {}
    for name, f in model.model_fields.items():
        if name in skip:
            continue
        kind, arg = _kind(f.annotation)
        help_ = f"{f.description or name} ({_default_text(f)})".replace("%", "%%")
        names = [flag_name(name)] + ([aliases[name]] if name in aliases else [])
        kw: dict[str, Any] = {"help": help_, "default": None}
        if kind == "bool":
            kw["action"] = argparse.BooleanOptionalAction
        elif kind == "choice":
            kw["choices"] = list(arg)
        elif kind == "list":
            kw.update(type=(lambda s: [s]) if name in whole else
                      lambda s, t=arg: [t(x) for x in _split(s)] if t in (int, float) else _split(s),
                      nargs=nargs.get(name, "+"), action=_Items, metavar="VALUE")
        elif kind == "dict":
            kw.update(type=_pairs, nargs="+", action=_Items, metavar="KEY=VALUE")
        else:
            kw["type"] = arg
        if name in positional:
            kw.pop("default")
            required = f.is_required()
            parser.add_argument(name, nargs=None if required else "?", default=None, **kw)
        else:
            parser.add_argument(*names, dest=name, required=f.is_required() and not file_backed, **kw)


def model_values(args: argparse.Namespace, model: type[BaseModel]) -> dict:
    """The fields of ``model`` given on the command line (flags left unset are absent)."""
    return {name: getattr(args, name) for name in model.model_fields
            if getattr(args, name, None) is not None}


def model_from_args(args: argparse.Namespace, model: type[BaseModel], base: dict | None = None,
                    source: str = "command line", kind: str = "options"):
    """``model`` validated from ``base`` (a config file's mapping) with the given flags over it."""
    return validate(model, {**(base or {}), **model_values(args, model)}, source, kind)


# ------------------------------------------------------------------------ dotted overrides

def accept_overrides(parser: argparse.ArgumentParser, what: str = "a config field") -> None:
    """The verb takes dotted ``--section.field VALUE`` flags and ``--set FIELD=VALUE``."""
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="FIELD=VALUE",
                        help=f"override {what} (repeatable; same as --FIELD VALUE)")
    parser.set_defaults(accepts_overrides=True)


def overrides_from_flags(extra: list[str], parser: argparse.ArgumentParser) -> list[str]:
    """``--train.lr 3e-4`` or ``--train.lr=3e-4`` -> ``train.lr=3e-4`` (any config field)."""
    out, i = [], 0
    while i < len(extra):
        flag = extra[i]
        if not flag.startswith("--") or "." not in flag.split("=")[0]:
            parser.error(f"unrecognized argument {flag!r} (config fields are --section.field VALUE)")
        if "=" in flag:
            out.append(flag[2:])
            i += 1
        elif i + 1 < len(extra):
            out.append(f"{flag[2:]}={extra[i + 1]}")
            i += 2
        else:
            parser.error(f"{flag} needs a value")
    return out
