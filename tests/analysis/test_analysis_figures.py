"""make_all, `clipscale analyze` and the script: files written, tables byte-identical on rerun, degenerate
sweeps reported, not crashed."""
import argparse
import subprocess
import sys
from pathlib import Path

import pytest

from clipscale.cli.analyze import register
from analysis.figures import make_all
from analysis.load import results_frame
from analysis.plots import new_axes, save
from analysis.results_figures import make_results
from analysis_sweep import synthetic_rows

REPO = Path(__file__).resolve().parents[2]
REFERENCE_DIR = REPO.parent / "shared" / "reference"
TEXT_OUTPUTS = ("results.csv", "laws.csv", "chinchilla_fit.csv", "accuracy_by_image_tokens.csv",
                "shortest_image_tokens.csv", "language_accuracy.csv", "english_gap.csv",
                "compute_optimal_plan.csv", "report.md", "summary.json")


@pytest.fixture(scope="module")
def table(tmp_path_factory):
    from clipscale.results import append_rows

    path = tmp_path_factory.mktemp("table")
    for row in synthetic_rows():
        append_rows(path, [row])
    return path


def test_make_all_on_a_results_table_is_reproducible(table, tmp_path):
    first = make_all(table, tmp_path / "a", n_resamples=10, pdf=False)
    second = make_all(table, tmp_path / "b", n_resamples=10, pdf=False)
    for name in TEXT_OUTPUTS:
        assert name in first, name
        assert first[name].read_bytes() == second[name].read_bytes(), name
    for stem in ("scaling_law", "loss_surface", "inverse_scaling", "multilinguality", "compute_optimal"):
        png = first[f"{stem}.png"].read_bytes()
        assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000
        assert b"matplotlib" not in png  # no Software stamp
    report = first["report.md"].read_text()
    for heading in ("Power law", "Chinchilla surface", "Inverse scaling", "Curse of multilinguality",
                    "Compute-optimal frontier"):
        assert heading in report
    assert "skipped" not in report  # the synthetic sweep supports every analysis


def test_degenerate_sweep_is_reported_not_crashed(tmp_path):
    rows = [r for r in synthetic_rows() if r["model"] == "base" and r["samples_seen"] == 1_000_000
            and r["status"] == "finished"]
    paths = make_results(results_frame(rows), tmp_path, n_resamples=5, pdf=False)
    report = paths["report.md"].read_text()
    assert "**Loss surface: skipped.** N (model size) does not vary" in report
    assert "**Planner: skipped.**" in report and "need 3" in report
    assert "one model size only" in report  # inverse scaling
    assert "results.csv" in paths


def test_pdf_and_png_carry_no_dates(tmp_path):
    fig, (ax,) = new_axes(1)
    ax.plot([1, 2], [3, 4])
    paths = save(fig, tmp_path, "tiny")
    pdf = paths["tiny.pdf"].read_bytes()
    assert pdf.startswith(b"%PDF") and b"CreationDate" not in pdf


@pytest.mark.skipif(not REFERENCE_DIR.is_dir(), reason="../shared/reference not checked out")
def test_clipscale_analyze_reference(tmp_path, capsys):
    parser = argparse.ArgumentParser(prog="clipscale")
    register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["analyze", "--reference", "--out", str(tmp_path), "--bootstrap", "5", "--no-pdf",
                              "--reference-dir", str(REFERENCE_DIR)])
    assert args.func(args) == 0
    for name in ("cherti_imagenet1k.png", "cherti_retrieval.png", "chinchilla_epoch.png", "reference_laws.csv"):
        assert (tmp_path / name).is_file()
    laws = (tmp_path / "reference_laws.csv").read_text()
    assert "imagenet1k OpenCLIP,beta,5.85806," in laws
    report = (tmp_path / "report.md").read_text()
    for formula in ("E = 5.86 C^-0.11", "E = 2.75 C^-0.08", "E = 15.51 C^-0.19"):
        assert formula in report
    assert str(tmp_path / "report.md") in capsys.readouterr().out


def test_script_gives_a_clear_message_for_a_missing_source(tmp_path):
    proc = subprocess.run([sys.executable, str(REPO / "analysis" / "scripts" / "make_figures.py"),
                           str(tmp_path / "missing"), "--out", str(tmp_path / "out")],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert "no such file or folder" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_missing_metric_values_are_counted_on_the_page(tmp_path):
    rows = synthetic_rows()
    rows[3] = dict(rows[3], zeroshot_top1_mean=float("nan"))
    frame = results_frame(rows).drop(columns=["loss"])
    report = make_results(frame, tmp_path, n_resamples=5, pdf=False)["report.md"].read_text()
    assert "1 of 90 runs have no zeroshot_top1_mean (NaN) and are left out." in report
    assert "**Loss surface: skipped.** loss surface: results have no column(s) ['loss']" in report
