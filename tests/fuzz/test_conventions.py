"""Targets are judged modulo exactly what their convention declares, no more: each
convention accepts a target that differs from the contract only where it says so, and
rejects one that differs anywhere else (every planted target has a must-pass control)."""
import numpy as np
import pytest
import torch

from fuzz import conventions
from fuzz import properties as fp
from fuzz import targets
from fuzz.cases import GatingCase, Logits, Options, SortingCase

pytestmark = pytest.mark.runs_targets

# Three experts, unit 4: expert 0 gets (0,0) (1,1) (2,0); expert 2 gets (0,1) (1,0) (2,1).
IDS = np.array([[0, 2], [2, 0], [0, 2]], np.int32)
CASE = SortingCase(IDS, np.arange(6, dtype=np.float32).reshape(3, 2) + 0.5, 3, Options(unit_size=4))


def _edit_sorting(layout: str, edit):
    """The oracle's sorting in ``layout`` with ``edit(token_ids, weights_or_None)`` applied to the
    written buffers (in place, on the first P slots)."""
    oracle = targets.get(f"oracle-sorting{'-vllm' if layout == 'vllm' else ''}").fn

    def sorting(topk_ids, topk_weights, num_experts, **kwargs):
        r = oracle(topk_ids, topk_weights, num_experts, **kwargs)
        P = int(r[-1][0])
        edit(r[0][:P], r[1][:P] if layout == "ck" else None)
        return r
    return sorting


def _swap(a, i, j):
    a[[i, j]] = a[[j, i]]


def _shuffle_inside_expert(tok, w):
    _swap(tok, 0, 2)  # expert 0's first and third assignments
    if w is not None:
        _swap(w, 0, 2)


def _move_to_other_expert(tok, w):
    _swap(tok, 0, 4)  # expert 0's first slot <-> expert 2's first slot
    if w is not None:
        _swap(w, 0, 4)


def _drop_one(tok, w):
    tok[1] = tok[3]  # a padding value where an assignment was


def _duplicate_one(tok, w):
    tok[3] = tok[0]  # an assignment again where padding was
    if w is not None:
        w[3] = w[0]


EDITS = {"shuffle_inside_expert": _shuffle_inside_expert, "move_to_other_expert": _move_to_other_expert,
         "drop_one": _drop_one, "duplicate_one": _duplicate_one}
#: (edit, order) -> passes?
EXPECTED = {("shuffle_inside_expert", "unordered"): True, ("shuffle_inside_expert", "exact"): False,
            **{(e, o): False for e in ("move_to_other_expert", "drop_one", "duplicate_one")
               for o in ("unordered", "exact")}}


@pytest.mark.parametrize("layout", ["ck", "vllm"])
@pytest.mark.parametrize(("edit", "order"), sorted(EXPECTED))
def test_order_inside_an_expert_is_judged_as_declared(layout, edit, order):
    base = conventions.CK if layout == "ck" else conventions.VLLM
    conv = base.replace(op="sorting", order=order)
    target = fp.Target.of(f"{edit}-{layout}", _edit_sorting(layout, EDITS[edit]), conv)
    control = fp.Target.of(f"control-{layout}", _edit_sorting(layout, lambda tok, w: None), conv)
    fp.sorting_property(control, CASE)  # the must-pass control
    if EXPECTED[(edit, order)]:
        fp.sorting_property(target, CASE)
    else:
        with pytest.raises(fp.TargetFailure):
            fp.sorting_property(target, CASE)


def _gating_ties_to(higher: bool):
    """The oracle's gating with ties to the higher index when ``higher``."""
    import oracles

    def gating(logits, topk, *, renormalize=True):
        w, i = oracles.gating.gating_probabilities(logits.float().numpy(), topk, renormalize=renormalize,
                                                   ties="higher" if higher else "lower")
        return torch.from_numpy(w.astype(np.float32)), torch.from_numpy(i)
    return gating


TIE_CASE = GatingCase(Logits(np.array([[1.0, 3.0, 1.0, 1.0]], np.float32)), 2)
#: (implementation, declared ties) -> passes?
TIES = {("lower", "lower"): True, ("lower", "higher"): False, ("lower", "any"): True,
        ("higher", "lower"): False, ("higher", "higher"): True, ("higher", "any"): True}


@pytest.mark.parametrize(("impl", "declared"), sorted(TIES))
def test_tie_rule_is_judged_as_declared(impl, declared):
    conv = conventions.CK.replace(op="gating", ties=declared)
    target = fp.Target.of(f"ties-{impl}", _gating_ties_to(impl == "higher"), conv)
    if TIES[(impl, declared)]:
        fp.gating_property(target, TIE_CASE)
    else:
        with pytest.raises(fp.TargetFailure) as failure:
            fp.gating_property(target, TIE_CASE)
        assert failure.value.kind == "wrong ids"


def test_any_tie_rule_still_rejects_a_wrong_selection():
    def second_best_first(logits, topk, *, renormalize=True):
        w, i = _gating_ties_to(False)(logits, topk, renormalize=renormalize)
        return w.flip(1), i.flip(1)  # the largest logit in slot 1: no tie rule allows it

    target = fp.Target.of("second-best-first", second_best_first, conventions.CK.replace(op="gating", ties="any"))
    with pytest.raises(fp.TargetFailure) as failure:
        fp.gating_property(target, TIE_CASE)
    assert failure.value.kind == "rows that are no valid top-k"
