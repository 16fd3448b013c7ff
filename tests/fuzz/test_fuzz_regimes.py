"""Every regime label is generated within the examples the CI kernel tests spend on a strategy.

The labels are the ones the strategies pass to ``hypothesis.event`` (also kept in
``case.labels``); a regime that CI never draws would be a silent gap. Hypothesis's
generation is clustered (it mutates earlier examples), so one test's budget does not
see every regime; the CI run as a whole (``CI_SPEND``, the sum over tests/fuzz of the
examples drawn from each strategy) must.
"""
import pytest
from hypothesis import given, settings

from fuzz import strategies as fst
from fuzz import targets
from fuzz.properties import PROPERTIES, no_local_constants

#: Examples tests/fuzz/test_fuzz_differential.py draws from each strategy per CI run.
CI_SPEND = {
    "gating": PROPERTIES["gating"].ci_examples + 3 * PROPERTIES["batch"].ci_examples,  # + batch cases
    "sorting": PROPERTIES["sorting"].ci_examples,
    "route": 3 * PROPERTIES["route"].ci_examples + PROPERTIES["paths"].ci_examples,  # three paths + paths agree
}


@pytest.mark.parametrize("prop", sorted(CI_SPEND))
def test_every_regime_is_generated(prop):
    seen = set()
    @settings(max_examples=CI_SPEND[prop])  # the ci run's spend, whatever profile is loaded
    @given(fst.cases_for(prop, targets.get(prop if prop != "route" else "route-fused")))
    def collect(case):
        seen.update(case.labels)

    with no_local_constants():  # the same cases whatever modules earlier tests imported
        collect()
    missing = fst.declared_regimes(prop) - seen
    assert not missing, f"{prop}: regimes never generated in {CI_SPEND[prop]} examples: {sorted(missing)}"


@pytest.mark.parametrize("sizes", ["ci", "campaign"])
def test_threshold_tokens_straddle_every_dispatch_threshold(sizes):
    """The kernels declare their dispatch thresholds; the strategies draw on both sides of
    each: the GPU campaign's sizes every one, CI's (the interpreter) those up to its cap."""
    import fused_moe
    base = {"ci": fst.CI_LIMITS, "campaign": fst.CAMPAIGN_LIMITS}[sizes]
    limits = fst.limits_for(targets.get("route-fused").convention, base)
    values = set(fst.threshold_tokens(limits))
    reached = {name: t for name, t in fused_moe.DISPATCH_THRESHOLDS.items() if t < limits.max_threshold_tokens}
    assert sizes == "ci" or len(reached) == len(fused_moe.DISPATCH_THRESHOLDS)
    for name, t in reached.items():
        assert {t - 1, t, t + 1} <= values, name
