"""Meta CLIP 2's curse of multilinguality: does worldwide training cost English accuracy, and where does
that cost disappear (model size, seen pairs)?"""
from __future__ import annotations

import pandas as pd

from analysis.checks import DegenerateInputError
from analysis.load import finals

ENGLISH_METRIC = "zeroshot_top1_en"
NON_ENGLISH_METRIC = "zeroshot_top1_non_en"


def training_mix(languages: str, english_share: float) -> str:
    """'english-only' for a mix of English alone, 'worldwide' otherwise."""
    langs = [x for x in str(languages).split(",") if x]
    return "english-only" if langs == ["en"] or english_share >= 1.0 else "worldwide"


def language_accuracy_table(frame: pd.DataFrame) -> pd.DataFrame:
    """English and non-English accuracy (mean over seeds) per model, samples seen and training mix.
    Columns: model, params, samples_seen, mix, english, non_english, runs."""
    for col in ("languages", "english_share", ENGLISH_METRIC, NON_ENGLISH_METRIC):
        if col not in frame.columns:
            raise DegenerateInputError(f"results have no column {col!r}")
    rows = finals(frame).dropna(subset=[ENGLISH_METRIC])
    if rows.empty:
        raise DegenerateInputError(f"no finished evaluation has {ENGLISH_METRIC}")
    rows = rows.assign(mix=[training_mix(l, s) for l, s in zip(rows["languages"], rows["english_share"])])
    table = (rows.groupby(["model", "samples_seen", "mix"], sort=False)
             .agg(params=("params", "first"), english=(ENGLISH_METRIC, "mean"),
                  non_english=(NON_ENGLISH_METRIC, "mean"), runs=(ENGLISH_METRIC, "size"))
             .reset_index())
    table = table[["model", "params", "samples_seen", "mix", "english", "non_english", "runs"]]
    return table.sort_values(["params", "model", "samples_seen", "mix"], kind="stable").reset_index(drop=True)


def english_gap(table: pd.DataFrame, tolerance: float = 0.0) -> pd.DataFrame:
    """English accuracy of worldwide minus English-only training at the same model and samples seen.
    ``closed`` is gap >= -tolerance. Columns: model, params, samples_seen, english_worldwide,
    english_only, gap, closed."""
    ww = table[table["mix"] == "worldwide"]
    en = table[table["mix"] == "english-only"]
    if ww.empty or en.empty:
        raise DegenerateInputError("the English gap needs both worldwide and English-only runs "
                                   f"(found mixes: {sorted(table['mix'].unique())})")
    m = ww.merge(en, on=["model", "params", "samples_seen"], suffixes=("_ww", "_en"))
    if m.empty:
        raise DegenerateInputError("no (model, samples_seen) has both a worldwide and an English-only run")
    out = pd.DataFrame({"model": m["model"], "params": m["params"], "samples_seen": m["samples_seen"],
                        "english_worldwide": m["english_ww"], "english_only": m["english_en"]})
    out["gap"] = out["english_worldwide"] - out["english_only"]
    out["closed"] = out["gap"] >= -tolerance
    return out.sort_values(["params", "model", "samples_seen"], kind="stable").reset_index(drop=True)


def where_gap_closes(gap: pd.DataFrame) -> pd.DataFrame:
    """Per model, the smallest samples seen at which the gap is closed and stays closed at every larger
    scale measured (empty if it never does). Columns: model, params, closes_at_samples_seen, gap_at_largest."""
    out = []
    for model, g in gap.groupby("model", sort=False):
        g = g.sort_values("samples_seen")
        closed = g["closed"].to_numpy()
        at = None
        # walk back from the largest scale while closed: the first scale of that closed tail
        for i in range(len(g) - 1, -1, -1):
            if not closed[i]:
                break
            at = int(g["samples_seen"].iloc[i])
        out.append({"model": model, "params": g["params"].iloc[0],
                    "closes_at_samples_seen": at, "gap_at_largest": float(g["gap"].iloc[-1])})
    return pd.DataFrame(out).sort_values(["params", "model"], kind="stable").reset_index(drop=True)
