"""Matplotlib drawing: log axes, fitted curves with bootstrap bands, legends that name the law."""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # batch figures: never needs a display
import matplotlib.pyplot as plt  # noqa: E402
import matplotlib.ticker as mticker  # noqa: E402
import numpy as np  # noqa: E402

from analysis.bootstrap import prediction_band  # noqa: E402

# metadata that would change on every run (dates, versions) is left out so reruns give the same files
PNG_METADATA = {"Software": None}
PDF_METADATA = {"Creator": None, "Producer": None, "CreationDate": None}
COLORS = plt.get_cmap("tab10").colors


def plain_log_ticks(ax) -> None:
    """Label a log y axis spanning under ~1.5 decades with plain numbers (0.2, 0.3) instead of 2x10^-1 or
    nothing at all: error axes usually span less than a decade."""
    if ax.get_yscale() != "log":
        return
    low, high = ax.get_ylim()
    if low > 0 and np.log10(high / low) < 1.5:
        fmt = mticker.FuncFormatter(lambda v, _: f"{v:g}")
        ax.yaxis.set_major_formatter(fmt)
        ax.yaxis.set_minor_formatter(fmt)


def save(fig, out_dir: Path, stem: str, pdf: bool = True) -> dict[str, Path]:
    for ax in fig.axes:
        plain_log_ticks(ax)
    fig.tight_layout()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {f"{stem}.png": out_dir / f"{stem}.png"}
    fig.savefig(paths[f"{stem}.png"], dpi=100, metadata=PNG_METADATA)
    if pdf:
        paths[f"{stem}.pdf"] = out_dir / f"{stem}.pdf"
        fig.savefig(paths[f"{stem}.pdf"], metadata=PDF_METADATA)
    plt.close(fig)
    return paths


def new_axes(ncols: int = 1, width: float = 6.0, height: float = 4.5):
    fig, axes = plt.subplots(1, ncols, figsize=(width * ncols, height), squeeze=False)
    return fig, list(axes[0])


def log_axes(ax, xlabel: str, ylabel: str, title: str | None = None, log_y: bool = True) -> None:
    ax.set_xscale("log")
    if log_y:
        ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title, fontsize=11)
    ax.grid(True, which="major", alpha=0.3)


def curve_grid(x, extend: float = 1.5, points: int = 200) -> np.ndarray:
    x = np.asarray(x, dtype=float)
    return np.logspace(np.log10(x.min() / extend), np.log10(x.max() * extend), points)


def draw_law(ax, x_fit, y_fit, law, fits, color, label: str, level: float = 0.95,
             points_label: str = "frontier points (fitted)") -> None:
    """Fitted points (filled), the law through them, and its bootstrap band."""
    grid = curve_grid(x_fit)
    ax.plot(grid, law(grid), color=color, lw=2, label=label)
    if fits:
        low, high = prediction_band(fits, grid, level)
        ax.fill_between(grid, low, high, color=color, alpha=0.18, lw=0,
                        label=f"{int(level * 100)}% bootstrap band")
    ax.scatter(x_fit, y_fit, color=color, edgecolor="black", s=36, zorder=3, label=points_label)


MARKERS = "os^Dv<>"


def draw_cloud(ax, x, y, labels, title_for_legend: str | None = None, color=None) -> None:
    """Every run as a small hollow marker, one marker (and, without ``color``, one colour) per group."""
    labels = np.asarray(labels)
    for i, group in enumerate(dict.fromkeys(labels)):
        m = labels == group
        ax.scatter(np.asarray(x)[m], np.asarray(y)[m], s=20, facecolor="none", marker=MARKERS[i % len(MARKERS)],
                   edgecolor=color or COLORS[(i + 2) % len(COLORS)], alpha=0.7,
                   label=f"{title_for_legend or ''}{group}", zorder=2)


def draw_lines(ax, table, x: str, y: str, group: str, label_fmt: str = "{}", marker: str = "o") -> None:
    for i, (name, g) in enumerate(table.groupby(group, sort=False)):
        g = g.sort_values(x)
        ax.plot(g[x], g[y], marker=marker, color=COLORS[i % len(COLORS)], label=label_fmt.format(name))
