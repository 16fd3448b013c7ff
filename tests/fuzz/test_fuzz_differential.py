"""Differential fuzzing of the kernels against the NumPy oracle (SPEC sections 1-3).

Each test is one of the properties of ``fuzz.targets`` under ``@given``; the
quality suite (tests/quality) runs the same properties on planted bugs.
"""
import pytest
from hypothesis import given, settings

from fuzz import strategies as fst
from fuzz import targets as tg
from fuzz.settings import examples

pytest.importorskip("fused_moe")

PATHS = tg.ROUTE_PATHS


@settings(max_examples=examples(tg.PROPERTIES["gating"].ci_examples))
@given(case=fst.gating_cases())
def test_gating_matches_oracle(case, device):
    tg.gating_property(tg.kernel_gating, case, device)


@settings(max_examples=examples(tg.PROPERTIES["sorting"].ci_examples))
@given(case=fst.sorting_cases())
def test_sorting_matches_oracle(case, device):
    tg.sorting_property(tg.kernel_sorting, case, device)


@pytest.mark.parametrize("path", PATHS)
@settings(max_examples=examples(tg.PROPERTIES["route"].ci_examples))
@given(case=fst.route_cases())
def test_route_matches_oracle(path, case, device):
    tg.route_property(tg.kernel_route(path), case, device)


@settings(max_examples=examples(25))
@given(case=fst.route_cases())
def test_route_paths_agree_bitwise(case, device):
    tg.paths_agree_property({p: tg.kernel_route(p) for p in PATHS}, case, device)


BATCH_TARGETS = {"gating": tg.kernel_gating, **{f"route-{p}": tg.route_as_gating(tg.kernel_route(p))
                                                for p in ("fused", "unfused")}}


@pytest.mark.parametrize("name", sorted(BATCH_TARGETS))
@settings(max_examples=examples(tg.PROPERTIES["batch"].ci_examples))
@given(case=fst.batch_cases())
def test_batch_invariance(name, case, device):
    tg.batch_invariance_property(BATCH_TARGETS[name], case, device)


@pytest.mark.parametrize("path", ["fused", "unfused"])
@settings(max_examples=examples(tg.PROPERTIES["reuse"].ci_examples))
@given(case=fst.reuse_cases())
def test_plan_reuse(path, case, device):
    tg.reuse_property(tg.kernel_route(path), case, device)
