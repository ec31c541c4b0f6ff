"""One entry point for every figure, table and the report: ``make_all(source, out_dir)``.

``source`` is a results table (parquet folder or file), a Ray Tune experiment folder, a W&B offline folder,
``wandb:ENTITY/PROJECT``, or ``reference`` for the published data in shared/reference.
"""
from __future__ import annotations

from pathlib import Path

from analysis.load import load_results
from analysis.reference_figures import make_reference
from analysis.results_figures import make_results

REFERENCE = "reference"   # the source name of the published reference data


def make_all(source, out_dir, n_resamples: int = 200, seed: int = 0, reference_dir=None,
             metric: str = "zeroshot_top1_mean", pdf: bool = True) -> dict[str, Path]:
    """Write figures (PNG, and PDF unless ``pdf=False``), CSV tables and report.md to ``out_dir``;
    return {file name: path}. The same input and seed give byte-identical tables and report."""
    if str(source) == REFERENCE:
        return make_reference(Path(out_dir), reference_dir, n_resamples, seed, pdf=pdf)
    return make_results(load_results(source), Path(out_dir), metric=metric, n_resamples=n_resamples, seed=seed,
                        pdf=pdf)
