"""Tables written byte for byte the same from the same input: fixed float format, fixed line ends."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

FLOAT_FORMAT = "{:.6g}"


def format_value(v) -> str:
    if v is None:
        return ""
    if isinstance(v, (bool, np.bool_)):
        return "true" if v else "false"
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    if isinstance(v, (float, np.floating)):
        if math.isnan(v):
            return ""
        if float(v).is_integer() and abs(v) < 1e15:
            return str(int(v))
        return FLOAT_FORMAT.format(float(v))
    return str(v)


def _csv_field(text: str) -> str:
    if any(ch in text for ch in ',"\n'):
        return '"' + text.replace('"', '""') + '"'
    return text


def to_csv_text(df: pd.DataFrame) -> str:
    lines = [",".join(_csv_field(str(c)) for c in df.columns)]
    for row in df.itertuples(index=False, name=None):
        lines.append(",".join(_csv_field(format_value(v)) for v in row))
    return "\n".join(lines) + "\n"


def to_markdown(df: pd.DataFrame) -> str:
    header = "| " + " | ".join(str(c) for c in df.columns) + " |"
    rule = "|" + "|".join("---" for _ in df.columns) + "|"
    body = ["| " + " | ".join(format_value(v).replace("|", "\\|") for v in row) + " |"
            for row in df.itertuples(index=False, name=None)]
    return "\n".join([header, rule, *body]) + "\n"


def write_csv(df: pd.DataFrame, path: Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(to_csv_text(df).encode("utf-8"))
    return path
