"""External targets (fuzz/adapters): other projects' kernels through the one harness.

Every adapter must import, answer ``available()`` without raising and declare a valid
convention per target. Every target that can run here passes every property that
applies to it inside its declared domain (the same properties our kernels face);
disagreements found with the campaign are pinned below as strict xfails with their
minimal cases, so a fix upstream shows up as an XPASS.

Only ``sglang_triton`` runs on a CPU machine (Triton interpreter); it needs the sglang
wheel: ``pip install --no-deps --target .ext sglang==0.5.23`` (``tox -e external`` does
it), an installed sglang, or ``MOE_SGLANG_DIR``.
"""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings

from fuzz import adapters, ledger, targets
from fuzz import properties as fp
from fuzz.cases import GatingCase, Logits, Options, SortingCase
from fuzz.conventions import Convention
from fuzz.settings import examples
from fuzz.strategies import cases_for

EXTERNAL = targets.external_names()
KNOWN = ledger.load()


@pytest.mark.parametrize("name", adapters.MODULES)
def test_adapter_imports_and_declares(name):
    mod = adapters.adapter(name)
    assert isinstance(mod.available(), bool)
    assert mod.TARGETS, f"{name} has no targets"
    assert mod.__doc__ and "source" in mod.__doc__.lower(), f"{name}: the docstring must cite its sources"
    for target_name, fn in mod.TARGETS.items():
        conv = fn.convention
        assert isinstance(conv, Convention)
        assert conv.name == target_name
        assert conv.op in ("gating", "sorting")


def _target(name: str) -> fp.Target:
    try:
        return targets.get(name)
    except ValueError as exc:
        pytest.skip(str(exc))


@pytest.mark.runs_targets
@pytest.mark.parametrize("name", EXTERNAL)
def test_external_target_passes_its_properties(name, device):
    target = _target(name)
    for prop in fp.properties_for(target):
        @settings(max_examples=examples(fp.PROPERTIES[prop].ci_examples // 2))
        @given(case=cases_for(prop, target))
        def run(case):
            try:
                fp.check(prop, target, case, device)
            except fp.TargetFailure as failure:
                if ledger.match(KNOWN, target.name, failure.signature) is None:
                    raise  # a new finding; known ones (fuzz/known_findings.toml) are pinned below

        run()


@pytest.mark.runs_targets
def test_sglang_gate_topk_orders_signed_zeros_by_bits(device):
    """gate_topk keys the float's bits, so +0.0 beats a lower-index -0.0: a convention
    (specials_order = "bits") it declares, and the SPEC's tie rule rejects."""
    target = _target("sglang.gate_topk")
    case = GatingCase(Logits(np.array([[-0.0, 0.0]], np.float32)), 1)
    fp.gating_property(target, case, device)
    as_spec = fp.Target.of(target.name, target.fn, target.convention.replace(specials_order="spec"))
    with pytest.raises(fp.TargetFailure) as failure:
        fp.gating_property(as_spec, case, device)
    assert failure.value.kind == "wrong ids"


@pytest.mark.runs_targets
def test_sglang_sorting_small_empty_batch_is_a_known_finding(device):
    """_small_sort_supported accepts T*K = 0, then PAD_POW2 = next_power_of_2(0) = 0 and tl.arange(0, 0)
    fails. When this stops failing, remove its entry from fuzz/known_findings.toml."""
    case = SortingCase(np.zeros((0, 1), np.int32), np.zeros((0, 1), np.float32), 1, Options(unit_size=1))
    with pytest.raises(fp.TargetFailure) as failure:
        fp.sorting_property(_target("sglang.moe_sorting_small"), case, device)
    assert ledger.match(KNOWN, "sglang.moe_sorting_small", failure.value.signature) is not None


@pytest.mark.runs_targets
def test_sglang_gate_topk_negative_nan_is_a_known_finding(device):
    """A -NaN logit (bits 0xffc00000) ranks below gate_topk's -inf padding lanes, so at E=1 a
    padding lane wins: id 1 (>= E), weight -inf. Remove its fuzz/known_findings.toml entry once fixed."""
    logits = np.array([[0.0]], np.float32)
    logits.view(np.uint32)[0, 0] = 0xFFC00000
    with pytest.raises(fp.TargetFailure) as failure:
        fp.gating_property(_target("sglang.gate_topk"), GatingCase(Logits(logits), 1), device)
    assert ledger.match(KNOWN, "sglang.gate_topk", failure.value.signature) is not None, failure.value
