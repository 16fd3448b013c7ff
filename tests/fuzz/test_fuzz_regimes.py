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
from fuzz.properties import PROPERTIES

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

    collect()
    missing = fst.declared_regimes(prop) - seen
    assert not missing, f"{prop}: regimes never generated in {CI_SPEND[prop]} examples: {sorted(missing)}"


def test_threshold_tokens_straddle_every_dispatch_threshold():
    """The kernels declare their dispatch thresholds; the strategies draw on both sides of each."""
    import fused_moe
    limits = fst.limits_for(targets.get("route-fused").convention)
    values = set(fst.threshold_tokens(limits))
    for name, t in fused_moe.DISPATCH_THRESHOLDS.items():
        assert {t - 1, t, t + 1} <= values, name
