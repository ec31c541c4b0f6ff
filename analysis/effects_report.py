"""The report's statistics: the three effects with intervals and verdicts (and summary.json), and every
accuracy table given its chance level, its binomial interval and, for differences, a significance flag.

A table written before the eval-set sizes were recorded gets no invented interval: the page says so.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from analysis.effects import Effect, all_effects, summary, with_counts
from analysis.load import finals
from analysis.multilinguality import training_mix, where_gap_closes
from analysis.report import Report
from analysis.stats import LEVEL, difference_interval, excludes_zero, wilson_bounds

LABELS = {"inverse_scaling": "(a) inverse scaling", "english_gap": "(b) English gap",
          "power_law": "(c) power law"}
NO_SIZES = ("This results table records no eval-set sizes or class counts (zeroshot_n_<lang>, retrieval_n_<lang>, "
            "zeroshot_classes; tables written before they existed): accuracies below carry no binomial interval "
            "or chance level, and no effect can be resolved. Re-evaluate the checkpoints to get them.")
NO_SIZES_SHORT = "No eval-set sizes in this table: accuracies are shown without intervals or chance levels."


def verdict_lines(effects: list[Effect]) -> list[str]:
    """One line per effect, as the demo prints them last."""
    return [f"{LABELS.get(e.name, e.name)}: {e.statement}" for e in effects]


def summary_verdicts(doc: dict) -> list[str]:
    """``verdict_lines`` from a loaded summary.json (what ``clipscale demo`` prints last)."""
    order = sorted(doc["effects"], key=lambda k: (list(LABELS).index(k) if k in LABELS else len(LABELS), k))
    return [f"{LABELS.get(name, name)}: {doc['effects'][name]['statement']}" for name in order]


def write_summary(effects: list[Effect], metric: str, path: Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(summary(effects, metric), indent=2, sort_keys=True, allow_nan=False, default=float)
    path.write_bytes((text + "\n").encode("utf-8"))
    return path


def effects_table(effects: list[Effect]) -> pd.DataFrame:
    return pd.DataFrame([{"effect": LABELS.get(e.name, e.name), "estimate": e.estimate,
                          "ci_low": e.low, "ci_high": e.high, "verdict": e.verdict} for e in effects])


def effects_section(frame: pd.DataFrame, report: Report, out_dir: Path, metric: str, n_resamples: int,
                    seed: int) -> tuple[list[Effect], Path]:
    """The page's first section: each effect's estimate, 95% interval, verdict and one-line statement; the
    same as summary.json."""
    effects = all_effects(frame, metric, n_resamples=n_resamples, seed=seed)
    report.section("Effects, with 95% intervals",
                   f"Each effect's interval is a {effects[0].method}, {n_resamples} resamples. An interval that "
                   "holds zero is *not resolved at this scale*: no conclusion is drawn from it. Only models whose "
                   "accuracy is significantly above chance enter an effect.")
    report.table(effects_table(effects))
    if any("records no eval-set size" in e.statement for e in effects):
        report.text(NO_SIZES)
    for line in verdict_lines(effects):
        report.text(f"- {line}")
    chance = summary(effects, metric)["chance"]
    if chance:
        report.text("Chance levels: " + ", ".join(f"{k} {v:.4g}" for k, v in sorted(chance.items())) + ".")
    path = write_summary(effects, metric, Path(out_dir) / "summary.json")
    return effects, path


def add_intervals(table: pd.DataFrame, acc: str, level: float = LEVEL) -> pd.DataFrame:
    """``acc_low``/``acc_high`` (Wilson, from column ``n``) and ``above_chance`` (interval wholly above
    column ``chance``) beside accuracy column ``acc``."""
    low, high = wilson_bounds(table[acc].to_numpy(float), table["n"].to_numpy(float), level)
    return table.assign(**{f"{acc}_low": low, f"{acc}_high": high, "above_chance": low > table["chance"]})


def cell_counts(rows: pd.DataFrame, metric: str, keys: list[str]) -> pd.DataFrame | None:
    """Items scored (summed over a cell's runs) and chance level per cell of ``keys``; None without sizes."""
    counted, _ = with_counts(rows, metric)
    if counted is None:
        return None
    return counted.groupby(keys, sort=False).agg(n=("n", "sum"), chance=("chance", "max")).reset_index()


def token_table_with_intervals(table: pd.DataFrame, runs: pd.DataFrame, axis: str, metric: str,
                               report: Report) -> pd.DataFrame:
    counts = cell_counts(runs, metric, ["model", axis])
    if counts is None:
        report.text(NO_SIZES_SHORT)
        return table
    return add_intervals(table.merge(counts, on=["model", axis], how="left"), "accuracy")


def claimed_shortest(short: pd.DataFrame, table: pd.DataFrame, axis: str) -> pd.DataFrame:
    """The shortest-token table with each model's full-length interval and chance; the shortest length is
    claimed only where the full-length accuracy is significantly above chance."""
    if "above_chance" not in table.columns:
        return short.assign(claimed=False)
    full = table.loc[table.groupby("model")[axis].idxmax(),
                     ["model", "accuracy_low", "accuracy_high", "chance", "above_chance"]]
    out = short.merge(full, on="model", how="left").rename(
        columns={"accuracy_low": "full_low", "accuracy_high": "full_high"})
    out["claimed"] = out["above_chance"].fillna(False).astype(bool)
    for col in ("shortest_tokens", "shortest_accuracy", "reduction"):
        out[col] = out[col].astype(object).where(out["claimed"], "not claimed")
    first = ["model", "params", "full_tokens", "full_accuracy", "full_low", "full_high", "chance", "claimed"]
    return out[first + [c for c in out.columns if c not in first and c != "above_chance"]]


def drop_table(effect: Effect) -> pd.DataFrame:
    """Effect (a)'s per-model accuracy lost from full to shortest tokens, with its interval."""
    cols = ["model", "params", "full_tokens", "short_tokens", "mixes", "full_accuracy", "short_accuracy", "drop",
            "drop_low", "drop_high", "drop_significant", "full_above_chance"]
    return pd.DataFrame(effect.details, columns=cols)


def gap_with_intervals(gap: pd.DataFrame, frame: pd.DataFrame, english: str, report: Report) -> pd.DataFrame:
    """The English gap per (model, samples seen) with Newcombe's interval and a significance flag; rows
    whose two accuracies are both at chance are marked, their gap being noise."""
    rows = finals(frame).dropna(subset=[english])
    rows = rows.assign(mix=[training_mix(l, s) for l, s in zip(rows["languages"], rows["english_share"])])
    counts = cell_counts(rows, english, ["model", "samples_seen", "mix"])
    if counts is None:
        report.text(NO_SIZES_SHORT)
        return gap
    ww = counts[counts["mix"] == "worldwide"].drop(columns="mix")
    en = counts[counts["mix"] == "english-only"].drop(columns="mix")
    m = gap.merge(ww, on=["model", "samples_seen"]).merge(en, on=["model", "samples_seen"], suffixes=("_ww", "_en"))
    bounds = [difference_interval(a, na, b, nb) for a, na, b, nb in
              zip(m["english_worldwide"], m["n_ww"], m["english_only"], m["n_en"])]
    lw, _ = wilson_bounds(m["english_worldwide"], m["n_ww"])
    le, _ = wilson_bounds(m["english_only"], m["n_en"])
    return m.assign(gap_low=[b[0] for b in bounds], gap_high=[b[1] for b in bounds],
                    gap_significant=[excludes_zero(*b) for b in bounds], chance=m["chance_ww"],
                    above_chance=(lw > m["chance_ww"]) | (le > m["chance_en"])
                    ).drop(columns=["n_ww", "n_en", "chance_ww", "chance_en"])


def claimed_closes(gap: pd.DataFrame) -> pd.DataFrame:
    """Where the gap closes, from the rows above chance only (at chance a gap of zero is noise, not a
    closed gap); a model with no such row is listed as not claimed."""
    if "above_chance" not in gap.columns:
        return where_gap_closes(gap)
    kept = gap[gap["above_chance"]]
    out = where_gap_closes(kept) if not kept.empty else pd.DataFrame(
        columns=["model", "params", "closes_at_samples_seen", "gap_at_largest"])
    if not out.empty:  # the gap at the largest scale with its interval: a gap inside it is not significant
        largest = kept[kept["samples_seen"] == kept.groupby("model")["samples_seen"].transform("max")]
        out = out.merge(largest[["model", "gap_low", "gap_high", "gap_significant"]], on="model", how="left")
    missing = gap.drop_duplicates("model").loc[lambda d: ~d["model"].isin(out["model"]), ["model", "params"]]
    missing = missing.assign(closes_at_samples_seen="not claimed: at chance", gap_at_largest=np.nan)
    out = pd.concat([out.astype({"closes_at_samples_seen": object}), missing], ignore_index=True)
    return out.sort_values(["params", "model"], kind="stable").reset_index(drop=True)
