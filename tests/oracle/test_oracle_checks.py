"""Each checker accepts correct output and rejects planted bugs, naming the place."""
import numpy as np
import pytest

from oracles import (CheckReport, RouteResult, SortingResult, capacity, check_gating, check_moe_buf, check_route,
                     check_sorting, moe_sorting, route, sentinel, topk_gating_softmax)
from oracles.checks import MAX_PER_KIND

CANARY_INT = 0x5A5A5A5A
CANARY_F32_BITS = 0x7FC0DEAD  # a NaN with a payload


def logits(T=24, E=10, seed=0):
    x = np.random.default_rng(seed).standard_normal((T, E), dtype=np.float32)
    x[3, [2, 7]] = 9.0  # a tie at the top of row 3: id 2 must win
    return x


def capacity_buffers(result: SortingResult, T, K, E, U):
    """Poisoned capacity-sized buffers with the oracle's valid prefix written, plus the pre-kernel copy."""
    rows, blocks = capacity(T, K, E, U)
    before = SortingResult(np.full(rows + 3, CANARY_INT, np.int32),
                           np.full(rows + 3, CANARY_F32_BITS, np.uint32).view(np.float32),
                           np.full(blocks + 2, -CANARY_INT, np.int32),
                           np.full(2, -1, np.int32))
    after = SortingResult(*(a.copy() for a in before))
    P = int(result.num_valid_ids[0])
    after.sorted_token_ids[:P] = result.sorted_token_ids
    after.sorted_weights[:P] = result.sorted_weights
    after.sorted_expert_ids[:P // U] = result.sorted_expert_ids
    after.num_valid_ids[:] = result.num_valid_ids
    return after, before


CK_IDS = np.array([[0, 3, 5], [2, 3, 5], [1, 3, 5], [1, 2, 3], [1, 3, 5]], dtype=np.int32)
CK_W = (np.arange(15, dtype=np.float32).reshape(5, 3) + 1) / 16


@pytest.fixture
def ck():
    """CK example (E=6, K=3, U=4): correct buffers, the pre-kernel copy, and a check function."""
    res = moe_sorting(CK_IDS, CK_W, 6, unit_size=4)
    after, before = capacity_buffers(res, 5, 3, 6, 4)

    def check(buf, **kw):
        return check_sorting(buf, CK_IDS, CK_W, 6, unit_size=4, before=before, **kw)

    return after, before, check


def failed(report, *needles):
    """The report fails and its text names every needle."""
    text = str(report)
    assert not report.ok and not bool(report), text
    for n in needles:
        assert n in text, f"{n!r} not in:\n{text}"
    return text


# ------------------------------------------------------------------ CheckReport


def test_report_basics():
    assert CheckReport().ok and bool(CheckReport()) and str(CheckReport()) == "OK"
    rep = CheckReport(["a", "b"])
    assert not rep and rep.problems == ["a", "b"] and "a" in str(rep) and "b" in str(rep)


# ------------------------------------------------------------------ gating


def test_gating_correct_passes():
    x = logits()
    g = topk_gating_softmax(x, 4)
    rep = check_gating(g.topk_weights, g.topk_ids, x, 4)
    assert rep.ok, str(rep)


def test_gating_wrong_id():
    x = logits()
    w, ids = topk_gating_softmax(x, 4)
    ids = ids.copy()
    ids[7, 2] = (ids[7, 2] + 1) % 10 if (ids[7, 2] + 1) % 10 not in ids[7] else 9 - ids[7, 2]
    want = topk_gating_softmax(x, 4).topk_ids[7, 2]
    failed(check_gating(w, ids, x, 4), f"row 7 slot 2: expected id {want}, found {ids[7, 2]}")


def test_gating_tie_to_higher_index():
    # Row 3 has 9.0 at ids 2 and 7: a kernel preferring the higher index swaps slots 0 and 1.
    x = logits()
    w, ids = topk_gating_softmax(x, 4)
    assert ids[3, :2].tolist() == [2, 7]
    ids = ids.copy()
    ids[3, :2] = [7, 2]
    failed(check_gating(w, ids, x, 4), "row 3 slot 0: expected id 2", "found 7")


def test_gating_weight_off_by_1e3():
    x = logits()
    w, ids = topk_gating_softmax(x, 4)
    w = w.copy()
    w[5, 1] += 1e-3
    failed(check_gating(w, ids, x, 4), "row 5 slot 1", "expected weight")


def test_gating_weight_within_tolerance_passes():
    # One ulp away is inside rtol=1e-5: the check is a tolerance, not bit-exact.
    x = logits()
    w, ids = topk_gating_softmax(x, 4)
    w = np.nextafter(w, np.float32(1))
    assert check_gating(w, ids, x, 4).ok


def test_gating_nan_weight():
    x = logits()
    w, ids = topk_gating_softmax(x, 4)
    w = w.copy()
    w[0, 3] = np.nan
    failed(check_gating(w, ids, x, 4), "row 0 slot 3: weight is NaN")


def test_gating_out_of_range_and_repeated_ids():
    x = logits()
    w, ids = topk_gating_softmax(x, 4)
    ids = ids.copy()
    ids[1, 0] = 40
    ids[2, 3] = ids[2, 0]
    failed(check_gating(w, ids, x, 4), "row 1 slot 0: id 40 out of range", f"row 2: id {ids[2, 0]} repeated")


def test_gating_wrong_shape_and_dtype():
    x = logits()
    w, ids = topk_gating_softmax(x, 4)
    failed(check_gating(w[:, :3], ids[:, :3], x, 4), "expected shape (24, 4)")
    failed(check_gating(w, ids.astype(np.int64), x, 4), "expected dtype int32")


def test_gating_renormalize_flag_matters():
    # Raw probabilities are not the renormalized ones: the flag is honoured.
    x = logits()
    w, ids = topk_gating_softmax(x, 2, renormalize=False)
    assert check_gating(w, ids, x, 2, renormalize=False).ok
    failed(check_gating(w, ids, x, 2, renormalize=True), "expected weight")


def test_gating_accepts_torch_tensors():
    torch = pytest.importorskip("torch")
    x = logits()
    w, ids = topk_gating_softmax(x, 4)
    assert check_gating(torch.from_numpy(w), torch.from_numpy(ids), torch.from_numpy(x), 4).ok


# ------------------------------------------------------------------ sorting


def test_sorting_correct_passes(ck):
    after, _, check = ck
    rep = check(after)
    assert rep.ok, str(rep)


def test_sorting_wrong_num_valid(ck):
    after, _, check = ck
    after.num_valid_ids[0] = 20
    failed(check(after), "num_valid_ids[0] (padded total P): expected 24, found 20",
           "expert 5: expected 4 assignments, found 0")
    after.num_valid_ids[:] = [24, 4]
    failed(check(after), "num_valid_ids[1] (M): expected 5, found 4")


def test_sorting_swapped_order_within_expert(ck):
    # Expert 3 holds tokens 0,1,2,3,4: swapping tokens 0 and 1 breaks (t asc) order.
    after, _, check = ck
    after.sorted_token_ids[[12, 13]] = after.sorted_token_ids[[13, 12]]
    after.sorted_weights[[12, 13]] = after.sorted_weights[[13, 12]]
    failed(check(after), "expert 3, block 0 (sorted_token_ids[12]): expected token 0 slot 1",
           "found token 1 slot 1")


def test_sorting_missing_assignment_replaced_by_sentinel(ck):
    after, _, check = ck
    after.sorted_token_ids[17 - 1] = sentinel(3, 5)  # position 16: expert 3 block 1, token 4 slot 1
    failed(check(after), "expert 3, block 1 (sorted_token_ids[16]): expected token 4 slot 1",
           "found sentinel (K<<24|M)", "token 4 slot 1 (expert 3): expected 1 time(s) in the prefix, found 0")


def test_sorting_wrong_padding_sentinel(ck):
    # A kernel that pads with (K<<24)|T or -1 instead of (K<<24)|M.
    after, _, check = ck
    after.sorted_token_ids[1] = -1
    failed(check(after), "expert 0, block 0 (sorted_token_ids[1]): expected sentinel (K<<24|M) (0x03000005)",
           "found 0xffffffff")


def test_sorting_padding_weight_nonzero(ck):
    after, _, check = ck
    after.sorted_weights[2] = 1.0
    failed(check(after), "sorted_weights[2]: expected 0x00000000 (0.0), found 0x3f800000 (1.0)", "expert 0")
    after.sorted_weights[2] = -0.0  # -0.0 is not the pad value +0.0
    failed(check(after), "sorted_weights[2]", "0x80000000")


def test_sorting_weight_bit_flip(ck):
    after, _, check = ck
    bits = after.sorted_weights.view(np.uint32)
    bits[4] ^= 1
    failed(check(after), "sorted_weights[4]:", "token 2 slot 0")


def test_sorting_weight_nan(ck):
    after, _, check = ck
    after.sorted_weights[0] = np.nan
    failed(check(after), "sorted_weights[0]: expected 0x3d800000 (0.0625), found 0x7fc00000 (nan)")


def test_sorting_wrong_local_expert_id():
    # With the mask [1,0,1,1,0,1] a kernel writing the GLOBAL id (5) instead of the local one (3) fails.
    mask = np.array([1, 0, 1, 1, 0, 1])
    res = moe_sorting(CK_IDS, CK_W, 6, unit_size=4, expert_mask=mask)
    after, before = capacity_buffers(res, 5, 3, 6, 4)
    assert check_sorting(after, CK_IDS, CK_W, 6, unit_size=4, expert_mask=mask, before=before).ok
    after.sorted_expert_ids[4] = 5
    failed(check_sorting(after, CK_IDS, CK_W, 6, unit_size=4, expert_mask=mask, before=before),
           "sorted_expert_ids[4] (expert 5, block 0): expected local id 3, found 5")


def test_sorting_canary_overwritten(ck):
    after, before, check = ck
    after.sorted_token_ids[30] = 3
    after.sorted_weights[24] = 0.0
    after.sorted_expert_ids[6] = 5
    failed(check(after), "sorted_token_ids[30] past the valid prefix was overwritten: before 0x5a5a5a5a, "
           "after 0x00000003", "sorted_weights[24] past the valid prefix was overwritten: before 0x7fc0dead",
           "sorted_expert_ids[6] past the valid prefix")


def test_sorting_unwritten_prefix_is_caught(ck):
    # A kernel that never wrote an element leaves the poison: the prefix check sees it.
    after, before, check = ck
    after.sorted_token_ids[5] = before.sorted_token_ids[5]
    failed(check(after), "sorted_token_ids[5]", "0x5a5a5a5a (neither an assignment nor the sentinel)")


def test_sorting_buffer_below_capacity(ck):
    after, _, check = ck
    short = SortingResult(after.sorted_token_ids[:24], after.sorted_weights, after.sorted_expert_ids,
                          after.num_valid_ids)
    failed(check_sorting(short, CK_IDS, CK_W, 6, unit_size=4), "sorted_token_ids: length 24 is below the capacity 33")


def test_sorting_dropped_assignment_present():
    # An out-of-range id (-1) sorted in as if it were expert 0 is reported as dropped-but-present.
    ids = np.array([[0, -1], [0, 1]], np.int32)
    w = np.ones((2, 2), np.float32)
    bad_ids = np.array([[0, 0], [0, 1]], np.int32)
    bad = moe_sorting(bad_ids, w, 2, unit_size=4)
    after, _ = capacity_buffers(bad, 2, 2, 2, 4)
    failed(check_sorting(after, ids, w, 2, unit_size=4),
           "token 0 slot 1 (expert -1 (dropped: id out of range or masked)): expected 0 time(s) in the prefix, found 1")


def test_sorting_garbage_does_not_crash(ck):
    # Huge num_valid, negative ids and random bits: a report, never an exception.
    after, _, check = ck
    rng = np.random.default_rng(0)
    after.sorted_token_ids[:] = rng.integers(-2**31, 2**31, after.sorted_token_ids.size, dtype=np.int64)
    after.sorted_expert_ids[:] = -5
    after.num_valid_ids[:] = [2**31 - 1, -3]
    text = failed(check(after), "num_valid_ids[0]", "num_valid_ids[1]", "expected local id")
    assert len(text.splitlines()) < 10 * MAX_PER_KIND


def test_sorting_report_is_capped():
    # A big failure lists MAX_PER_KIND lines per kind plus a count.
    rng = np.random.default_rng(1)
    x = rng.standard_normal((256, 8), dtype=np.float32)
    g = topk_gating_softmax(x, 2)
    res = moe_sorting(g.topk_ids, g.topk_weights, 8, unit_size=4)
    after, _ = capacity_buffers(res, 256, 2, 8, 4)
    after.sorted_weights[:] = 0.5
    rep = check_sorting(after, g.topk_ids, g.topk_weights, 8, unit_size=4)
    failed(rep, "more sorted_weights differences (of")
    assert len(rep.problems) == MAX_PER_KIND + 1


def test_sorting_accepts_torch_buffers(ck):
    torch = pytest.importorskip("torch")
    after, before, _ = ck
    t_after = SortingResult(*(torch.from_numpy(a) for a in after))
    assert check_sorting(t_after, torch.from_numpy(CK_IDS), torch.from_numpy(CK_W), 6, unit_size=4,
                         before=before).ok


# ------------------------------------------------------------------ route


def route_buffers(x, K, U, **kw):
    T, E = x.shape
    res = route(x, K, unit_size=U, **kw)
    after, before = capacity_buffers(SortingResult(*res[2:]), T, K, E, U)
    return RouteResult(res.topk_weights.copy(), res.topk_ids.copy(), *after), before


def test_route_correct_passes():
    x = logits()
    actual, before = route_buffers(x, 3, 4, num_local_tokens=20)
    rep = check_route(actual, x, 3, unit_size=4, num_local_tokens=20, before=before)
    assert rep.ok, str(rep)


def test_route_sorting_checked_against_actual_gating():
    # Gating weights one ulp off (within tolerance) but sorting copying the ORACLE weights: the
    # sorting must be bit-exact relative to the implementation's own gating output.
    x = logits()
    actual, before = route_buffers(x, 3, 4)
    nudged = np.nextafter(actual.topk_weights, np.float32(1))
    bad = actual._replace(topk_weights=nudged)
    failed(check_route(bad, x, 3, unit_size=4, before=before), "sorting: sorted_weights[")
    # Sorting the nudged weights consistently passes.
    res = moe_sorting(actual.topk_ids, nudged, 10, unit_size=4)
    good, _ = capacity_buffers(res, 24, 3, 10, 4)
    assert check_route(RouteResult(nudged, actual.topk_ids, *good), x, 3, unit_size=4).ok


def test_route_gating_problem_is_prefixed():
    x = logits()
    actual, _ = route_buffers(x, 3, 4)
    actual.topk_ids[3, :2] = [7, 2]  # tie to the higher index
    failed(check_route(actual, x, 3, unit_size=4), "gating: row 3 slot 0: expected id 2")


def test_route_accepts_plain_tuple():
    x = logits()
    actual, _ = route_buffers(x, 3, 4)
    assert check_route(tuple(actual), x, 3, unit_size=4).ok


# ------------------------------------------------------------------ moe_buf


def moe_buf_pair(shape, dtype, M):
    before = np.frombuffer(np.random.default_rng(2).bytes(int(np.prod(shape)) * np.dtype(dtype).itemsize),
                           dtype=dtype).reshape(shape).copy()
    after = before.copy()
    after[:M] = 0
    return before, after


@pytest.mark.parametrize("shape,dtype", [((9, 7), np.float16), ((9, 3, 5), np.float32), ((9, 1), np.uint8)],
                         ids=["fp16-odd-row", "fp32-3d", "u8-1byte"])
def test_moe_buf_correct_passes(shape, dtype):
    before, after = moe_buf_pair(shape, dtype, 5)
    assert check_moe_buf(before, after, 5).ok


def test_moe_buf_row_not_zeroed():
    before, after = moe_buf_pair((9, 7), np.float16, 5)
    after.view(np.uint8).reshape(9, -1)[4, 13] = 0x80  # last byte of row 4: -0.0 is not zero bytes
    failed(check_moe_buf(before, after, 5), "moe_buf row 4 (< M=5) not zeroed: 1 of 14 bytes nonzero, first at byte 13")


def test_moe_buf_row_past_m_touched():
    before, after = moe_buf_pair((9, 7), np.float16, 5)
    after[5] = 0
    failed(check_moe_buf(before, after, 5), "moe_buf row 5 (>= M=5) was touched")


def test_moe_buf_m_zero_and_full():
    before, after = moe_buf_pair((4, 2), np.float32, 0)
    assert check_moe_buf(before, after, 0).ok
    failed(check_moe_buf(before, after, 4), "row 0 (< M=4) not zeroed")


def test_moe_buf_accepts_torch_bfloat16():
    torch = pytest.importorskip("torch")
    before = torch.randn(6, 5, dtype=torch.bfloat16)
    after = before.clone()
    after[:3] = 0
    assert check_moe_buf(before, after, 3).ok
    after[3, 1] = 7.0
    failed(check_moe_buf(before, after, 3), "moe_buf row 3 (>= M=3) was touched")
