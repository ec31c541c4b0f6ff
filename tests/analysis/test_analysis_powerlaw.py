import numpy as np
import pytest

from analysis.bootstrap import bootstrap_intervals, extrapolation_error
from analysis.checks import DegenerateInputError
from analysis.powerlaw import PowerLaw, SaturatingPowerLaw, fit_power_law, fit_saturating_power_law

COMPUTE = np.logspace(15, 21, 25)


def test_power_law_exact_on_noiseless_data():
    law = fit_power_law(COMPUTE, PowerLaw(3.0, -0.1)(COMPUTE))
    assert law.beta == pytest.approx(3.0, rel=1e-10)
    assert law.alpha == pytest.approx(-0.1, rel=1e-10)
    assert law.formula() == "E = 3.00 C^-0.10"


def test_power_law_bootstrap_intervals_cover_truth():
    truth = PowerLaw(3.0, -0.1)
    covered = 0
    for seed in range(10):
        rng = np.random.default_rng(seed)
        err = truth(COMPUTE) * np.exp(rng.normal(0, 0.02, COMPUTE.size))
        ci = bootstrap_intervals(fit_power_law, (COMPUTE, err), n_resamples=200, seed=0)
        covered += ci["alpha"].contains(truth.alpha) and ci["beta"].contains(truth.beta)
    assert covered >= 8  # nominal 95% per parameter; 8 of 10 leaves room for sampling noise


def test_bootstrap_is_deterministic_by_seed():
    rng = np.random.default_rng(3)
    err = PowerLaw(3.0, -0.1)(COMPUTE) * np.exp(rng.normal(0, 0.02, COMPUTE.size))
    a = bootstrap_intervals(fit_power_law, (COMPUTE, err), n_resamples=50, seed=7)
    b = bootstrap_intervals(fit_power_law, (COMPUTE, err), n_resamples=50, seed=7)
    c = bootstrap_intervals(fit_power_law, (COMPUTE, err), n_resamples=50, seed=8)
    assert a == b
    assert a != c


def test_saturating_power_law_recovers_parameters_within_intervals():
    truth = SaturatingPowerLaw(a=40.0, b=3e16, c=-0.12, d=0.08)
    c = np.logspace(15, 22, 30)
    rng = np.random.default_rng(1)
    err = truth(c) * np.exp(rng.normal(0, 0.005, c.size))
    law = fit_saturating_power_law(c, err)
    refit = lambda x, y: fit_saturating_power_law(x, y, starts=[law])  # noqa: E731
    ci = bootstrap_intervals(refit, (c, err), n_resamples=60, seed=0, estimate=law)
    for name in ("a", "b", "c", "d"):
        assert ci[name].contains(getattr(truth, name)), (name, ci[name])
    assert law.d == pytest.approx(0.08, abs=0.01)


def test_extrapolation_error_holds_out_largest_compute():
    truth = PowerLaw(3.0, -0.1)
    err = truth(COMPUTE)
    err[-1] *= 1.1  # the held-out point is 10% worse than the law
    ex = extrapolation_error(fit_power_law, COMPUTE, err)
    assert ex.held_out_compute == COMPUTE[-1]
    assert ex.predicted == pytest.approx(truth(COMPUTE[-1]), rel=1e-9)
    assert ex.relative_error == pytest.approx(0.1 / 1.1, rel=1e-6)


@pytest.mark.parametrize("compute,error,message", [
    ([1e10], [0.5], "1 point"),
    ([1e10, 2e10, 3e10], [0.5, np.nan, 0.3], "NaN"),
    ([1e10, 2e10, 3e10], [0.5, -0.1, 0.3], "non-positive"),
    ([1e10, 1e10, 1e10], [0.5, 0.4, 0.3], "compute does not vary"),
    ([1e10, 2e10], [0.5, 0.4, 0.3], "differ in length"),
])
def test_power_law_degenerate_input(compute, error, message):
    with pytest.raises(DegenerateInputError, match=message):
        fit_power_law(compute, error)


def test_saturating_needs_four_points():
    with pytest.raises(DegenerateInputError, match="3 point.*4 parameters"):
        fit_saturating_power_law([1e10, 2e10, 3e10], [0.5, 0.4, 0.3])


def test_bootstrap_on_too_few_points_says_so():
    with pytest.raises(DegenerateInputError, match="too few"):
        bootstrap_intervals(fit_power_law, ([1e10, 2e10], [0.5, 0.4]), n_resamples=50, seed=0)
