"""Figures, tables and the report for a results frame (a sweep's table, a Tune folder or W&B runs).

Each analysis runs on what the sweep measured; one the data cannot support is named on the report page
with the reason, and the others still run.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from analysis.bootstrap import bootstrap_fits, bootstrap_intervals, extrapolation_error
from analysis.checks import DegenerateInputError, require_columns
from analysis.chinchilla import chinchilla_extrapolation, fit_chinchilla, law_to_start
from analysis.frontier import pareto_frontier
from analysis.effects_report import (claimed_closes, claimed_shortest, drop_table, effects_section,
                                     gap_with_intervals, token_table_with_intervals)
from analysis.inverse_scaling import TOKEN_AXES, shortest_token_length, token_length_runs, token_length_table
from analysis.load import finals
from analysis.multilinguality import ENGLISH_METRIC, english_gap, language_accuracy_table
from analysis.planner import compute_optimal_frontier, config_laws
from analysis.plots import COLORS, curve_grid, draw_cloud, draw_law, draw_lines, log_axes, new_axes, save
from analysis.powerlaw import fit_power_law, fit_saturating_power_law
from analysis.report import Report
from analysis.tables import write_csv


class Outputs:
    """Where a section's files go, and the map of them make_all returns."""

    def __init__(self, out_dir: Path, report: Report, pdf: bool = True):
        self.dir, self.report, self.paths, self.pdf = Path(out_dir), report, {}, pdf

    def csv(self, df: pd.DataFrame, name: str) -> None:
        self.paths[name] = write_csv(df, self.dir / name)

    def fig(self, fig, stem: str, caption: str) -> None:
        self.paths.update(save(fig, self.dir, stem, pdf=self.pdf))
        self.report.figure(self.dir / f"{stem}.png", caption)


def _with_values(rows: pd.DataFrame, column: str, report: Report) -> pd.DataFrame:
    """Rows that have ``column``; how many lack it is said on the page, never dropped silently."""
    kept = rows.dropna(subset=[column])
    if kept.empty:
        raise DegenerateInputError(f"no run's last evaluation has a value for {column}")
    if len(kept) < len(rows):
        report.text(f"{len(rows) - len(kept)} of {len(rows)} runs have no {column} (NaN) and are left out.")
    return kept


def scaling_section(frame, out: Outputs, metric: str, n_resamples: int, seed: int, verdict=None) -> None:
    out.report.section("Error against compute", f"Error = 1 - {metric}, one point per run (its last evaluation); "
                       "laws fitted on the running-minimum Pareto frontier.")
    require_columns(frame, ["compute", "model", metric], "error against compute")
    rows = _with_values(finals(frame), metric, out.report)
    c, e = rows["compute"].to_numpy(float), 1.0 - rows[metric].to_numpy(float)
    x, y = pareto_frontier(c, e)
    law = fit_power_law(x, y)
    laws = []
    fig, (ax,) = new_axes(1, 7, 5)
    draw_cloud(ax, c, e, rows["model"], "runs: ")
    fits = bootstrap_fits(fit_power_law, (x, y), n_resamples, seed) if len(x) >= 3 else []
    draw_law(ax, x, y, law, fits, COLORS[0], f"power law {law.formula(3)}")
    intervals = bootstrap_intervals(fit_power_law, (x, y), n_resamples, seed=seed, estimate=law) if fits else None
    out.report.law("Power law", law.formula(3), intervals)
    # a running minimum falls even on pure noise, so these frontier-point intervals cannot tell a law from
    # noise; the verdict is effect (c)'s, over the frontier of significant steps
    if verdict is not None:
        out.report.text(f"**Verdict (c):** {verdict.statement}. The running-minimum frontier above falls even "
                        "on noise; the verdict uses only frontier steps that are significant.")
    laws += [{"law": "power", "parameter": k, "estimate": v} for k, v in vars(law).items()]
    if len(x) >= 3:
        ex = extrapolation_error(fit_power_law, x, y)
        out.report.text(f"Held out the largest compute ({ex.held_out_compute:.3g} FLOPs): observed error "
                        f"{ex.observed:.4f}, predicted {ex.predicted:.4f}, relative error {ex.relative_error:.2%}.")
    try:
        sat = fit_saturating_power_law(x, y)
        grid = curve_grid(x)
        ax.plot(grid, sat(grid), color=COLORS[1], lw=2, ls="--", label=f"saturating {sat.formula()}")
        out.report.law("Saturating power law", sat.formula())
        laws += [{"law": "saturating", "parameter": k, "estimate": v} for k, v in vars(sat).items()]
    except DegenerateInputError as err:
        out.report.skipped("Saturating power law", str(err))
    log_axes(ax, "training compute (FLOPs)", f"error (1 - {metric})", "Error against compute, Pareto frontier fit")
    ax.legend(fontsize=7)
    out.fig(fig, "scaling_law", "Error against training compute; band: 95% bootstrap over frontier points")
    out.csv(pd.DataFrame(laws), "laws.csv")


def chinchilla_section(frame, out: Outputs, n_resamples: int, seed: int) -> None:
    out.report.section("Loss surface L(N, D)", "N = parameters, D = samples seen, L = the run's loss; "
                       "Huber (delta 1e-3) on log residuals, L-BFGS-B from Hoffmann's grid.")
    require_columns(frame, ["loss", "params", "samples_seen", "compute"], "loss surface")
    rows = _with_values(finals(frame), "loss", out.report)
    n, d, l = rows["params"].to_numpy(float), rows["samples_seen"].to_numpy(float), rows["loss"].to_numpy(float)
    law = fit_chinchilla(n, d, l)
    refit = lambda a, b, c: fit_chinchilla(a, b, c, starts=[law_to_start(law)])  # noqa: E731
    intervals = bootstrap_intervals(refit, (n, d, l), n_resamples, seed=seed, estimate=law)
    out.report.law("Chinchilla surface", law.formula(), intervals)
    try:
        ex = chinchilla_extrapolation(n, d, l, rows["compute"].to_numpy(float))
        out.report.text(f"Held out the {ex.n_held_out} largest-compute runs (C >= {ex.threshold_compute:.3g} FLOPs): "
                        f"mean relative loss error {ex.mean_relative_error:.2%}, max {ex.max_relative_error:.2%}.")
    except DegenerateInputError as err:
        out.report.skipped("Loss-surface extrapolation check", str(err))
    fig, (ax,) = new_axes(1, 7, 5)
    for i, (model, g) in enumerate(rows.groupby("model", sort=False)):
        color = COLORS[i % len(COLORS)]
        ax.scatter(g["samples_seen"], g["loss"], color=color, label=f"{model} (N={g['params'].iloc[0]:.3g})")
        grid = curve_grid(g["samples_seen"])
        ax.plot(grid, law(g["params"].iloc[0], grid), color=color)
    log_axes(ax, "samples seen D", "loss", f"Fitted {law.formula()}")
    ax.legend(fontsize=7)
    out.fig(fig, "loss_surface", "Loss against samples seen per model; lines: the fitted L(N, D)")
    out.csv(pd.DataFrame([{"parameter": k, "estimate": v.estimate, "ci_low": v.low, "ci_high": v.high}
                          for k, v in intervals.items()]), "chinchilla_fit.csv")


def inverse_scaling_section(frame, out: Outputs, metric: str, tolerance: float, drops=None) -> None:
    out.report.section("Inverse scaling: accuracy against token length",
                       f"Per model at its largest samples seen, other axis at full length; shortest length within "
                       f"{tolerance} of full-length accuracy.")
    fig, axes = new_axes(2)
    done = 0
    for axis, ax in zip(TOKEN_AXES, axes):
        try:
            table = token_length_table(frame, axis, metric)
            short = shortest_token_length(table, axis, tolerance)
            table = token_table_with_intervals(table, token_length_runs(frame, axis, metric), axis, metric,
                                               out.report)
            short = claimed_shortest(short, table, axis)
        except DegenerateInputError as err:
            out.report.skipped(f"Accuracy against {axis}", str(err))
            # say on the figure why the panel is empty, rather than leave bare axes
            ax.set_axis_off()
            ax.text(0.5, 0.5, f"{axis.replace('_', ' ')}: not analysed\n{err}", ha="center",
                    va="center", wrap=True, fontsize=9, transform=ax.transAxes)
            continue
        draw_lines(ax, table, axis, "accuracy", "model", "{}")
        log_axes(ax, f"{axis.replace('_', ' ')} (after reduction)", metric, f"Accuracy against {axis}", log_y=False)
        ax.set_xscale("log", base=2)
        ax.legend(fontsize=7, title="model")
        out.csv(table, f"accuracy_by_{axis}.csv")
        out.csv(short, f"shortest_{axis}.csv")
        out.report.table(short)
        if axis == "image_tokens" and drops is not None and drops.details:
            out.report.text("Accuracy lost from full to shortest image tokens (95% interval; not significant "
                            "where it holds zero):")
            out.report.table(drop_table(drops))
        done += 1
    if not done:
        raise DegenerateInputError("no token axis could be analysed")
    out.fig(fig, "inverse_scaling", "Zero-shot accuracy against image and text token count, per model size")


def multilinguality_section(frame, out: Outputs, tolerance: float, english: str = ENGLISH_METRIC) -> None:
    out.report.section("Curse of multilinguality", "English and non-English zero-shot accuracy per model and seen "
                       "pairs; gap = English accuracy of worldwide minus English-only training.")
    table = language_accuracy_table(frame)
    out.csv(table, "language_accuracy.csv")
    fig, (ax_en, ax_ne) = new_axes(2)
    for i, (model, g) in enumerate(table.groupby("model", sort=False)):
        color = COLORS[i % len(COLORS)]
        for mix, ls in (("worldwide", "-"), ("english-only", "--")):
            m = g[g["mix"] == mix].sort_values("samples_seen")
            if not m.empty:
                ax_en.plot(m["samples_seen"], m["english"], ls=ls, marker="o", color=color, label=f"{model}, {mix}")
                if mix == "worldwide":
                    ax_ne.plot(m["samples_seen"], m["non_english"], marker="o", color=color, label=model)
    log_axes(ax_en, "seen pairs", "English zero-shot top-1", "English accuracy (dashed: English-only)", log_y=False)
    log_axes(ax_ne, "seen pairs", "non-English zero-shot top-1", "Non-English accuracy, worldwide", log_y=False)
    ax_en.legend(fontsize=7)
    ax_ne.legend(fontsize=7)
    out.fig(fig, "multilinguality", "English and non-English accuracy against seen pairs per model size")
    try:
        gap = english_gap(table, tolerance)
    except DegenerateInputError as err:
        out.report.skipped("English gap", str(err))
        return
    gap = gap_with_intervals(gap, frame, english, out.report)
    closes = claimed_closes(gap)
    out.csv(gap, "english_gap.csv")
    out.csv(closes, "english_gap_closes.csv")
    out.report.table(gap)
    out.report.text("Where the gap closes (gap >= -tolerance from that scale on), over rows above chance:")
    out.report.table(closes)


def planner_section(frame, out: Outputs, metric: str, n_resamples: int, seed: int) -> None:
    out.report.section("Compute-optimal frontier and budget planner",
                       "Per configuration (model, image tokens, text tokens) a power law of error against compute; "
                       "per budget the configuration predicted best, its samples seen and a 95% bootstrap interval; "
                       "agreement = share of bootstrap replicates picking the same configuration.")
    laws, skipped = config_laws(frame, metric, n_resamples, seed)
    for line in skipped:
        out.report.text(f"Left out: {line}")
    # from the smallest measured compute to ten times the largest: the planner's point is to extrapolate
    lo = float(finals(frame)["compute"].min())
    budgets = np.logspace(np.log10(lo), np.log10(max(cl.max_compute for cl in laws) * 10), 9)
    plan = compute_optimal_frontier(laws, budgets)
    out.csv(plan, "compute_optimal_plan.csv")
    out.report.table(plan)
    fig, (ax,) = new_axes(1, 7, 5)
    grid = np.logspace(np.log10(budgets[0]), np.log10(budgets[-1]), 100)
    # name only the configurations that win somewhere; the rest are context, one grey legend entry
    winners = set(zip(plan["model"], plan["image_tokens"], plan["text_tokens"], plan["languages"]))
    shown, grey_labelled = 0, False
    for cl in laws:
        key = (cl.model, cl.image_tokens, cl.text_tokens, cl.languages)
        if key in winners:
            langs = "English-only" if cl.languages == "en" else f"{len(cl.languages.split(','))} languages"
            ax.plot(grid, cl.law(grid), color=COLORS[shown % len(COLORS)], lw=2,
                    label=f"{cl.model}, {cl.image_tokens} image / {cl.text_tokens} text tokens, {langs}")
            shown += 1
        else:
            ax.plot(grid, cl.law(grid), color="0.75", lw=0.8, zorder=1,
                    label=None if grey_labelled else "other configurations")
            grey_labelled = True
    # a percentile interval need not contain the full-data estimate (few resamples); clip for errorbar
    yerr = np.clip([plan["predicted_error"] - plan["error_low"], plan["error_high"] - plan["predicted_error"]], 0, None)
    ax.errorbar(plan["budget"], plan["predicted_error"], yerr=yerr,
                fmt="o", color="black", capsize=3, label="predicted best (95% interval)")
    log_axes(ax, "compute budget (FLOPs)", f"predicted error (1 - {metric})", "Compute-optimal configuration")
    ax.legend(fontsize=7)
    out.fig(fig, "compute_optimal", "Predicted error per configuration against budget; black: the best at each budget")


def make_results(frame: pd.DataFrame, out_dir: Path, metric: str = "zeroshot_top1_mean", n_resamples: int = 200,
                 seed: int = 0, tolerance: float = 0.01, pdf: bool = True) -> dict[str, Path]:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    report = Report("clipscale scaling report")
    out = Outputs(out_dir, report, pdf)
    out.csv(frame, "results.csv")
    report.text(f"{len(frame)} evaluations of {frame['run_id'].nunique()} runs; "
                f"models: {', '.join(sorted(frame['model'].astype(str).unique()))}.")
    effects, out.paths["summary.json"] = effects_section(frame, report, out_dir, metric, n_resamples, seed)
    inverse, _, power = effects
    sections = [("Error against compute", lambda: scaling_section(frame, out, metric, n_resamples, seed, power)),
                ("Loss surface", lambda: chinchilla_section(frame, out, n_resamples, seed)),
                ("Inverse scaling", lambda: inverse_scaling_section(frame, out, metric, tolerance, inverse)),
                ("Curse of multilinguality", lambda: multilinguality_section(frame, out, tolerance)),
                ("Planner", lambda: planner_section(frame, out, metric, n_resamples, seed))]
    for name, run in sections:
        try:
            run()
        except DegenerateInputError as err:
            report.skipped(name, str(err))
    out.paths["report.md"] = report.write(out_dir / "report.md")
    return out.paths
