"""Hand-computed cases for the MoE sorting oracle and route (SPEC sections 2-3)."""
import numpy as np
import pytest

from oracles import RouteResult, SortingResult, capacity, moe_sorting, route, sentinel, topk_gating_softmax


def pk(t, j):
    """Packed assignment id (j << 24) | t."""
    return (j << 24) | t


def weights_for(ids):
    """Distinct, recognisable weights: w[t, j] = t + j / 8."""
    T, K = ids.shape
    return (np.arange(T)[:, None] + np.arange(K)[None, :] / 8).astype(np.float32)


CK_IDS = np.array([[0, 3, 5], [2, 3, 5], [1, 3, 5], [1, 2, 3], [1, 3, 5]], dtype=np.int32)


def test_ck_documentation_example():
    # The CK moe_sorting doc example (E=6, K=3, U=4, T=5), every position spelled out.
    S = sentinel(3, 5)
    assert S == 0x03000005
    res = moe_sorting(CK_IDS, weights_for(CK_IDS), 6, unit_size=4)
    assert isinstance(res, SortingResult)
    assert res.sorted_token_ids.tolist() == [
        pk(0, 0), S, S, S,                                     # expert 0: token 0
        pk(2, 0), pk(3, 0), pk(4, 0), S,                       # expert 1: tokens 2, 3, 4
        pk(1, 0), pk(3, 1), S, S,                              # expert 2: tokens 1, 3 (slot 1)
        pk(0, 1), pk(1, 1), pk(2, 1), pk(3, 2), pk(4, 1), S, S, S,  # expert 3: 5 assignments, 2 blocks
        pk(0, 2), pk(1, 2), pk(2, 2), pk(4, 2),                # expert 5: exactly one full block
    ]                                                          # expert 4: empty, no block
    assert res.sorted_expert_ids.tolist() == [0, 1, 2, 3, 3, 5]
    assert res.num_valid_ids.tolist() == [24, 5]
    assert res.sorted_token_ids.dtype == np.int32 and res.sorted_expert_ids.dtype == np.int32
    assert res.num_valid_ids.dtype == np.int32 and res.sorted_weights.dtype == np.float32
    w = weights_for(CK_IDS)
    for p, v in enumerate(res.sorted_token_ids.tolist()):
        want = np.float32(0.0) if v == S else w[v & 0xFFFFFF, v >> 24]
        assert res.sorted_weights[p].view(np.uint32) == np.float32(want).view(np.uint32)


def test_ck_example_with_expert_mask():
    # Mask [1,0,1,1,0,1] drops expert 1; sorted_expert_ids holds LOCAL ids (e2->1, e3->2, e5->3).
    S = sentinel(3, 5)
    res = moe_sorting(CK_IDS, weights_for(CK_IDS), 6, unit_size=4, expert_mask=np.array([1, 0, 1, 1, 0, 1]))
    assert res.num_valid_ids.tolist() == [20, 5]
    assert res.sorted_expert_ids.tolist() == [0, 1, 2, 2, 3]
    assert res.sorted_token_ids.tolist() == [
        pk(0, 0), S, S, S,
        pk(1, 0), pk(3, 1), S, S,
        pk(0, 1), pk(1, 1), pk(2, 1), pk(3, 2), pk(4, 1), S, S, S,
        pk(0, 2), pk(1, 2), pk(2, 2), pk(4, 2),
    ]
    # A bool mask means the same thing.
    res_b = moe_sorting(CK_IDS, weights_for(CK_IDS), 6, unit_size=4,
                        expert_mask=np.array([True, False, True, True, False, True]))
    assert res_b.sorted_token_ids.tolist() == res.sorted_token_ids.tolist()


def test_all_tokens_on_one_expert():
    # E=1, K=1, U=16: four assignments fill one block, 12 pads of sentinel (1<<24)|4.
    ids = np.zeros((4, 1), np.int32)
    res = moe_sorting(ids, weights_for(ids), 1, unit_size=16)
    assert res.sorted_token_ids.tolist() == [0, 1, 2, 3] + [sentinel(1, 4)] * 12
    assert res.sorted_expert_ids.tolist() == [0]
    assert res.num_valid_ids.tolist() == [16, 4]
    assert res.sorted_weights[4:].view(np.uint32).tolist() == [0] * 12


def test_duplicate_ids_in_a_row_are_kept():
    # Row 0 picks expert 1 twice: both (0,0) and (0,1) are assignments, slot order kept.
    ids = np.array([[1, 1], [0, 1]], np.int32)
    res = moe_sorting(ids, weights_for(ids), 2, unit_size=2)
    assert res.sorted_token_ids.tolist() == [pk(1, 0), sentinel(2, 2), pk(0, 0), pk(0, 1), pk(1, 1),
                                             sentinel(2, 2)]
    assert res.sorted_expert_ids.tolist() == [0, 1, 1]


def test_out_of_range_ids_are_dropped():
    # -1, E and 1000 are not experts: dropped, no slot; only (0,1) and (1,1) survive.
    ids = np.array([[-1, 2], [3, 0], [1000, -7]], np.int32)
    res = moe_sorting(ids, weights_for(ids), 3, unit_size=1)
    assert res.sorted_token_ids.tolist() == [pk(1, 1), pk(0, 1)]
    assert res.sorted_expert_ids.tolist() == [0, 2]
    assert res.num_valid_ids.tolist() == [2, 3]


def test_rows_past_m_are_ignored():
    # M=2 < T=4: rows 2 and 3 hold garbage (out of range, NaN weights) and must not matter.
    ids = np.array([[0, 1], [1, 0], [99, -5], [1, 1]], np.int32)
    w = weights_for(ids)
    w[2:] = np.nan
    res = moe_sorting(ids, w, 2, unit_size=2, num_local_tokens=2)
    S = sentinel(2, 2)
    assert res.sorted_token_ids.tolist() == [pk(0, 0), pk(1, 1), pk(0, 1), pk(1, 0)]
    assert S not in res.sorted_token_ids.tolist()
    assert res.num_valid_ids.tolist() == [4, 2]
    # M given as a NumPy scalar or a one-element array means the same.
    for m in (np.int32(2), np.array([2], np.int32)):
        assert moe_sorting(ids, w, 2, unit_size=2, num_local_tokens=m).sorted_token_ids.tolist() == \
            res.sorted_token_ids.tolist()
    # The sentinel carries M, not T.
    res3 = moe_sorting(ids, w, 2, unit_size=4, num_local_tokens=1)
    assert res3.sorted_token_ids.tolist() == [pk(0, 0), sentinel(2, 1), sentinel(2, 1), sentinel(2, 1),
                                              pk(0, 1), sentinel(2, 1), sentinel(2, 1), sentinel(2, 1)]


def test_m_zero_gives_empty_layout():
    # M=0: no assignment at all; num_valid_ids = [0, 0] and empty buffers.
    ids = np.array([[0, 1]], np.int32)
    res = moe_sorting(ids, weights_for(ids), 2, num_local_tokens=0)
    assert res.num_valid_ids.tolist() == [0, 0]
    assert res.sorted_token_ids.size == res.sorted_weights.size == res.sorted_expert_ids.size == 0


def test_zero_tokens():
    # T=0 is valid: empty layout, [0, 0].
    res = moe_sorting(np.zeros((0, 2), np.int32), np.zeros((0, 2), np.float32), 4)
    assert res.num_valid_ids.tolist() == [0, 0]


def test_unit_size_one_has_no_padding():
    # U=1: every block is one assignment, no sentinel anywhere, one block per assignment.
    res = moe_sorting(CK_IDS, weights_for(CK_IDS), 6, unit_size=1)
    assert res.num_valid_ids.tolist() == [15, 5]
    assert sentinel(3, 5) not in res.sorted_token_ids.tolist()
    assert res.sorted_expert_ids.tolist() == [0, 1, 1, 1, 2, 2, 3, 3, 3, 3, 3, 5, 5, 5, 5]


def test_all_experts_masked():
    # Every expert masked off: nothing kept.
    res = moe_sorting(CK_IDS, weights_for(CK_IDS), 6, unit_size=4, expert_mask=np.zeros(6, np.int8))
    assert res.num_valid_ids.tolist() == [0, 5]


def test_weights_copied_bit_exactly():
    # NaN payloads, -0.0, inf and denormals are copied through a uint32 view.
    bits = np.array([[0x7FC01234, 0x80000000], [0x7F800000, 0x00000001]], np.uint32)
    ids = np.array([[0, 1], [1, 0]], np.int32)
    res = moe_sorting(ids, bits.view(np.float32), 2, unit_size=1)
    assert res.sorted_weights.view(np.uint32).tolist() == [0x7FC01234, 0x00000001, 0x80000000, 0x7F800000]


def test_other_integer_id_dtypes():
    # int64 / uint8 ids give the same layout as int32.
    w = weights_for(CK_IDS)
    ref = moe_sorting(CK_IDS, w, 6, unit_size=4).sorted_token_ids
    for dt in (np.int64, np.uint8, np.int16):
        assert np.array_equal(moe_sorting(CK_IDS.astype(dt), w, 6, unit_size=4).sorted_token_ids, ref)


def test_int64_ids_outside_int32_are_dropped():
    # An int64 id is range-checked at its own width: 2**32 + 1 is dropped, not wrapped to 1.
    ids = np.array([[1, 2**32 + 1], [-(2**40), 1]], np.int64)
    res = moe_sorting(ids, weights_for(ids), 4, unit_size=1)
    assert res.sorted_token_ids.tolist() == [0, (1 << 24) | 1] and res.num_valid_ids.tolist() == [2, 2]


@pytest.mark.parametrize("T,K,E,U,want", [
    (5, 3, 6, 4, (15 + 6 * 3, 9)),        # CK example: min(E, T*K) = E
    (1, 2, 256, 32, (2 + 2 * 31, 2)),     # T*K < E: at most T*K experts pad
    (0, 8, 256, 32, (0, 0)),              # no tokens, no capacity
    (7, 1, 1, 1, (7, 7)),                 # U = 1: no padding
], ids=["ck", "few-tokens", "T0", "U1"])
def test_capacity(T, K, E, U, want):
    # The tight bound T*K + min(E, T*K)*(U-1) and ceil(rows / U).
    assert capacity(T, K, E, U) == want


def test_capacity_holds_the_layout():
    # A worst case fills every expert with one assignment: exactly capacity rows.
    ids = np.arange(8, dtype=np.int32).reshape(4, 2)
    res = moe_sorting(ids, weights_for(ids), 8, unit_size=5)
    assert res.num_valid_ids[0] == capacity(4, 2, 8, 5)[0] == 40


def test_route_is_the_composition():
    # route == moe_sorting(gating ids, gating weights), bit for bit, including mask and M.
    rng = np.random.default_rng(3)
    x = rng.standard_normal((37, 11), dtype=np.float32)
    x[5, 3] = np.nan
    x[6] = -np.inf
    mask = np.array([1, 1, 0, 1, 1, 1, 0, 1, 1, 1, 1])
    res = route(x, 3, unit_size=8, expert_mask=mask, num_local_tokens=30)
    assert isinstance(res, RouteResult) and RouteResult._fields[:2] == ("topk_weights", "topk_ids")
    g = topk_gating_softmax(x, 3)
    s = moe_sorting(g.topk_ids, g.topk_weights, 11, unit_size=8, expert_mask=mask, num_local_tokens=30)
    for a, b in zip(res, tuple(g) + tuple(s)):
        assert a.dtype == b.dtype and np.array_equal(a.view(np.uint8), b.view(np.uint8))
