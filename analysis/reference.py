"""Published data the fits are checked against: Cherti et al.'s OpenCLIP runs and Epoch's Chinchilla points.

The folder is ``shared/reference`` beside the repository (CI clones the repo with ``../shared`` next to it);
``CLIPSCALE_REFERENCE_DIR`` points elsewhere.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from analysis.checks import DegenerateInputError
from analysis.frontier import binned_lower_envelope
from analysis.powerlaw import PowerLaw, fit_power_law
from clipscale.errors import NotFound


def default_reference_dir() -> Path:
    env = os.environ.get("CLIPSCALE_REFERENCE_DIR")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[1].parent / "shared" / "reference"


def _read(reference_dir, name: str) -> pd.DataFrame:
    path = Path(reference_dir or default_reference_dir()) / name
    if not path.is_file():
        raise NotFound(f"{path}: reference data not found (set CLIPSCALE_REFERENCE_DIR)")
    return pd.read_csv(path)


# OpenCLIP's law pools every LAION-trained model (80M, 400M, 2B); CLIP-WIT is OpenAI's CLIP.
OPENCLIP_UPSTREAM = ("LAION-80M", "LAION-400M", "LAION-2B")
OPENAI_UPSTREAM = ("CLIP-WIT",)


@dataclass(frozen=True)
class ChertiTask:
    downstream: str
    metric: str
    label: str


# Cherti et al.'s zero-shot laws: ImageNet (Fig. 1) and image retrieval on MS-COCO and Flickr30K (the retrieval
# figure); error = 1 - metric (recall@5 of image retrieval for the retrieval tasks) against total GMACs.
CHERTI_TASKS = {
    "imagenet1k": ChertiTask("imagenet1k", "acc1", "zero-shot ImageNet top-1 error"),
    "mscoco_retrieval": ChertiTask("mscoco_captions", "image_retrieval_recall@5",
                                   "MS-COCO image retrieval error (1 - recall@5)"),
    "flickr30k_retrieval": ChertiTask("flickr30k", "image_retrieval_recall@5",
                                      "Flickr30K image retrieval error (1 - recall@5)"),
}

# Cherti et al.'s fit, as their figure code does it (figures.ipynb of LAION-AI/scaling-laws-openclip): the
# OpenCLIP law is a least-squares line in log10-log10 through the lower envelope over 5 equal bins of log10
# GMACs spanning [smallest, largest + 0.1 decade]; the OpenAI CLIP law is fitted to all three CLIP-WIT runs.
# Error is a fraction (1 - metric), not a percentage, so beta is the printed coefficient as is.
CHERTI_N_BINS = 5
CHERTI_PAD_DECADES = 0.1


def cherti_points(task: str, upstream=OPENCLIP_UPSTREAM, reference_dir=None) -> pd.DataFrame:
    """Every run of ``task`` trained on ``upstream``: columns arch, upstream_dataset, samples_seen, compute
    (total GMACs = samples seen x GMACs per sample), error."""
    if task not in CHERTI_TASKS:
        raise ValueError(f"unknown Cherti task {task!r}; known: {sorted(CHERTI_TASKS)}")
    t = CHERTI_TASKS[task]
    df = _read(reference_dir, "cherti_zeroshot_results.csv")
    sel = df[(df["downstream_dataset"] == t.downstream) & df["upstream_dataset"].isin(upstream)]
    if sel.empty:
        raise DegenerateInputError(f"no Cherti rows for {t.downstream} trained on {list(upstream)}")
    out = pd.DataFrame({"arch": sel["arch"], "upstream_dataset": sel["upstream_dataset"],
                        "samples_seen": sel["samples_seen"], "compute": sel["gmacs_total"],
                        "error": 1.0 - sel[t.metric]})
    return out.sort_values(["compute", "error"], kind="stable").reset_index(drop=True)


def cherti_law(task: str, upstream=OPENCLIP_UPSTREAM, reference_dir=None, n_bins: int | None = CHERTI_N_BINS,
               pad_decades: float = CHERTI_PAD_DECADES) -> tuple[PowerLaw, np.ndarray, np.ndarray]:
    """The law, and the points it was fitted on: the binned lower envelope, or every run when ``n_bins`` is
    None (how the paper fits OpenAI CLIP's three runs)."""
    pts = cherti_points(task, upstream, reference_dir)
    if n_bins is None:
        x, y = pts["compute"].to_numpy(float), pts["error"].to_numpy(float)
    else:
        x, y = binned_lower_envelope(pts["compute"], pts["error"], n_bins, pad_decades)
    return fit_power_law(x, y), x, y


def epoch_chinchilla(reference_dir=None, drop_highest_loss: int = 5) -> pd.DataFrame:
    """Epoch's points extracted from Hoffmann et al.'s Figure 4: N, D = C / (6N), C, loss.

    The replication drops the ``drop_highest_loss`` highest-loss points (outliers of the extraction)."""
    df = _read(reference_dir, "epoch_chinchilla_svg_extracted_data.csv")
    df = df.sort_values("loss", kind="stable")
    if drop_highest_loss:
        df = df.iloc[:-drop_highest_loss]
    n = df["Model Size"].to_numpy(float)
    c = df["Training FLOP"].to_numpy(float)
    return pd.DataFrame({"N": n, "D": c / (6 * n), "C": c, "loss": df["loss"].to_numpy(float)}).reset_index(drop=True)
