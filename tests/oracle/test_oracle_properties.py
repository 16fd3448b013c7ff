"""Property tests (Hypothesis) for the oracles and their checkers."""
import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from oracles import (SortingResult, capacity, check_gating, check_sorting, moe_sorting, route, sentinel,
                     topk_gating_softmax)

F32_ANY = st.floats(width=32, allow_nan=True, allow_infinity=True)
F32_SPECIAL = st.sampled_from([np.nan, np.inf, -np.inf, 0.0, -0.0, 3e38, -3e38, 1.0])


@st.composite
def gating_inputs(draw):
    """(logits float32 [T, E], K): values drawn from all floats or from a few specials (forcing ties)."""
    T = draw(st.integers(0, 6))
    E = draw(st.integers(1, 12))
    K = draw(st.integers(1, E))
    elems = draw(st.sampled_from([F32_ANY, F32_SPECIAL]))
    x = draw(hnp.arrays(np.float32, (T, E), elements=elems))
    return x, K


def rank_key(v):
    """Spec order key: larger first, NaN as -inf, -0.0 == 0.0 (Python floats compare that way)."""
    v = float(v)
    return -(-math.inf if math.isnan(v) else v)


@given(gating_inputs(), st.booleans())
@settings(deadline=None, max_examples=200)
def test_gating_ids_follow_the_tie_rule(inp, renormalize):
    x, K = inp
    res = topk_gating_softmax(x, K, renormalize=renormalize)
    T, E = x.shape
    for t in range(T):
        want = sorted(range(E), key=lambda e: (rank_key(x[t, e]), e))[:K]
        assert res.topk_ids[t].tolist() == want


@given(gating_inputs(), st.booleans())
@settings(deadline=None, max_examples=200)
def test_gating_invariants_for_any_float32(inp, renormalize):
    x, K = inp
    w, ids = topk_gating_softmax(x, K, renormalize=renormalize)
    E = x.shape[1]
    assert ids.dtype == np.int32 and w.dtype == np.float32
    assert ((ids >= 0) & (ids < E)).all()
    assert all(len(set(r)) == K for r in ids.tolist())
    assert not np.isnan(w).any() and (w >= 0).all() and (w <= 1).all()
    if renormalize and w.size:
        np.testing.assert_allclose(w.astype(np.float64).sum(axis=1), 1.0, rtol=1e-5)
    assert (np.diff(w.astype(np.float64), axis=1) <= 0).all()  # larger logit, larger weight
    assert check_gating(w, ids, x, K, renormalize=renormalize).ok


def brute_force_sorting(ids, w, E, U, mask, M):
    """Loop-by-loop reference, written independently of the vectorized oracle."""
    K = ids.shape[1]
    S = (K << 24) | M
    tok, wb, blocks = [], [], []
    local = 0
    for e in range(E):
        kept = mask is None or bool(mask[e])
        rows = [(t, j) for t in range(M) for j in range(K) if ids[t, j] == e] if kept else []
        if rows:
            n = -(-len(rows) // U) * U
            tok += [(j << 24) | t for t, j in rows] + [S] * (n - len(rows))
            wb += [int(w[t, j].view(np.uint32)) for t, j in rows] + [0] * (n - len(rows))
            blocks += [local if mask is not None else e] * (n // U)
        local += kept
    return tok, wb, blocks, [len(tok), M]


@st.composite
def sorting_inputs(draw):
    """(topk_ids with out-of-range and duplicate values, float32 weights incl. NaN bits, E, U, mask, M)."""
    T = draw(st.integers(0, 9))
    K = draw(st.integers(1, 4))
    E = draw(st.integers(1, 9))
    ids = draw(hnp.arrays(np.int32, (T, K), elements=st.integers(-2, E + 1)))
    bits = draw(hnp.arrays(np.uint32, (T, K), elements=st.integers(0, 2**32 - 1)))
    U = draw(st.sampled_from([1, 2, 3, 4, 16]))
    mask = draw(st.none() | hnp.arrays(np.bool_, (E,)))
    M = draw(st.none() | st.integers(0, T))
    return ids, bits.view(np.float32), E, U, mask, M


@given(sorting_inputs())
@settings(deadline=None, max_examples=300)
def test_sorting_matches_brute_force(inp):
    ids, w, E, U, mask, M = inp
    res = moe_sorting(ids, w, E, unit_size=U, expert_mask=mask, num_local_tokens=M)
    tok, wb, blocks, nv = brute_force_sorting(ids, w, E, U, mask, ids.shape[0] if M is None else M)
    assert res.sorted_token_ids.tolist() == tok
    assert res.sorted_weights.view(np.uint32).tolist() == wb
    assert res.sorted_expert_ids.tolist() == blocks
    assert res.num_valid_ids.tolist() == nv


@given(sorting_inputs())
@settings(deadline=None, max_examples=300)
def test_sorting_invariants(inp):
    ids, w, E, U, mask, M = inp
    T, K = ids.shape
    M = T if M is None else M
    res = moe_sorting(ids, w, E, unit_size=U, expert_mask=mask, num_local_tokens=M)
    P = int(res.num_valid_ids[0])
    S = sentinel(K, M)
    keep = (ids[:M] >= 0) & (ids[:M] < E)
    if mask is not None:
        keep &= mask[np.clip(ids[:M], 0, E - 1)]
    # Every kept assignment exactly once, nothing else but sentinels.
    real = res.sorted_token_ids[res.sorted_token_ids != S].astype(np.int64)
    got = sorted(zip((real & 0xFFFFFF).tolist(), (real >> 24).tolist()))
    assert got == sorted(map(tuple, np.argwhere(keep).tolist()))
    # Segments: multiples of U, capacity respected, counts per expert, order inside each expert.
    assert P % U == 0 and res.sorted_expert_ids.size == P // U
    assert P <= capacity(T, K, E, U)[0]
    blocks = res.sorted_token_ids.reshape(-1, U) if P else np.zeros((0, U), np.int32)
    local_of = np.arange(E) if mask is None else np.cumsum(mask) - mask
    assert (np.diff(res.sorted_expert_ids) >= 0).all()
    for b, block in enumerate(blocks):
        asg = block[block != S].astype(np.int64)
        assert asg.size > 0  # padding is < U per expert, so no block is all sentinels
        experts = ids[asg & 0xFFFFFF, asg >> 24]
        assert (local_of[experts] == res.sorted_expert_ids[b]).all()
    for e in range(E):
        c = int((keep & (ids[:M] == e)).sum())
        pos = [p for p, v in enumerate(res.sorted_token_ids.tolist())
               if v != S and ids[v & 0xFFFFFF, v >> 24] == e]
        assert len(pos) == c
        keys = [(res.sorted_token_ids[p] & 0xFFFFFF, res.sorted_token_ids[p] >> 24) for p in pos]
        assert keys == sorted(keys) and pos == list(range(pos[0], pos[0] + c)) if c else True
    assert (res.sorted_weights[res.sorted_token_ids == S].view(np.uint32) == 0).all()


@given(sorting_inputs())
@settings(deadline=None, max_examples=150)
def test_check_sorting_accepts_the_oracle_in_capacity_buffers(inp):
    ids, w, E, U, mask, M = inp
    T, K = ids.shape
    res = moe_sorting(ids, w, E, unit_size=U, expert_mask=mask, num_local_tokens=M)
    rows, blocks = capacity(T, K, E, U)
    P = int(res.num_valid_ids[0])
    buf = SortingResult(np.full(rows, -7, np.int32), np.full(rows, np.nan, np.float32),
                        np.full(blocks, -7, np.int32), res.num_valid_ids.copy())
    before = SortingResult(*(a.copy() for a in buf))
    buf.sorted_token_ids[:P] = res.sorted_token_ids
    buf.sorted_weights[:P] = res.sorted_weights
    buf.sorted_expert_ids[:P // U] = res.sorted_expert_ids
    rep = check_sorting(buf, ids, w, E, unit_size=U, expert_mask=mask, num_local_tokens=M, before=before)
    assert rep.ok, str(rep)
    if P:  # and one flipped bit anywhere in the prefix is caught
        buf.sorted_weights.view(np.uint32)[P - 1] ^= 0x10
        assert not check_sorting(buf, ids, w, E, unit_size=U, expert_mask=mask, num_local_tokens=M).ok


@given(gating_inputs(), st.sampled_from([1, 2, 5, 32]))
@settings(deadline=None, max_examples=100)
def test_route_is_batch_invariant(inp, U):
    x, K = inp
    full = route(x, K, unit_size=U)
    for t in range(x.shape[0]):
        one = route(x[t:t + 1], K, unit_size=U)
        assert np.array_equal(one.topk_ids[0], full.topk_ids[t])
        assert np.array_equal(one.topk_weights[0].view(np.uint32), full.topk_weights[t].view(np.uint32))
