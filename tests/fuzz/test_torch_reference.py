"""The plain-PyTorch reference (fuzz/torch_reference.py) against the NumPy oracle.

Two references written apart must agree on every case the fuzzers draw, through the
same differential properties the kernels face (poisoned ``out=`` buffers, ``moe_buf``
canaries). The vLLM layout is compared with ``oracles.layouts.vllm_from_ck``. And the
properties must be able to fail: broken copies of the reference are caught.
"""
import numpy as np
import pytest
import torch
from hypothesis import given, settings

import oracles
from fuzz import buffers
from fuzz import properties as fp
from fuzz import targets
from fuzz import torch_reference as tr
from fuzz.strategies import cases_for
from fuzz.settings import examples


REFERENCES = {name: targets.get(f"torch-{name}") for name in
              ("gating", "sorting", "route", "sorting-vllm", "route-vllm")}
#: name -> (property, examples); the vLLM-layout targets are judged by the same properties
#: in their declared convention (oracles.check_sorting_vllm: filled tails, flat ids).
BUDGET = {"gating": ("gating", 150), "sorting": ("sorting", 150), "route": ("route", 100),
          "sorting-vllm": ("sorting", 100), "route-vllm": ("route", 60)}


@pytest.mark.parametrize("name", sorted(BUDGET))
def test_reference_passes_the_property(name, device):
    prop, budget = BUDGET[name]
    target = REFERENCES[name]

    @settings(max_examples=examples(budget))
    @given(case=cases_for(prop, target))
    def run(case):
        fp.check(prop, target, case, device)

    run()


@settings(max_examples=examples(40))
@given(case=cases_for("route"))
def test_vllm_route_is_vllm_sorting_of_gating(case, device):
    o = case.options
    logits = case.logits.tensor(device)
    r = tr.route(logits, case.topk, unit_size=o.unit_size, renormalize=case.renormalize,
                 expert_mask=o.mask_tensor(device), num_local_tokens=o.m_arg(device), layout="vllm")
    g = tr.topk_gating_softmax(logits, case.topk, renormalize=case.renormalize)
    s = tr.moe_sorting(g.topk_ids, g.topk_weights, logits.shape[1], unit_size=o.unit_size,
                       expert_mask=o.mask_tensor(device), num_local_tokens=o.m_arg(device), layout="vllm")
    assert isinstance(r, tr.VllmRouteResult)
    for a, b in zip(r, (*g, *s)):
        assert torch.equal(_bits(a), _bits(b))


def _bits(t):
    return t.view(torch.int32) if t.is_floating_point() else t


# --------------------------------------------------------------------------- the properties can fail


def _ties_to_higher_index(rank_key):
    def broken(key):
        return rank_key(key) // 2**32 * 2**32 + torch.arange(key.shape[1], device=key.device)
    return broken


def _total_one_short(layout):
    def broken(*args):
        lay = layout(*args)
        return lay._replace(P=max(lay.P - 1, 0))
    return broken


#: name -> (property, attribute of fuzz.torch_reference, original -> broken replacement)
BROKEN = {
    "ties_to_higher_index": ("gating", "_rank_key", _ties_to_higher_index),
    "nan_not_ranked_low": ("gating", "_selection_key", lambda orig: lambda x: x + 0.0),
    "global_block_ids": ("sorting", "_local_ids", lambda orig: lambda mask, E, device: orig(None, E, device)),
    "padded_total_one_short": ("sorting", "_layout", _total_one_short),
}
TARGETS = {"gating": "torch-gating", "sorting": "torch-sorting"}


@pytest.mark.parametrize("name", sorted(BROKEN))
def test_a_broken_reference_fails_the_property(name, monkeypatch):
    """A reference with one rule broken is caught (a property that cannot fail proves nothing)."""
    prop, attr, breaking = BROKEN[name]
    monkeypatch.setattr(tr, attr, breaking(getattr(tr, attr)))
    case = fp.failing_case(prop, targets.get(TARGETS[prop]))
    assert case is not None, f"{name} survived {fp.HUNT_EXAMPLES} examples of the {prop} property"


# --------------------------------------------------------------------------- validation


def _ids(T=2, K=2, dtype=torch.int32):
    return torch.zeros(T, K, dtype=dtype)


def _w(T=2, K=2):
    return torch.zeros(T, K, dtype=torch.float32)


@pytest.mark.parametrize(("call", "error", "names"), [
    (lambda: tr.topk_gating_softmax(torch.zeros(2, 4, dtype=torch.float64), 1), TypeError, "logits"),
    (lambda: tr.topk_gating_softmax(torch.zeros(4), 1), ValueError, "logits"),
    (lambda: tr.topk_gating_softmax(torch.zeros(2, 0), 1), ValueError, "logits"),
    (lambda: tr.topk_gating_softmax(torch.zeros(2, 4), 5), ValueError, "topk"),
    (lambda: tr.topk_gating_softmax(torch.zeros(2, 4), 0), ValueError, "topk"),
    (lambda: tr.topk_gating_softmax(torch.zeros(2, 4), 1.0), TypeError, "topk"),
    (lambda: tr.moe_sorting(_ids(dtype=torch.float32), _w(), 4), TypeError, "topk_ids"),
    (lambda: tr.moe_sorting(_ids(), _w().half(), 4), TypeError, "topk_weights"),
    (lambda: tr.moe_sorting(_ids(), _w(3), 4), ValueError, "topk_weights"),
    (lambda: tr.moe_sorting(_ids(K=128), _w(K=128), 4), ValueError, "topk_ids"),
    (lambda: tr.moe_sorting(_ids(), _w(), 0), ValueError, "num_experts"),
    (lambda: tr.moe_sorting(_ids(), _w(), 4, unit_size=0), ValueError, "unit_size"),
    (lambda: tr.moe_sorting(_ids(), _w(), 4, expert_mask=torch.ones(3)), TypeError, "expert_mask"),
    (lambda: tr.moe_sorting(_ids(), _w(), 4, expert_mask=torch.ones(3, dtype=torch.bool)), ValueError,
     "expert_mask"),
    (lambda: tr.moe_sorting(_ids(), _w(), 4, num_local_tokens=3), ValueError, "num_local_tokens"),
    (lambda: tr.moe_sorting(_ids(), _w(), 4, num_local_tokens=torch.tensor([1, 2])), TypeError,
     "num_local_tokens"),
    (lambda: tr.moe_sorting(_ids(), _w(), 4, moe_buf=torch.zeros(1, 8)), ValueError, "moe_buf"),
    (lambda: tr.moe_sorting(_ids(), _w(), 4, layout="sgl"), ValueError, "layout"),
    (lambda: tr.moe_sorting(_ids(), _w(), 4, unit_size=2, out=tuple(torch.zeros(1, dtype=torch.int32)
                                                                      for _ in range(4))), ValueError, "out"),
    (lambda: tr.moe_sorting(_ids(), _w(), 4, out=(_w(4, 4).reshape(-1),) * 4), TypeError, "out.sorted_token_ids"),
    (lambda: tr.route(torch.zeros(2, 200), 128), ValueError, "topk"),
    (lambda: tr.route(torch.zeros(2, 4), 2, out=(_w(), _w())), TypeError, "out.topk_ids"),
    (lambda: tr.route(torch.zeros(2, 4), 2, out=(_w(3), _ids())), ValueError, "out.topk_weights"),
])
def test_bad_arguments_are_refused_by_name(call, error, names):
    with pytest.raises(error, match=names):
        call()


def test_ck_out_past_the_prefix_is_untouched_and_fresh_buffers_have_the_capacity():
    ids = torch.tensor([[0, 2], [2, -1], [7, 2]], dtype=torch.int64)
    w = torch.arange(6, dtype=torch.float32).reshape(3, 2)
    rows, blocks = oracles.capacity(3, 2, 4, 4)
    fresh = tr.moe_sorting(ids, w, 4, unit_size=4)
    assert [a.numel() for a in fresh] == [rows, rows, blocks, 2]
    out = buffers.poisoned_sorting("ck", "tight", 3, 2, 4, 4, "cpu").allocations
    before = [a.clone() for a in out]
    res = tr.moe_sorting(ids, w, 4, unit_size=4, out=out)
    P = int(res.num_valid_ids[0])
    assert P == 8 and np.array_equal(res.sorted_expert_ids[:2].numpy(), [0, 2])
    for a, b, n in zip(res, before, (P, P, P // 4)):
        assert torch.equal(a[n:].view(torch.int32), b[n:].view(torch.int32))
