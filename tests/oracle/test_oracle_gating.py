"""Hand-computed cases for the top-k gating softmax oracle (SPEC section 1)."""
import math

import numpy as np
import pytest

from oracles import GatingResult, topk_gating_softmax

INF, NAN = np.inf, np.nan


def gate(rows, k, **kw):
    return topk_gating_softmax(np.array(rows, dtype=np.float32), k, **kw)


def test_result_types_and_shapes():
    # The public NamedTuple: float32 weights first, int32 ids second.
    res = gate([[1.0, 2.0, 3.0]], 2)
    assert isinstance(res, GatingResult)
    assert res.topk_weights.dtype == np.float32 and res.topk_ids.dtype == np.int32
    assert res.topk_weights.shape == res.topk_ids.shape == (1, 2)


def test_plain_softmax_values():
    # Ordinary row: slot 0 largest; weights are the float64 softmax rounded once.
    x = [0.5, 2.0, -1.0, 1.0]
    res = gate([x], 2, renormalize=False)
    z = np.exp(np.array(x, np.float64) - 2.0)
    p = z / z.sum()
    assert res.topk_ids.tolist() == [[1, 3]]
    assert res.topk_weights.tolist() == [[np.float32(p[1]), np.float32(p[3])]]
    ren = gate([x], 2)
    assert ren.topk_weights.tolist() == [[np.float32(p[1] / (p[1] + p[3])), np.float32(p[3] / (p[1] + p[3]))]]


def test_ties_go_to_lower_index():
    # Three equal maxima: the lower indices win, in index order; equal weights.
    res = gate([[1.0, 3.0, 0.0, 3.0, 3.0]], 2)
    assert res.topk_ids.tolist() == [[1, 3]]
    assert res.topk_weights.tolist() == [[0.5, 0.5]]


def test_all_equal_row_selects_prefix():
    # A constant row is one big tie: ids 0..K-1.
    res = gate([[7.0] * 9], 4)
    assert res.topk_ids.tolist() == [[0, 1, 2, 3]]


def test_negative_zero_ties_positive_zero():
    # -0.0 == +0.0: index 1 (-0.0) beats index 2 (+0.0) because it is lower.
    res = gate([[-1.0, -0.0, 0.0]], 2)
    assert res.topk_ids.tolist() == [[1, 2]]
    res = gate([[-1.0, 0.0, -0.0]], 2)
    assert res.topk_ids.tolist() == [[1, 2]]


def test_nan_ranks_as_negative_infinity():
    # NaN loses to every finite value and ties with -inf by index; its weight is 0.
    res = gate([[NAN, 1.0, -INF, 2.0]], 4, renormalize=False)
    assert res.topk_ids.tolist() == [[3, 1, 0, 2]]
    w = res.topk_weights[0]
    assert w[2] == 0.0 and w[3] == 0.0 and not np.isnan(w).any()
    assert math.isclose(float(w[0] + w[1]), 1.0, rel_tol=1e-6)


def test_all_nan_row_is_uniform():
    # Every entry NaN counts as all -inf: uniform 1/E, ids by index.
    res = gate([[NAN] * 4], 2, renormalize=False)
    assert res.topk_ids.tolist() == [[0, 1]]
    assert res.topk_weights.tolist() == [[0.25, 0.25]]


def test_all_negative_infinity_row_is_uniform():
    # The limit form for an all -inf row: probability 1/E each (renormalized: 1/K).
    res = gate([[-INF] * 5], 3, renormalize=False)
    assert res.topk_ids.tolist() == [[0, 1, 2]]
    assert res.topk_weights.tolist() == [[np.float32(0.2)] * 3]
    assert gate([[-INF] * 5], 3).topk_weights.tolist() == [[np.float32(1 / 3)] * 3]


def test_two_positive_infinities_share_the_mass():
    # Row max +inf: each +inf has 1/count(+inf) = 0.5, the rest 0 (no inf - inf NaN).
    res = gate([[1.0, INF, 5.0, INF]], 3, renormalize=False)
    assert res.topk_ids.tolist() == [[1, 3, 2]]
    assert res.topk_weights.tolist() == [[0.5, 0.5, 0.0]]


def test_positive_infinity_with_nan():
    # +inf and NaN together: NaN is -inf, +inf takes everything.
    res = gate([[NAN, INF, 0.0]], 3, renormalize=False)
    assert res.topk_ids.tolist() == [[1, 2, 0]]
    assert res.topk_weights.tolist() == [[1.0, 0.0, 0.0]]


def test_huge_finite_range_does_not_overflow():
    # 3e38 - (-3e38) overflows float32; the float64 subtraction keeps it finite.
    res = gate([[3e38, -3e38, 0.0]], 3, renormalize=False)
    assert res.topk_ids.tolist() == [[0, 2, 1]]
    assert res.topk_weights.tolist() == [[1.0, 0.0, 0.0]]
    res = gate([[-3e38, -3e38]], 2)
    assert res.topk_weights.tolist() == [[0.5, 0.5]]


def test_k_equals_e_is_a_full_sort():
    # K == E: every expert appears once, stable order on ties; renormalized sum is the full softmax.
    x = [[2.0, -1.0, 2.0, 0.5]]
    res = gate(x, 4)
    assert res.topk_ids.tolist() == [[0, 2, 3, 1]]
    assert math.isclose(float(res.topk_weights.sum(dtype=np.float64)), 1.0, rel_tol=1e-6)


def test_single_expert():
    # E == 1, K == 1: weight 1 whatever the logit, even NaN or -inf.
    res = gate([[5.0], [NAN], [-INF], [INF]], 1, renormalize=False)
    assert res.topk_ids.tolist() == [[0]] * 4
    assert res.topk_weights.tolist() == [[1.0]] * 4


def test_float16_input_is_upcast_exactly():
    # float16 callers: the same result as the exact float32 upcast.
    x16 = np.array([[0.1, 0.3, 0.3, -2.0]], dtype=np.float16)
    a, b = topk_gating_softmax(x16, 2), topk_gating_softmax(x16.astype(np.float32), 2)
    assert np.array_equal(a.topk_ids, b.topk_ids) and np.array_equal(a.topk_weights, b.topk_weights)


def test_column_slice_input():
    # A strided view (column slice of a wider array) is valid input.
    wide = np.arange(24, dtype=np.float32).reshape(3, 8)
    res = topk_gating_softmax(wide[:, 2:6], 2)
    assert res.topk_ids.tolist() == [[3, 2]] * 3


def test_zero_rows():
    # T == 0 is valid and yields empty [0, K] outputs.
    res = topk_gating_softmax(np.zeros((0, 4), np.float32), 2)
    assert res.topk_ids.shape == (0, 2) and res.topk_weights.shape == (0, 2)


def test_batch_invariance():
    # A row's result does not depend on the other rows (SPEC section 3).
    rng = np.random.default_rng(1)
    x = rng.standard_normal((33, 17), dtype=np.float32)
    full = topk_gating_softmax(x, 5)
    for t in (0, 16, 32):
        one = topk_gating_softmax(x[t:t + 1], 5)
        assert np.array_equal(one.topk_ids[0], full.topk_ids[t])
        assert np.array_equal(one.topk_weights[0].view(np.uint32), full.topk_weights[t].view(np.uint32))


@pytest.mark.parametrize("renormalize", [True, False], ids=["renorm", "raw"])
def test_weights_match_float64_reference(renormalize):
    # Random rows against a straightforward per-row float64 computation.
    rng = np.random.default_rng(2)
    x = (rng.standard_normal((17, 13)) * 4).astype(np.float32)
    res = topk_gating_softmax(x, 3, renormalize=renormalize)
    for t in range(x.shape[0]):
        row = x[t].astype(np.float64)
        order = sorted(range(13), key=lambda e: (-row[e], e))[:3]
        p = np.exp(row - row.max())
        p /= p.sum()
        sel = p[order]
        if renormalize:
            sel = sel / sel.sum()
        assert res.topk_ids[t].tolist() == order
        assert np.array_equal(res.topk_weights[t], sel.astype(np.float32))
