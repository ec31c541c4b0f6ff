"""The report page: fitted laws, tables and figures, in markdown, in the order they were produced."""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from analysis.bootstrap import Interval
from analysis.tables import to_markdown


def interval_table(intervals: dict[str, Interval]) -> pd.DataFrame:
    return pd.DataFrame([{"parameter": k, "estimate": v.estimate, "ci_low": v.low, "ci_high": v.high}
                         for k, v in intervals.items()])


class Report:
    def __init__(self, title: str):
        self.lines = [f"# {title}", ""]

    def section(self, title: str, text: str = "") -> None:
        self.lines += [f"## {title}", ""]
        if text:
            self.lines += [text, ""]

    def text(self, text: str) -> None:
        self.lines += [text, ""]

    def law(self, name: str, formula: str, intervals: dict[str, Interval] | None = None) -> None:
        self.lines += [f"**{name}:** `{formula}`", ""]
        if intervals:
            self.lines += [to_markdown(interval_table(intervals))]

    def table(self, df: pd.DataFrame) -> None:
        self.lines += [to_markdown(df)]

    def figure(self, png: Path, caption: str) -> None:
        self.lines += [f"![{caption}]({Path(png).name})", "", f"*{caption}*", ""]

    def skipped(self, what: str, reason: str) -> None:
        """An analysis the data cannot support: said on the page, not silently left out."""
        self.lines += [f"**{what}: skipped.** {reason}", ""]

    def write(self, path: Path) -> Path:
        path = Path(path)
        path.write_bytes(("\n".join(self.lines).rstrip() + "\n").encode("utf-8"))
        return path


