"""Every regime label is generated within the example budget the CI kernel tests use.

The labels are the ones the strategies pass to ``hypothesis.event`` (also kept in
``case.labels``); a regime that CI never draws would be a silent gap.
"""
import pytest
from hypothesis import given, settings

from fuzz import strategies as fst
from fuzz.settings import examples
from fuzz.targets import PROPERTIES

EXPECTED = {
    "gating": ("tokens", "topk", "logits", "dtype", "layout"),
    "sorting": ("tokens", "topk", "ids", "weights", "mask", "m", "moe_buf", "out"),
    "route": ("tokens", "topk", "logits", "dtype", "layout", "mask", "m", "moe_buf", "out"),
}


def _expected_labels(prop):
    labels = {f"{d}: {r}" for d in EXPECTED[prop] for r in fst.DIMENSIONS[d]}
    if prop != "sorting":
        labels.discard("tokens: derived")  # only the unit_edges id regime derives T
    return labels


@pytest.mark.parametrize("prop", sorted(EXPECTED))
def test_every_regime_is_generated(prop):
    seen = set()
    p = PROPERTIES[prop]

    @settings(max_examples=examples(p.ci_examples))
    @given(p.strategy())
    def collect(case):
        seen.update(case.labels)

    collect()
    missing = _expected_labels(prop) - seen
    assert not missing, f"{prop}: regimes never generated in {p.ci_examples} examples: {sorted(missing)}"


def test_threshold_tokens_straddle_every_dispatch_threshold():
    values = set(fst.threshold_tokens())
    for name, t in fst.dispatch_thresholds().items():
        assert {t - 1, t, t + 1} <= values, name
