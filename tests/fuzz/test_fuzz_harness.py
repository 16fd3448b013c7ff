"""The harness itself: the oracle, run as a target through the same poisoned calls,
passes every property (so a failure in tests/fuzz or tests/quality is the target's)."""
import pytest
from hypothesis import given, settings

from fuzz import strategies as fst
from fuzz import targets as tg

ORACLES = {"gating": tg.oracle_gating, "sorting": tg.oracle_sorting, "route": tg.oracle_route,
           "batch": tg.oracle_gating, "reuse": tg.oracle_route}


@pytest.mark.parametrize("prop", sorted(tg.PROPERTIES))
def test_every_case_carries_its_regime_labels(prop):
    """The campaign counts regimes from ``case.labels`` for every property's cases."""
    @settings(max_examples=5)
    @given(tg.PROPERTIES[prop].strategy())
    def run(case):
        assert case.labels and all(": " in label for label in case.labels), case.labels

    run()


@pytest.mark.parametrize("prop", sorted(tg.PROPERTIES))
def test_oracle_target_passes(prop):
    p = tg.PROPERTIES[prop]

    @settings(max_examples=4 * p.ci_examples)
    @given(p.strategy())
    def run(case):
        p.check(ORACLES[prop], case, "cpu")

    run()


@settings(max_examples=50)
@given(case=fst.route_cases())
def test_oracle_paths_agree(case):
    tg.paths_agree_property({"a": tg.oracle_route, "b": tg.oracle_route}, case)


def test_poisoned_buffers_extend_past_capacity():
    out = tg.poisoned_sorting_out(3, 2, 5, 4, "cpu")
    rows, blocks = __import__("oracles").capacity(3, 2, 5, 4)
    assert out.sorted_token_ids.numel() == rows + tg.SLACK
    assert out.sorted_expert_ids.numel() == blocks + tg.SLACK
    assert (out.sorted_weights.view(__import__("torch").int32) == tg.CANARY_WEIGHT_BITS).all()
