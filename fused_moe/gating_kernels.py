"""Triton code for top-k gating softmax (SPEC section 1). Only ``@triton.jit`` code.

Pipeline (one program per tile of BLOCK_T rows, independent of T and of the
other rows, which is what makes routing batch invariant):

    logits[T, E] --load, upcast--> x (float32; NaN -> -inf, -0.0 -> +0.0)
    x --order-preserving int key, packed with the inverted column--> packed
    K x (row max of packed; the winner becomes TAKEN + slot) --> topk_ids
    selected keys --involution--> selected logits (slot 0 is the row max)
    exp(x - rowmax) --fixed-point row sum--> topk_weights = p_k / sum(p_k) or p_k / sum(p)

| name    | shape              | dtype   | meaning                                   | pad value          |
|---------|--------------------|---------|-------------------------------------------|--------------------|
| x       | [BLOCK_T, BLOCK_E] | float32 | logits, NaN as -inf                       | -inf (cols >= E)   |
| packed  | [BLOCK_T, BLOCK_E] | int32 for 16-bit logits, else int64 | (ordered key << 16 or 32) | (BLOCK_E-1-col) | pad key (cols >= E); taken: TAKEN + slot |
| b_id    | [BLOCK_T, BLOCK_K] | int32   | selected experts, slot order              | 0                  |
| b_key   | [BLOCK_T, BLOCK_K] | int32   | their ordered keys                        | 0                  |
| b_w     | [BLOCK_T, BLOCK_K] | float32 | topk weights                              | 0.0 (slots >= K)   |

Why a fixed-point sum: a float tree reduction's order follows the register
layout, which Triton picks per shape, alignment and num_warps. Summing exact
int64 multiples of 2**-40 is order independent, so a row's weights are
bit-identical on every path, tile size and batch.
"""
import triton
import triton.language as tl

from .geometry import kernel
from .sorting_kernels import local_token_count, popcount16, zero_moe_buf

_FIXED_ONE = tl.constexpr(1099511627776.0)  # 2**40: b_e <= 1, so E <= 2**20 terms never overflow int64
# Packed keys: (ordered key << KEY_SHIFT) | (BLOCK_E - 1 - column). 16-bit logits need only a
# 16-bit key, so their tile packs into int32: half the width of every selection reduction.
# A selected column becomes TAKEN + slot: a key below every real one (-inf's is -2139095041
# in 32 bits, -32641 in 16) and above the padding columns' key, so it is never picked again.
_PAD_KEY32 = tl.constexpr(-2147483648)
_TAKEN_KEY32 = tl.constexpr(-2147483647)
_TAKEN32 = tl.constexpr(-2147483647 << 32)
_PAD_KEY16 = tl.constexpr(-32768)
_TAKEN_KEY16 = tl.constexpr(-32767)
_TAKEN16 = tl.constexpr(-32767 << 16)


@triton.jit
def _ordered_key(x):
    """float32 -> int32 whose signed order is the float order (x has no NaN, no -0.0)."""
    bits = x.to(tl.int32, bitcast=True)
    return bits ^ ((bits >> 31) & 0x7FFFFFFF)


@triton.jit
def _ordered_key16(x, DTYPE: tl.constexpr):
    """float32 holding DTYPE (16-bit) values -> int32 in int16 range, in the float order."""
    bits = x.to(DTYPE).to(tl.int16, bitcast=True).to(tl.int32)  # exact: x came from DTYPE
    return bits ^ ((bits >> 15) & 0x7FFF)


@triton.jit
def _unnormalised(x, x_max):
    """exp(x - row max) with the limit semantics of SPEC section 1 (x_max is per row)."""
    row_finite = ((x_max > float("-inf")) & (x_max < float("inf")))[:, None]
    shift = tl.where(row_finite, x_max[:, None], 0.0)
    p = tl.exp(tl.where(row_finite, x - shift, float("-inf")))
    p = tl.where((x_max == float("inf"))[:, None], tl.where(x == float("inf"), 1.0, 0.0), p)
    return tl.where((x_max == float("-inf"))[:, None], 1.0, p)


@triton.jit
def _fixed_point_sum(p):
    """Row sums of p in [0, 1] as exact int64 multiples of 2**-40: order independent."""
    return tl.sum((p * _FIXED_ONE).to(tl.int64), axis=1).to(tl.float32) * (1.0 / _FIXED_ONE)


@triton.jit
def taken_slots(packed):
    """-> (selected, slot) per column of a ``select_topk`` tile."""
    if packed.dtype == tl.int64:
        taken, slot = (packed >> 32) == _TAKEN_KEY32, (packed & 0xFFFFFFFF).to(tl.int32)
    else:
        taken, slot = (packed >> 16) == _TAKEN_KEY16, packed & 0xFFFF
    return taken, slot


@triton.jit
def _selected_logits(b_key, DTYPE: tl.constexpr, KEY16: tl.constexpr):
    """The ordered keys back to the logits they came from (the key is an involution of the bits)."""
    if KEY16:
        x = _ordered_key16_bits(b_key).to(tl.int16).to(DTYPE, bitcast=True).to(tl.float32)
    else:
        x = _ordered_key(b_key).to(tl.float32, bitcast=True)
    return x


@triton.jit
def _ordered_key16_bits(key):
    """Inverse of _ordered_key16 (the same involution on the 16 bits)."""
    return key ^ ((key >> 15) & 0x7FFF)


@triton.jit
def select_topk(
    logits_ptr,  # (T, E) float32/float16/bfloat16, any strides: input
    stride_t, stride_e, row0, T, E,
    K: tl.constexpr, BLOCK_T: tl.constexpr, BLOCK_E: tl.constexpr, BLOCK_K: tl.constexpr,
    RENORMALIZE: tl.constexpr,
):
    """Gate rows [row0, row0 + BLOCK_T) (rows >= T masked off), in registers.
    -> (i_t, x, x_max, denom, packed, b_id, b_w); in ``packed`` every selected column holds
    TAKEN + its slot (see ``taken_slots``), so callers can route straight from the tile."""
    i_t = row0 + tl.arange(0, BLOCK_T)
    i_e = tl.arange(0, BLOCK_E)
    i_k = tl.arange(0, BLOCK_K)[None, :]
    m_e = i_e < E

    p_x = logits_ptr + i_t[:, None].to(tl.int64) * stride_t + i_e[None, :].to(tl.int64) * stride_e
    raw = tl.load(p_x, mask=(i_t < T)[:, None] & m_e[None, :], other=float("-inf"))
    x = raw.to(tl.float32)
    x = tl.where(x != x, float("-inf"), x)  # NaN ranks as -inf
    x = tl.where(x == 0.0, 0.0, x)  # -0.0 ties with +0.0

    # Selection: one max per slot; the low bits make ties go to the lower column and every
    # packed value of a row distinct.
    KEY16: tl.constexpr = raw.dtype.primitive_bitwidth == 16 and BLOCK_E <= 65536
    low = (BLOCK_E - 1 - i_e)[None, :]
    if KEY16:
        packed = (tl.where(m_e[None, :], _ordered_key16(x, raw.dtype), _PAD_KEY16) << 16) | low
        taken = tl.full([BLOCK_T, 1], _TAKEN16, tl.int32)
    else:
        packed = (tl.where(m_e[None, :], _ordered_key(x), _PAD_KEY32).to(tl.int64) << 32) | low.to(tl.int64)
        taken = tl.full([BLOCK_T, 1], _TAKEN32, tl.int64)  # a tensor: TAKEN + k must not fold to int32
    b_id = tl.zeros([BLOCK_T, BLOCK_K], dtype=tl.int32)
    b_key = tl.zeros([BLOCK_T, BLOCK_K], dtype=tl.int32)
    for k in range(K):
        best = tl.max(packed, axis=1)
        if KEY16:
            col, key = (BLOCK_E - 1) - (best & 0xFFFF), best >> 16
        else:
            col, key = (BLOCK_E - 1) - (best & 0xFFFFFFFF).to(tl.int32), (best >> 32).to(tl.int32)
        packed = tl.where(i_e[None, :] == col[:, None], taken + k, packed)
        b_id = tl.where(i_k == k, col[:, None], b_id)
        b_key = tl.where(i_k == k, key[:, None], b_key)

    # The selected logits come back exactly from their keys, and slot 0 holds the row max.
    m_k = i_k < K
    x_sel = tl.where(m_k, _selected_logits(b_key, raw.dtype, KEY16), float("-inf"))
    x_max = tl.max(x_sel, axis=1)
    p_sel = tl.where(m_k, _unnormalised(x_sel, x_max), 0.0)
    if RENORMALIZE:
        denom = _fixed_point_sum(p_sel)
    else:
        denom = _fixed_point_sum(tl.where(m_e[None, :], _unnormalised(x, x_max), 0.0))
    return i_t, x, x_max, denom, packed, b_id, p_sel / denom[:, None]


@triton.jit
def tile_weights(x, x_max, denom):
    """Every column's weight as ``select_topk`` computes the selected ones: the same
    elementwise operations on the same values, so selected columns match b_w bit for bit."""
    return _unnormalised(x, x_max) / denom[:, None]


@triton.jit
def store_topk(weights_ptr, ids_ptr, i_t, b_id, b_w, T, K: tl.constexpr, BLOCK_K: tl.constexpr):
    """topk_weights / topk_ids rows i_t (contiguous (T, K)); rows >= T and slots >= K masked."""
    i_k = tl.arange(0, BLOCK_K)[None, :]
    m_out = (i_t < T)[:, None] & (i_k < K)
    o_out = i_t[:, None].to(tl.int64) * K + i_k
    tl.store(ids_ptr + o_out, b_id, mask=m_out)
    tl.store(weights_ptr + o_out, b_w, mask=m_out)


@triton.jit
def gating_rows(
    logits_ptr,  # (T, E) float32/float16/bfloat16, any strides: input
    stride_t, stride_e,
    weights_ptr,  # (T, K) float32, contiguous: output
    ids_ptr,  # (T, K) int32, contiguous: output
    row0, T, E,
    K: tl.constexpr, BLOCK_T: tl.constexpr, BLOCK_E: tl.constexpr, BLOCK_K: tl.constexpr,
    RENORMALIZE: tl.constexpr,
):
    """Gate rows [row0, row0 + BLOCK_T) of the logits (rows >= T masked off) and store them.
    -> (i_t, x, x_max, denom, packed) of select_topk, for callers that route from the tile."""
    i_t, x, x_max, denom, packed, b_id, b_w = select_topk(logits_ptr, stride_t, stride_e, row0, T, E,
                                                          K, BLOCK_T, BLOCK_E, BLOCK_K, RENORMALIZE)
    store_topk(weights_ptr, ids_ptr, i_t, b_id, b_w, T, K, BLOCK_K)
    return i_t, x, x_max, denom, packed


@triton.jit
def tile_expert_rows(packed, i_t, row0, M, mask_ptr, E, HAS_MASK: tl.constexpr, BLOCK_E: tl.constexpr):
    """Which rows of a ``select_topk`` tile (at most 16, from row0) chose each expert:
    -> (sel, slot, row_bit, rows): selected with t < M and the expert kept, its top-k slot,
    each row's bit, and each expert's rows as the bits of one int32 (a sum down the rows).
    A row's experts are distinct, so (expert, row) order is the sort's (expert, position)
    order: an assignment's rank among its expert's is a popcount of the bits below its row's."""
    taken, slot = taken_slots(packed)
    sel = taken & (i_t < M)[:, None]
    if HAS_MASK:
        i_e = tl.arange(0, BLOCK_E)
        sel = sel & (tl.load(mask_ptr + i_e, mask=i_e < E, other=0) != 0)[None, :]
    row_bit = (1 << (i_t - row0))[:, None]
    return sel, slot, row_bit, tl.sum(tl.where(sel, row_bit, 0), axis=0)


@triton.jit
def tile_assignments(packed, i_t, row0, M, mask_ptr, E, HAS_MASK: tl.constexpr, BLOCK_E: tl.constexpr):
    """The sorted assignments of a ``select_topk`` tile in its [BLOCK_T, BLOCK_E] layout:
    -> (sel, slot, rank, counts), rank among the tile's earlier rows that chose the same
    expert, counts per expert (see tile_expert_rows)."""
    sel, slot, row_bit, rows = tile_expert_rows(packed, i_t, row0, M, mask_ptr, E, HAS_MASK, BLOCK_E)
    return sel, slot, popcount16(rows[None, :] & (row_bit - 1)), popcount16(rows)


@kernel
def topk_gating_kernel(
    logits_ptr,  # (T, E) float32/float16/bfloat16, any strides: input
    stride_t, stride_e,
    weights_ptr,  # (T, K) float32: output
    ids_ptr,  # (T, K) int32: output
    mask_ptr,  # (E,): input (when HIST and HAS_MASK)
    m_ptr,  # (1,) int32: input, num_local_tokens on the device (when M_ON_DEVICE)
    hist_ptr,  # (tiles, BLOCK_E) int32: output, each tile's rows of each kept expert, as bits (when HIST)
    buf_ptr, buf_row_words,  # moe_buf: output (when HAS_BUF)
    num_gate_tiles, m_value, T, E,
    K: tl.constexpr, BLOCK_T: tl.constexpr, BLOCK_E: tl.constexpr, BLOCK_K: tl.constexpr,
    RENORMALIZE: tl.constexpr, HIST: tl.constexpr, HAS_MASK: tl.constexpr, M_ON_DEVICE: tl.constexpr,
    HAS_BUF: tl.constexpr, BUF_WORD: tl.constexpr, BLOCK_Z: tl.constexpr,
):
    """Grid: (tiles + Z,). Program p < tiles owns rows [p*BLOCK_T, (p+1)*BLOCK_T) (BLOCK_T <= 16);
    with HIST (the unfused route) it also writes which of its rows chose each kept expert
    (tile_expert_rows), straight from the gating registers: the tiled sort that follows gets
    the counts and every assignment's rank in its tile from those bits, with nothing to sort.
    Programs tiles.. zero moe_buf."""
    pid = tl.program_id(0)
    M = local_token_count(m_ptr, m_value, T, M_ON_DEVICE)
    if pid < num_gate_tiles:
        row0 = pid * BLOCK_T
        i_t, _, _, _, packed = gating_rows(logits_ptr, stride_t, stride_e, weights_ptr, ids_ptr, row0, T, E,
                                           K, BLOCK_T, BLOCK_E, BLOCK_K, RENORMALIZE)
        if HIST:
            _, _, _, rows = tile_expert_rows(packed, i_t, row0, M, mask_ptr, E, HAS_MASK, BLOCK_E)
            tl.store(hist_ptr + pid * BLOCK_E + tl.arange(0, BLOCK_E), rows)
    elif HAS_BUF:
        zero_moe_buf(buf_ptr, buf_row_words, M, num_gate_tiles, BUF_WORD, BLOCK_Z)
