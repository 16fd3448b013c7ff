"""topk_gating_softmax against the float64 oracle (SPEC section 1)."""
import numpy as np
import pytest
import torch

import fused_moe
import oracles

from .harness import fresh_seed, random_logits, upcast

DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}

# (T, E, K): seed shapes, then edges of E (not only powers of two) and of K.
SHAPES = [
    (16, 256, 8),  # DeepSeek-R1 decode
    (16, 128, 4),  # GPT-OSS-120B decode
    (1, 1, 1),  # smallest
    (5, 3, 3),  # K == E, E not a power of two
    (7, 60, 6),  # Qwen-like E
    (3, 160, 6),  # E = 160
    (17, 257, 8),  # 2**8 + 1: one column past a power of two, T one past a tile
    (2, 384, 8),
    (3, 1024, 8),
    (2, 2048, 127),  # widest E and the largest sortable K
]


def _check(logits, K, renormalize=True, seed=None):
    out = fused_moe.topk_gating_softmax(logits, K, renormalize=renormalize)
    report = oracles.check_gating(out.topk_weights.cpu(), out.topk_ids.cpu(), upcast(logits), K,
                                  renormalize=renormalize)
    assert report.ok, f"seed={seed}\n{report}"
    return out


@pytest.mark.parametrize("dtype", DTYPES.values(), ids=DTYPES.keys())
@pytest.mark.parametrize("T,E,K", SHAPES, ids=[f"T{t}-E{e}-K{k}" for t, e, k in SHAPES])
def test_matches_oracle(T, E, K, dtype, device):
    seed = fresh_seed()
    _check(random_logits(np.random.default_rng(seed), T, E, dtype, device), K, seed=seed)


@pytest.mark.parametrize("renormalize", [True, False], ids=["renorm", "plain"])
def test_strided_rows_and_no_renormalize(renormalize, device):
    seed = fresh_seed()
    logits = random_logits(np.random.default_rng(seed), 19, 64, torch.bfloat16, device, stride_pad=5)
    assert not logits.is_contiguous()
    _check(logits, 5, renormalize, seed)


def test_special_values(device):
    inf, nan = float("inf"), float("nan")
    rows = [
        [nan] * 6,  # all NaN: uniform, ids 0..K-1
        [-inf] * 6,  # all -inf: uniform
        [1.0, inf, 0.0, inf, nan, -inf],  # two +inf share the mass
        [-0.0, 0.0, -0.0, 0.0, -1.0, -2.0],  # -0.0 ties with +0.0: lower index first
        [3e38, -3e38, 0.0, 1.0, 2.0, 3e38],  # huge range, no overflow to NaN
        [0.0, -200.0, -200.0, -300.0, nan, -inf],  # softmax underflow
        [2.0, 2.0, 2.0, 2.0, 2.0, 2.0],  # all equal
    ]
    logits = torch.tensor(rows, dtype=torch.float32, device=device)
    for renormalize in (True, False):
        out = _check(logits, 3, renormalize)
        assert torch.isfinite(out.topk_weights).all()
    assert out.topk_ids[0].tolist() == [0, 1, 2] and out.topk_ids[3].tolist() == [0, 1, 2]
    assert out.topk_ids[2, :2].tolist() == [1, 3] and out.topk_weights[2, :2].tolist() == [0.5, 0.5]


def test_one_ulp_neighbours_rank_by_value(device):
    """float32 logits one ulp apart rank by value: the ordered key flips every bit below the
    sign for negatives and none for positives (a key off by its last bit swaps these)."""
    up, down = np.nextafter(np.float32(2.5), np.float32(np.inf)), np.nextafter(np.float32(-1.0), np.float32(-np.inf))
    rows = [[2.5, up, 0.0, -1.0], [-1.0, down, -3.0, -4.0]]
    out = _check(torch.tensor(rows, dtype=torch.float32, device=device), 1)
    assert out.topk_ids[:, 0].tolist() == [1, 0]


def test_column_strided_logits(device):
    """Logits whose experts are not contiguous (a transposed view): each read at its stride."""
    seed = fresh_seed()
    logits = random_logits(np.random.default_rng(seed), 8, 4, torch.bfloat16, device).t()
    _check(logits, 2, seed=seed)


def test_more_experts_than_a_16_bit_column_index(device):
    """E > 65536: 16-bit logits then select on 32-bit keys (a 16-bit key leaves 16 bits for
    the column, too few to name E columns)."""
    logits = torch.zeros((1, 65537), dtype=torch.bfloat16, device=device)
    logits[0, 0], logits[0, 70], logits[0, 65536] = 1.0, 0.5, 0.25
    out = _check(logits, 2)
    assert out.topk_ids[0].tolist() == [0, 70]


def test_empty_batch(device):
    out = fused_moe.topk_gating_softmax(torch.zeros((0, 8), device=device), 2)
    assert out.topk_ids.shape == (0, 2) and out.topk_weights.shape == (0, 2)


def test_batch_invariance(device):
    """A row routes identically whatever batch it lands in and whatever its offset."""
    seed = fresh_seed()
    rng = np.random.default_rng(seed)
    big = random_logits(rng, 40, 256, torch.bfloat16, device)
    full = fused_moe.topk_gating_softmax(big, 8)
    for lo, hi in [(0, 1), (3, 4), (5, 21), (17, 40)]:
        part = fused_moe.topk_gating_softmax(big[lo:hi], 8)
        assert torch.equal(part.topk_ids, full.topk_ids[lo:hi]), f"seed={seed} rows {lo}:{hi}"
        assert torch.equal(part.topk_weights.view(torch.int32), full.topk_weights[lo:hi].view(torch.int32)), \
            f"seed={seed} rows {lo}:{hi}"


@pytest.mark.parametrize("bad,error,match", [
    (dict(topk=0), ValueError, "topk"),
    (dict(topk=9), ValueError, "topk"),
    (dict(topk=2.0), TypeError, "topk"),
    (dict(logits="x"), TypeError, "logits"),
    (dict(logits=torch.zeros(4, 8, dtype=torch.int32)), TypeError, "logits"),
    (dict(logits=torch.zeros(4)), ValueError, "logits"),
    (dict(logits=torch.zeros(4, 0)), ValueError, "num_experts"),
    (dict(topk=True), TypeError, "topk must be an int, got bool"),
    (dict(renormalize="no"), TypeError, "renormalize must be a bool"),
    (dict(renormalize=1), TypeError, "renormalize must be a bool"),
], ids=["k0", "k-gt-e", "k-float", "not-tensor", "int-logits", "1d", "e0", "k-bool", "renorm-str", "renorm-int"])
def test_rejects_bad_arguments(bad, error, match, device):
    kwargs = dict(logits=torch.zeros(4, 8, device=device), topk=2) | bad
    if isinstance(kwargs["logits"], torch.Tensor):
        kwargs["logits"] = kwargs["logits"].to(device)
    with pytest.raises(error, match=match):
        fused_moe.topk_gating_softmax(kwargs.pop("logits"), kwargs.pop("topk"), **kwargs)
