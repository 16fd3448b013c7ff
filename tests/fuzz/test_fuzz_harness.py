"""The harness itself: the oracle, run as a target through the same poisoned calls, passes
every property (so a failure in tests/fuzz or tests/quality is the target's), and each
property rejects a planted wrong output with the symptom planted."""
import numpy as np
import pytest
import torch
from hypothesis import given, settings

import oracles
from fuzz import buffers
from fuzz import properties as fp
from fuzz import targets
from fuzz.cases import GatingCase, Logits, Options, RouteCase, SortingCase
from fuzz.conventions import CK
from fuzz.strategies import cases_for


ORACLES = {"gating": "oracle-gating", "sorting": "oracle-sorting", "route": "oracle-route",
           "batch": "oracle-gating", "reuse": "oracle-route"}


@pytest.mark.runs_targets
@pytest.mark.parametrize("prop", sorted(ORACLES))
def test_every_case_carries_its_regime_labels(prop):
    """The campaign counts regimes from ``case.labels`` for every property's cases."""
    @settings(max_examples=5)
    @given(cases_for(prop))
    def run(case):
        assert case.labels and all(": " in label for label in case.labels), case.labels
        fp.check(prop, targets.get(ORACLES[prop]), case)

    run()


@pytest.mark.runs_targets
@pytest.mark.parametrize("name", sorted(set(ORACLES.values()) | {"oracle-sorting-vllm", "oracle-route-vllm"}))
def test_oracle_target_passes(name):
    target = targets.get(name)
    for prop in fp.properties_for(target):
        budget = 2 * fp.PROPERTIES[prop].ci_examples

        @settings(max_examples=budget)
        @given(cases_for(prop, target))
        def run(case):
            fp.check(prop, target, case, "cpu")

        run()


def _off_by_one_bit(route_fn):
    """A route whose sorted_weights' lowest bit flips at the first valid slot."""
    def route(*args, **kwargs):
        r = list(route_fn(*args, **kwargs))
        if int(r[5][0]) > 0:
            r[3].view(torch.int32)[0] ^= 1
        return tuple(r)
    return route


@pytest.mark.runs_targets
def test_paths_property_rejects_a_one_bit_difference():
    good = targets.get("oracle-route")
    bad = fp.Target.of("off-by-one-bit", _off_by_one_bit(good.fn), good.convention)
    case = RouteCase(Logits(np.array([[0.5, 2.0, -1.0]], np.float32)), 2, options=Options(unit_size=2))
    fp.paths_property({"a": good, "b": good}, case)  # the must-pass control
    with pytest.raises(fp.TargetFailure) as failure:
        fp.paths_property({"a": good, "b": bad}, case)
    assert failure.value.kind == "sorted_weights differs", failure.value


@pytest.mark.runs_targets
def test_a_write_past_the_buffer_end_is_reported_as_such():
    """A target writing one element past its production-length view hits the guard."""
    good = targets.get("oracle-sorting")

    def scribbler(topk_ids, topk_weights, num_experts, **kwargs):
        r = good.fn(topk_ids, topk_weights, num_experts, **kwargs)
        tok = kwargs["out"][0]
        torch.as_strided(tok, (tok.numel() + 1,), (1,))[-1] = 7  # one past the view
        return r

    target = fp.Target.of("scribbler", scribbler, CK.replace(op="sorting"))
    case = SortingCase(np.array([[0, 1]], np.int32), np.ones((1, 2), np.float32), 2, Options(unit_size=1))
    with pytest.raises(fp.TargetFailure) as failure:
        fp.sorting_property(target, case)
    assert failure.value.kind == "written past the buffer end", failure.value


@pytest.mark.runs_targets
def test_a_modified_input_is_reported():
    good = targets.get("oracle-gating")

    def clobber(logits, topk, *, renormalize=True):
        r = good.fn(logits, topk, renormalize=renormalize)
        logits[0, 0] = 99.0
        return r

    target = fp.Target.of("clobber", clobber, CK.replace(op="gating"))
    with pytest.raises(fp.TargetFailure) as failure:
        fp.gating_property(target, GatingCase(Logits(np.array([[1.0, 2.0]], np.float32)), 1))
    assert failure.value.kind == "input modified"


@pytest.mark.runs_targets
def test_a_target_that_raises_fails_with_that_input():
    def refuses(logits, topk, *, renormalize=True):
        raise RuntimeError("not on this input")

    with pytest.raises(fp.TargetFailure) as failure:
        fp.gating_property(fp.Target.of("refuses", refuses, CK.replace(op="gating")),
                           GatingCase(Logits(np.zeros((1, 2), np.float32)), 1))
    assert failure.value.kind == "raised RuntimeError"


def test_poisoned_views_have_the_production_length_and_a_guard():
    p = buffers.poisoned_sorting("ck", "tight", 3, 2, 5, 4, "cpu")
    rows, blocks = oracles.capacity(3, 2, 5, 4)
    assert [v.numel() for v in p.views] == [rows, rows, blocks, 2]
    assert [a.numel() for a in p.allocations] == [rows + buffers.GUARD, rows + buffers.GUARD,
                                                  blocks + buffers.GUARD, 2 + buffers.GUARD]
    assert (p.allocations[1].view(torch.int32) == buffers.CANARY_WEIGHT_BITS).all()
    assert buffers.production_capacity("aiter", 3, 2, 5, 4) == (3 * 2 + 5 * 4 - 2, 6)
