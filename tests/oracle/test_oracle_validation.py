"""Invalid arguments raise ValueError / TypeError naming the argument (never assert)."""
import numpy as np
import pytest

from oracles import capacity, check_moe_buf, moe_sorting, route, sentinel, topk_gating_softmax

X = np.zeros((3, 4), np.float32)
IDS = np.zeros((3, 2), np.int32)
W = np.zeros((3, 2), np.float32)


@pytest.mark.parametrize("call,exc,match", [
    (lambda: topk_gating_softmax(X, 0), ValueError, r"topk.*1 <= topk <= E=4"),
    (lambda: topk_gating_softmax(X, 5), ValueError, r"topk.*E=4"),
    (lambda: topk_gating_softmax(X, 2.0), TypeError, "topk"),
    (lambda: topk_gating_softmax(X, True), TypeError, "topk"),
    (lambda: topk_gating_softmax(X[0], 1), ValueError, r"logits must be 2-D"),
    (lambda: topk_gating_softmax(np.zeros((3, 0), np.float32), 1), ValueError, r"logits.*E >= 1"),
    (lambda: topk_gating_softmax(X.astype(np.float64), 1), TypeError, "logits must be float32"),
    (lambda: topk_gating_softmax(X.astype(np.int32), 1), TypeError, "logits"),
    (lambda: moe_sorting(IDS, W, 0), ValueError, r"num_experts must be >= 1"),
    (lambda: moe_sorting(IDS, W, 4, unit_size=0), ValueError, r"unit_size must be >= 1"),
    (lambda: moe_sorting(IDS, W, 4, num_local_tokens=4), ValueError, r"num_local_tokens.*<= T=3"),
    (lambda: moe_sorting(IDS, W, 4, num_local_tokens=-1), ValueError, r"num_local_tokens"),
    (lambda: moe_sorting(IDS, W, 4, num_local_tokens=np.array([1, 2])), ValueError, r"num_local_tokens"),
    (lambda: moe_sorting(IDS, W, 4, num_local_tokens=1.0), TypeError, r"num_local_tokens"),
    (lambda: moe_sorting(IDS, W, 4, expert_mask=np.ones(3)), TypeError, r"expert_mask"),
    (lambda: moe_sorting(IDS, W, 4, expert_mask=np.ones(3, bool)), ValueError, r"expert_mask.*\(4,\)"),
    (lambda: moe_sorting(IDS.astype(np.float32), W, 4), TypeError, r"topk_ids"),
    (lambda: moe_sorting(IDS, W.astype(np.float64), 4), TypeError, r"topk_weights.*float32"),
    (lambda: moe_sorting(IDS, W[:, :1], 4), ValueError, r"topk_weights.*shape"),
    (lambda: moe_sorting(IDS[0], W[0], 4), ValueError, r"topk_ids must be 2-D"),
    (lambda: moe_sorting(np.zeros((1, 128), np.int32), np.zeros((1, 128), np.float32), 200), ValueError,
     r"K <= 127"),
    (lambda: moe_sorting(np.zeros((3, 0), np.int32), np.zeros((3, 0), np.float32), 4), ValueError, r"K"),
    (lambda: moe_sorting(IDS, W, "4"), TypeError, r"num_experts"),
    (lambda: moe_sorting(IDS, W, True), TypeError, r"num_experts"),
    (lambda: moe_sorting(IDS, W, 4, unit_size=np.bool_(True)), TypeError, r"unit_size"),
    (lambda: topk_gating_softmax(X, 2, renormalize="no"), TypeError, r"renormalize must be a bool"),
    (lambda: topk_gating_softmax(X, 2, renormalize=1), TypeError, r"renormalize must be a bool"),
    (lambda: topk_gating_softmax(X, 2, renormalize=None), TypeError, r"renormalize must be a bool"),
    (lambda: route(X, 2, renormalize="no"), TypeError, r"renormalize must be a bool"),
    (lambda: route(X, 5), ValueError, r"topk"),
    (lambda: route(X, 2, unit_size=-3), ValueError, r"unit_size"),
    (lambda: route(X, 2, num_local_tokens=9), ValueError, r"num_local_tokens"),
    (lambda: capacity(4, 2, 8, 0), ValueError, r"unit_size"),
    (lambda: capacity(-1, 2, 8, 4), ValueError, r"T, K, E"),
    (lambda: check_moe_buf(np.zeros((3, 2)), np.zeros((3, 2)), 4), ValueError, r"num_local_tokens"),
], ids=lambda v: None if callable(v) or isinstance(v, type) else str(v)[:30])
def test_invalid_arguments(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


def test_token_limit():
    # T >= 2**24 cannot be packed into (j << 24) | t. A broadcast view avoids allocating 2**24 rows.
    ids = np.broadcast_to(np.zeros((1, 1), np.int32), (2**24, 1))
    w = np.broadcast_to(np.zeros((1, 1), np.float32), (2**24, 1))
    with pytest.raises(ValueError, match=r"T < 2\*\*24"):
        moe_sorting(ids, w, 1)


def test_sentinel_value():
    assert sentinel(8, 4096) == (8 << 24) | 4096
    assert sentinel(127, 2**24 - 1) == 0x7FFFFFFF  # the largest still fits in int32


def test_numpy_integer_and_bool_arguments():
    # NumPy integers stand for ints and NumPy bools for bools: the same results as Python's.
    x = np.random.default_rng(0).standard_normal((5, 6), dtype=np.float32)
    ref = route(x, 2, unit_size=4, renormalize=False, num_local_tokens=3)
    got = route(x, np.int64(2), unit_size=np.int32(4), renormalize=np.False_, num_local_tokens=np.int16(3))
    for a, b in zip(ref, got):
        assert a.dtype == b.dtype and np.array_equal(a.view(np.uint8), b.view(np.uint8))
    s = moe_sorting(ref.topk_ids, ref.topk_weights, np.uint8(6), unit_size=np.int64(4), num_local_tokens=np.int64(3))
    assert all(np.array_equal(a, b) for a, b in zip(s, ref[2:]))
