"""The sweep file: a base run plus the axes swept over it, validated on entry.

An axis is a run-config field path (``model.name``, ``stages.0.image_size``, ``train.samples_seen``)
or one of the named shortcuts below; its values are a list. ``mode: grid`` takes every
combination, ``mode: list`` takes the ``points`` given (each a mapping of axis -> value). Loading a
sweep expands and validates every trial's run config, so an impossible combination is refused
before anything starts, with the sweep file and the axis named.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from clipscale.config import RunConfig
from clipscale.config_core import merge, parse_overrides, read_yaml, validate

# Shortcut axis -> the run-config field it sets. Stage fields go to stage 0: in a CLIPA schedule
# the first stage is the reduced-token pretraining that a sweep varies; a fine-tuning stage
# after it keeps its own settings (sweep it with a full path such as stages.1.image_size).
SHORTCUTS: dict[str, str] = {
    "model": "model.name",
    "samples_seen": "train.samples_seen",
    "seed": "train.seed",
    "english_share": "data.english_share",
    "languages": "data.languages",
    "image_size": "stages.0.image_size",
    "image_reduction": "stages.0.image_reduction",
    "image_keep": "stages.0.image_keep",
    "text_tokens": "stages.0.text_tokens",
    "text_reduction": "stages.0.text_reduction",
}
# image_tokens is resolved per trial, because the patch size depends on the model: with resize it
# sets the image size to sqrt(tokens) patches per side (stage 0).
IMAGE_TOKENS = "image_tokens"


class SweepConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$", description="Sweep name: the W&B group, the Tune experiment and the results' `sweep` column.")
    base: str | dict = Field(description="The base run: a run YAML path (relative to the sweep file) or an inline run config.")
    axes: dict[str, list[Any]] = Field(default_factory=dict, description="Axis -> values (grid mode), or the axes' names with [] in list mode.")
    mode: Literal["grid", "list"] = "grid"
    points: list[dict[str, Any]] | None = Field(None, description="list mode: the trials, each axis -> value.")
    max_concurrent_trials: int | None = Field(None, ge=1, description="Cap on concurrent trials; default: what the cluster's resources allow.")
    pack_trials: bool = Field(
        False, description="Run the trials back to back in long-lived worker groups, one per concurrent slot, "
                           "instead of starting a Ray Train worker group per trial: for many short one-worker "
                           "trials, whose start-up would otherwise rival their training (docs/throughput.md). "
                           "Every trial must use train.num_workers: 1.")

    @field_validator("axes")
    @classmethod
    def _axes(cls, axes):
        for axis, values in axes.items():
            check_axis(axis)
            if not isinstance(values, list):
                raise ValueError(f"axes.{axis}: expected a list of values")
        return axes

    @model_validator(mode="after")
    def _mode(self):
        if self.mode == "grid":
            if self.points is not None:
                raise ValueError("points: only for mode: list")
            if not self.axes:
                raise ValueError("axes: a grid sweep needs at least one axis")
            for axis, values in self.axes.items():
                if not values:
                    raise ValueError(f"axes.{axis}: empty list: the grid would have no trial")
        else:
            if not self.points:
                raise ValueError("points: mode: list needs at least one point")
            for i, point in enumerate(self.points):
                for axis in point:
                    try:
                        check_axis(axis)
                    except ValueError as e:
                        raise ValueError(f"points.{i}: {e}") from None
        return self


def field_path(axis: str) -> str:
    return SHORTCUTS.get(axis, axis)


def check_axis(axis: str) -> None:
    """Refuse an axis that is neither a shortcut nor a field path of RunConfig."""
    if axis in SHORTCUTS or axis == IMAGE_TOKENS:
        return
    node: Any = RunConfig
    for part in axis.split("."):
        if isinstance(node, type) and issubclass(node, BaseModel):
            if part not in node.model_fields:
                raise ValueError(f"axes.{axis}: unknown axis (not a run-config field; shortcuts: "
                                 f"{', '.join(sorted([*SHORTCUTS, IMAGE_TOKENS]))})")
            node = node.model_fields[part].annotation
        elif getattr(node, "__origin__", None) is list and part.isdigit():
            node = node.__args__[0]
        else:
            raise ValueError(f"axes.{axis}: unknown axis ({part!r} does not name a field here)")


def load_sweep(path: str | os.PathLike) -> tuple[SweepConfig, Path]:
    """Read and validate a sweep YAML; returns it with the folder its relative paths are taken from."""
    path = Path(path)
    data = read_yaml(path)
    return validate(SweepConfig, data, str(path), "sweep"), path.parent.resolve()


def base_config(sweep: SweepConfig, folder: Path, overrides: list[str] | None = None) -> tuple[dict, Path]:
    """The base run as a dict (not yet validated: axes fill it) and the folder its paths are relative to."""
    if isinstance(sweep.base, str):
        base_path = (folder / sweep.base).resolve()
        data, base_folder = read_yaml(base_path), base_path.parent
    else:
        data, base_folder = dict(sweep.base), folder
    if overrides:
        data = merge(data, parse_overrides(overrides))
    return data, base_folder
