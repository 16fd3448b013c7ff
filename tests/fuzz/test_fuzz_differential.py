"""Differential fuzzing of the kernels against the NumPy oracle (SPEC sections 1-3).

Each test is one property of ``fuzz.properties`` under ``@given``, drawing inside the
kernel target's declared domain; the quality suite (tests/quality) runs the same
properties on planted bugs, the campaign (``python -m fuzz run``) for as long as it is given.
"""
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fuzz import properties as fp
from fuzz import targets
from fuzz.settings import examples
from fuzz.shapes import lane_classes
from fuzz.strategies import cases_for

pytest.importorskip("fused_moe")
pytestmark = pytest.mark.runs_targets

PATHS = ("fused", "unfused", "auto")
GATING = targets.get("gating")
SORTING = targets.get("sorting")
ROUTES = {p: targets.get(f"route-{p}") for p in PATHS}


def _budget(prop: str) -> int:
    return examples(fp.PROPERTIES[prop].ci_examples)


def _cases(prop: str, target):
    """``prop``'s cases on ``target``: every shape under the interpreter; on a GPU, those of a
    few fixed shape classes (fuzz/shapes.py), or the cold suite compiles a variant per example."""
    return cases_for(prop, target, classes=lane_classes(prop, target))


@settings(max_examples=_budget("gating"))
@given(case=_cases("gating", GATING))
def test_gating_matches_oracle(case, device):
    fp.gating_property(GATING, case, device)


@settings(max_examples=_budget("sorting"))
@given(case=_cases("sorting", SORTING))
def test_sorting_matches_oracle(case, device):
    fp.sorting_property(SORTING, case, device)


@pytest.mark.parametrize("path", PATHS)
@settings(max_examples=_budget("route"))
@given(case=_cases("route", ROUTES["fused"]))
def test_route_matches_oracle(path, case, device):
    fp.route_property(ROUTES[path], case, device)


@settings(max_examples=_budget("paths"))
@given(case=_cases("paths", ROUTES["fused"]))
def test_route_paths_agree_bitwise(case, device):
    fp.paths_property(ROUTES, case, device)


VLLM = {name: targets.get(name) for name in ("sorting-vllm", *(f"route-{p}-vllm" for p in PATHS))}


@pytest.mark.parametrize("name", sorted(VLLM))
@settings(max_examples=_budget("route") // 2)
@given(data=st.data())
def test_vllm_layout_matches_oracle(name, data, device):
    """Our kernels in vLLM's layout (layout="vllm"), judged by the same properties in that convention."""
    target = VLLM[name]
    prop = target.convention.op
    fp.check(prop, target, data.draw(_cases(prop, target)), device)


BATCH_TARGETS = {"gating": GATING, "route-fused": ROUTES["fused"], "route-unfused": ROUTES["unfused"]}


@pytest.mark.parametrize("name", sorted(BATCH_TARGETS))
@settings(max_examples=_budget("batch"))
@given(case=_cases("batch", GATING))
def test_batch_invariance(name, case, device):
    fp.batch_property(BATCH_TARGETS[name], case, device)


@pytest.mark.parametrize("path", ["fused", "unfused"])
@settings(max_examples=_budget("reuse"))
@given(case=_cases("reuse", ROUTES["fused"]))
def test_plan_reuse(path, case, device):
    fp.reuse_property(ROUTES[path], case, device)
