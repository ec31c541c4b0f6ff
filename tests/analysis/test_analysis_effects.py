"""The three effects: resolved on a synthetic sweep with known effects, not resolved on pure noise (every
model at chance), not invented for a table without eval-set sizes; summary.json's schema."""
import json

import numpy as np
import pytest

from analysis.effects import NOT_RESOLVED, RESOLVED, all_effects, significant_frontier
from analysis.load import results_frame
from analysis.effects_report import effects_section, verdict_lines
from analysis.report import Report
from analysis.results_figures import Outputs, inverse_scaling_section
from analysis_sweep import LANGS, synthetic_rows

NOISE_N, NOISE_CLASSES = 300, 100  # the demo's zero-shot set: 100 classes x 3 images


def noise_rows(seed: int = 1) -> list[dict]:
    """The synthetic grid with every accuracy drawn at chance on 300 images, as the issue's demo measured."""
    rng = np.random.default_rng(seed)
    rows = []
    for row in synthetic_rows():
        row = dict(row, zeroshot_classes=NOISE_CLASSES)
        for lang in LANGS:
            row[f"zeroshot_top1_{lang}"] = rng.binomial(NOISE_N, 1 / NOISE_CLASSES) / NOISE_N
            row[f"zeroshot_n_{lang}"] = NOISE_N
        row["zeroshot_top1_mean"] = float(np.mean([row[f"zeroshot_top1_{lang}"] for lang in LANGS]))
        row["zeroshot_top1_non_en"] = float(np.mean([row[f"zeroshot_top1_{lang}"] for lang in LANGS[1:]]))
        rows.append(row)
    return rows


@pytest.fixture(scope="module")
def known():
    return {e.name: e for e in all_effects(results_frame(synthetic_rows()), n_resamples=300)}


def test_known_effects_are_resolved_with_the_planted_sizes(known):
    a, b, c = known["inverse_scaling"], known["english_gap"], known["power_law"]
    assert [a.verdict, b.verdict, c.verdict] == [RESOLVED] * 3
    # planted: accuracy lost at 16 of 64 image tokens is 40/sqrt(N) * 3: 0.12 (tiny) - 0.03 (base) = 0.09
    assert a.estimate == pytest.approx(0.09, abs=0.01) and 0 < a.low <= 0.09 <= a.high
    assert "CLIPA's direction" in a.statement
    # planted: the worldwide English gap is -0.03 for tiny and +0.004 for base at the largest samples seen
    assert b.estimate == pytest.approx(0.034, abs=0.005) and 0 < b.low < b.high
    assert "Meta CLIP 2's direction" in b.statement
    assert c.high < 0 and c.low <= c.estimate <= c.high and len(c.details) >= 3
    assert all(e.chance[k] == 0.01 for e in known.values() for k in e.chance)


def test_pure_noise_is_not_resolved():
    effects = all_effects(results_frame(noise_rows()), n_resamples=300)
    for e in effects:
        assert e.verdict == NOT_RESOLVED, (e.name, e.statement)
        assert e.statement.startswith(NOT_RESOLVED)
    a, b, c = effects
    assert not any(d["full_above_chance"] for d in a.details)  # nothing to lose at chance
    assert not any(d["above_chance"] for d in b.details)
    assert c.low <= 0 <= c.high  # the running minimum falls on noise; its significant steps do not


def test_several_noise_draws_stay_unresolved():
    for seed in range(2, 6):
        assert {e.verdict for e in all_effects(results_frame(noise_rows(seed)), n_resamples=200)} == {NOT_RESOLVED}


def test_a_table_without_sizes_says_so():
    rows = [{k: v for k, v in r.items() if not k.startswith("zeroshot_n_") and k != "zeroshot_classes"}
            for r in synthetic_rows()]
    for e in all_effects(results_frame(rows), n_resamples=50):
        assert e.verdict == NOT_RESOLVED and e.estimate is None
        assert "records no eval-set size" in e.statement


def test_significant_frontier_needs_significant_steps():
    compute = [1, 2, 3, 4]
    assert significant_frontier(compute, [0.010, 0.013, 0.016, 0.019], [300] * 4).tolist() == [0]
    assert significant_frontier(compute, [0.10, 0.20, 0.21, 0.40], [1000] * 4).tolist() == [0, 1, 3]


def test_summary_json_schema(tmp_path):
    frame = results_frame(noise_rows())
    report = Report("noise")
    effects, path = effects_section(frame, report, tmp_path, "zeroshot_top1_mean", n_resamples=50, seed=0)
    doc = json.loads(path.read_text())
    assert doc["metric"] == "zeroshot_top1_mean" and doc["level"] == 0.95 and "binomial" in doc["method"]
    assert doc["chance"] == {"zeroshot_top1_mean": 0.01, "zeroshot_top1_en": 0.01}
    assert set(doc["effects"]) == {"inverse_scaling", "english_gap", "power_law"}
    for effect in doc["effects"].values():
        assert {"estimate", "low", "high", "verdict", "statement", "method", "chance", "details"} <= set(effect)
        assert effect["verdict"] in (RESOLVED, NOT_RESOLVED)
    assert verdict_lines(effects)[0].startswith("(a) inverse scaling: " + NOT_RESOLVED)
    assert "\n".join(report.lines).count(f"{NOT_RESOLVED}:") == 3
    # the same input gives the same bytes
    _, again = effects_section(frame, Report("noise"), tmp_path / "again", "zeroshot_top1_mean", 50, 0)
    assert again.read_bytes() == path.read_bytes()


def test_no_shortest_token_length_is_claimed_at_chance(tmp_path):
    frame = results_frame(noise_rows())
    report = Report("noise")
    inverse_scaling_section(frame, Outputs(tmp_path, report, pdf=False), "zeroshot_top1_mean", 0.01,
                            all_effects(frame, n_resamples=20)[0])
    text = "\n".join(report.lines)
    assert "not claimed" in text and "| false |" in text


def test_demo_prints_the_three_verdicts_last(tmp_path, capsys):
    from clipscale.cli.demo import print_verdicts

    _, path = effects_section(results_frame(synthetic_rows()), Report("known"), tmp_path, "zeroshot_top1_mean",
                              n_resamples=50, seed=0)
    print_verdicts(path)
    last = capsys.readouterr().out.rstrip("\n").splitlines()[-3:]
    assert [line.split(":")[0].strip() for line in last] == ["(a) inverse scaling", "(b) English gap",
                                                             "(c) power law"]
    assert all(RESOLVED in line or "direction" in line or "power law of compute" in line for line in last)
