"""Shape classes (fuzz/shapes.py) and the campaign's replicas: a class's cases stay inside
it, classes come from the seed, and spare workers run every entry again."""
import collections
import random

import numpy as np
import pytest
from hypothesis import HealthCheck, Phase, find, given, settings

from fuzz import campaign, shapes
from fuzz.strategies import CAMPAIGN_LIMITS, CI_LIMITS, cases_for, limits_for
from fuzz.targets import ours

DRAWS = 60


def _cases(prop, classes, limits):
    """DRAWS cases of ``prop`` from ``classes``, the same ones whatever profile is loaded."""
    seen = []

    @settings(max_examples=DRAWS, derandomize=True, database=None, deadline=None, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck))
    @given(cases_for(prop, None, limits, classes))
    def collect(case):
        seen.append(case)
    collect()
    return seen


def _class_of(case, classes):
    """The classes ``case`` fits (its shape decides)."""
    logits = getattr(case, "logits", None)
    E = case.num_experts if logits is None else logits.values.shape[1]
    K = case.topk_ids.shape[1] if logits is None else case.topk
    o = case.options
    mask = "none" if o.expert_mask is None else {np.dtype(np.int32): "int32", np.dtype(np.bool_): "bool"}[
        np.asarray(o.expert_mask).dtype]
    buf = None if o.moe_buf is None else (o.moe_buf[0], shapes.moe_buf_word(*o.moe_buf))
    fits = []
    for c in classes:
        if logits is not None and (logits.dtype != c.dtype or case.renormalize != c.renormalize
                                   or (logits.col_pad > 0) != (c.layout == "strided")):
            continue
        T = case.topk_ids.shape[0] if logits is None else logits.values.shape[0]
        k_ok = K == c.topk or K < c.topk and T * c.topk > CAMPAIGN_LIMITS.max_assignments  # T*K cap lowers K
        if (E, o.unit_size, mask, buf, o.m_on_device) == (c.experts, c.unit_size, c.mask, c.moe_buf,
                                                          c.m_on_device) and k_ok:
            fits.append(c)
    return fits


@pytest.mark.parametrize("prop", ["sorting", "route"])
def test_every_case_fits_one_of_its_classes_and_each_class_is_drawn(prop):
    limits = limits_for(ours.convention(prop), CAMPAIGN_LIMITS)
    classes = shapes.draw_classes(limits, 3, random.Random(2))
    assert len(classes) == 3 and len(set(classes)) == 3
    seen = collections.Counter()
    for case in _cases(prop, classes, limits):
        fits = _class_of(case, classes)
        seen.update(fits or ["free"])
    assert seen["free"] <= DRAWS // 20, f"{seen['free']} of {DRAWS} cases fit none of {list(map(str, classes))}"
    assert len(seen) - ("free" in seen) >= 2, seen  # the classes' branches reach more than one class


def test_a_failure_found_in_a_class_shrinks_past_it():
    """The whole domain is the shrinker's first branch: a bug on expert E-1 shrinks to T = E =
    K = 1 although every class has E >= 3 (seen on a GPU, where campaigns use classes)."""
    limits = limits_for(ours.convention("sorting"), CAMPAIGN_LIMITS)
    classes = [c for c in shapes.draw_classes(limits, 12, random.Random(5)) if c.experts >= 3][:4]
    assert len(classes) == 4

    def uses_last_expert(case):
        return bool((case.topk_ids == case.num_experts - 1).any())
    small = find(cases_for("sorting", None, limits, classes), uses_last_expert,
                 settings=settings(derandomize=True, database=None, max_examples=500, deadline=None,
                                   suppress_health_check=list(HealthCheck)))
    assert {k: small.size()[k] for k in "TEK"} == {"T": 1, "E": 1, "K": 1}, small


def test_classes_come_from_the_seed_and_stay_in_the_domain():
    limits = limits_for(ours.convention("route"), CI_LIMITS)
    a = shapes.draw_classes(limits, 6, random.Random(5))
    assert a == shapes.draw_classes(limits, 6, random.Random(5))
    assert a != shapes.draw_classes(limits, 6, random.Random(6))
    for c in a:
        assert c.experts in limits.expert_choices() and c.dtype in limits.dtypes and c.unit_size in limits.unit_sizes
        assert 1 <= c.topk <= min(c.experts, limits.max_topk)
        narrowed = c.limits(limits)
        assert narrowed.experts == (c.experts,) and narrowed.topk_range == (c.topk, c.topk)
        if c.moe_buf is not None:
            dtype, word = c.moe_buf
            assert narrowed.moe_buf_rows and all(
                shapes.moe_buf_word(dtype, n) == word for n in narrowed.moe_buf_rows)


def test_a_domain_without_options_gets_classes_without_them():
    limits = limits_for(ours.convention("route"), CI_LIMITS).within(supports=())
    for c in shapes.draw_classes(limits, 8, random.Random(0)):
        assert (c.mask, c.moe_buf, c.m_on_device) == ("none", None, False)


@pytest.mark.parametrize(("entries", "workers", "expected"), [
    (3, 1, [(0, 0), (1, 0), (2, 0)]),
    (2, 5, [(0, 0), (1, 0), (0, 1), (1, 1), (0, 2)]),
])
def test_spare_workers_run_replicas(entries, workers, expected):
    assert campaign.slots(entries, workers) == expected
    assert campaign.replica_label("gating", 0) == "gating" and campaign.replica_label("gating", 2) == "gating@2"


def test_replica_results_add_up_and_keep_the_first_failure():
    entry = campaign.Entry("gating", "gating", None)
    base = {"harness_error": None, "case": None, "failure": None, "classes": []}
    campaign.apply_result(entry, {**base, "examples": 5, "seconds": 2.0, "regimes": {"a": 1}, "classes": ["c1"]})
    campaign.apply_result(entry, {**base, "examples": 7, "seconds": 3.0, "regimes": {"a": 2, "b": 1},
                                  "case": "first", "failure": ("gating", "gating", None)})
    campaign.apply_result(entry, {**base, "examples": 1, "seconds": 1.0, "regimes": {}, "harness_error": "boom",
                                  "case": "second", "failure": ("gating", "gating", None)})
    assert (entry.examples, entry.seconds, dict(entry.regimes)) == (13, 3.0, {"a": 3, "b": 1})
    assert entry.case == "first" and entry.harness_error == "boom" and entry.classes == ["c1"]


def test_lane_classes_are_the_same_every_run_and_none_under_the_interpreter(monkeypatch):
    import torch
    from fuzz import targets
    sorting, route = targets.get("sorting"), targets.get("route-fused")
    monkeypatch.setenv("TRITON_INTERPRET", "1")
    assert shapes.lane_classes("sorting", sorting) == []
    monkeypatch.delenv("TRITON_INTERPRET")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    first = shapes.lane_classes("sorting", sorting)
    assert len(first) == shapes.LANE_CLASSES and first == shapes.lane_classes("sorting", sorting)
    assert first != shapes.lane_classes("route", route)
