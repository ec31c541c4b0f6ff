"""CLIPA's inverse scaling law: the larger the model, the shorter the token sequences it can train on.

Accuracy against image (or text) token count per model size, and for each size the shortest length whose
accuracy stays within a tolerance of its full-length accuracy.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from analysis.checks import DegenerateInputError
from analysis.load import finals

TOKEN_AXES = ("image_tokens", "text_tokens")


def _other_axis(axis: str) -> str:
    if axis not in TOKEN_AXES:
        raise ValueError(f"axis must be one of {TOKEN_AXES}, got {axis!r}")
    return TOKEN_AXES[1 - TOKEN_AXES.index(axis)]


def token_length_runs(frame: pd.DataFrame, axis: str = "image_tokens", metric: str = "zeroshot_top1_mean",
                      languages: str | None = None) -> pd.DataFrame:
    """The runs the token-length comparison uses: each run's final evaluation, one training-language mix
    (``languages``; default: the mix with most runs), per model only the runs at that model's largest
    samples_seen with the other token axis at its full (largest) length for that model."""
    other = _other_axis(axis)
    for col in (axis, other, metric, "params"):
        if col not in frame.columns:
            raise DegenerateInputError(f"results have no column {col!r}")
    rows = finals(frame).dropna(subset=[metric])
    if rows.empty:
        raise DegenerateInputError(f"no finished evaluation has {metric}")
    if languages is None:
        counts = rows["languages"].value_counts()
        languages = sorted(counts[counts == counts.max()].index)[0]
    rows = rows[rows["languages"] == languages]
    if rows.empty:
        raise DegenerateInputError(f"no run trained on languages {languages!r}")
    keep = (rows["samples_seen"] == rows.groupby("model")["samples_seen"].transform("max")) & \
           (rows[other] == rows.groupby("model")[other].transform("max"))
    return rows[keep].reset_index(drop=True)


def token_length_table(frame: pd.DataFrame, axis: str = "image_tokens",
                       metric: str = "zeroshot_top1_mean", languages: str | None = None) -> pd.DataFrame:
    """Mean accuracy (over seeds) per model and token length on ``axis``, over ``token_length_runs``
    (like compared with like). Columns: model, params, languages, <axis>, accuracy, runs."""
    sel = token_length_runs(frame, axis, metric, languages)
    languages = sel["languages"].iloc[0]
    table = (sel.groupby(["model", axis], sort=False)
             .agg(params=("params", "first"), accuracy=(metric, "mean"), runs=(metric, "size"))
             .reset_index())
    table["languages"] = languages
    table = table[["model", "params", "languages", axis, "accuracy", "runs"]]
    return table.sort_values(["params", "model", axis], kind="stable").reset_index(drop=True)


def shortest_token_length(table: pd.DataFrame, axis: str = "image_tokens", tolerance: float = 0.01) -> pd.DataFrame:
    """Per model: full length and its accuracy, and the shortest length with accuracy >= full - ``tolerance``
    (absolute, in accuracy units). Columns: model, params, full_tokens, full_accuracy, shortest_tokens,
    shortest_accuracy, reduction (full / shortest)."""
    _other_axis(axis)
    if table["model"].nunique() < 2:
        raise DegenerateInputError("one model size only: the inverse scaling law compares model sizes")
    if all(int(n) < 2 for n in table.groupby("model")[axis].nunique()):
        raise DegenerateInputError(f"{axis} does not vary within any model; nothing to compare")
    out = []
    for model, g in table.groupby("model", sort=False):
        g = g.sort_values(axis)
        full = g.iloc[-1]
        ok = g[g["accuracy"] >= full["accuracy"] - tolerance]
        short = ok.iloc[0]
        out.append({"model": model, "params": full["params"], "full_tokens": int(full[axis]),
                    "full_accuracy": float(full["accuracy"]), "shortest_tokens": int(short[axis]),
                    "shortest_accuracy": float(short["accuracy"]),
                    "reduction": float(full[axis]) / float(short[axis])})
    res = pd.DataFrame(out)
    return res.sort_values(["params", "model"], kind="stable").reset_index(drop=True)


def inverse_scaling_holds(shortest: pd.DataFrame) -> bool:
    """True when the shortest tolerable length never grows with model size (CLIPA's finding)."""
    s = shortest.sort_values("params")["shortest_tokens"].to_numpy()
    return bool(np.all(np.diff(s) <= 0))
