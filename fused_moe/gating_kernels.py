"""Triton code for top-k gating softmax (SPEC section 1). Only ``@triton.jit`` code.

Pipeline (one program per tile of BLOCK_T rows, independent of T and of the
other rows, which is what makes routing batch invariant):

    logits[T, E] --load, upcast--> x (float32; NaN -> -inf, -0.0 -> +0.0)
    x --order-preserving int key, packed with the inverted column--> packed (int64)
    K x (row max of packed) --> topk_ids   (ties: lower expert index wins)
    selected keys --involution--> selected logits (slot 0 is the row max)
    exp(x - rowmax) --fixed-point row sum--> topk_weights = p_k / sum(p_k) or p_k / sum(p)

| name    | shape           | dtype   | meaning                                  | pad value          |
|---------|-----------------|---------|------------------------------------------|--------------------|
| x       | [BLOCK_T, BLOCK_E] | float32 | logits, NaN as -inf                   | -inf (cols >= E)   |
| packed  | [BLOCK_T, BLOCK_E] | int64   | (ordered key << 32) | (BLOCK_E-1-col)  | key -2**31 (cols >= E); taken: TAKEN + slot |
| b_id    | [BLOCK_T, BLOCK_K] | int32   | selected experts, slot order          | 0                  |
| b_key   | [BLOCK_T, BLOCK_K] | int32   | their ordered keys                    | 0                  |
| p_sel   | [BLOCK_T, BLOCK_K] | float32 | their unnormalised probabilities      | 0.0 (slots >= K)   |
| b_w     | [BLOCK_T, BLOCK_K] | float32 | topk weights                          | 0.0 (slots >= K)   |

Why a fixed-point sum: a float tree reduction's order follows the register
layout, which Triton picks per shape, alignment and num_warps. Summing exact
int64 multiples of 2**-40 is order independent, so a row's weights are
bit-identical on every path, tile size and batch.
"""
import triton
import triton.language as tl

from .geometry import kernel
from .sorting_kernels import local_token_count, zero_moe_buf

_FIXED_ONE = tl.constexpr(1099511627776.0)  # 2**40: b_e <= 1, so E <= 2**20 terms never overflow int64
# Selected columns become TAKEN + slot: a key below every real one (the smallest, -inf, is
# -2139095041) and above the padding columns' key -2**31, so they are never picked again.
_TAKEN_KEY = tl.constexpr(-2147483647)
_TAKEN = tl.constexpr(-2147483647 << 32)


@triton.jit
def _ordered_key(x):
    """float32 -> int32 whose signed order is the float order (x has no NaN, no -0.0)."""
    bits = x.to(tl.int32, bitcast=True)
    return bits ^ ((bits >> 31) & 0x7FFFFFFF)


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
    m_t = i_t < T
    m_e = i_e < E

    p_x = logits_ptr + i_t[:, None].to(tl.int64) * stride_t + i_e[None, :].to(tl.int64) * stride_e
    x = tl.load(p_x, mask=m_t[:, None] & m_e[None, :], other=float("-inf")).to(tl.float32)
    x = tl.where(x != x, float("-inf"), x)  # NaN ranks as -inf
    x = tl.where(x == 0.0, 0.0, x)  # -0.0 ties with +0.0

    # Selection: one int64 max per slot; low bits make ties go to the lower column.
    key = tl.where(m_e[None, :], _ordered_key(x), -2147483648)
    packed = (key.to(tl.int64) << 32) | (BLOCK_E - 1 - i_e[None, :]).to(tl.int64)
    b_id = tl.zeros([BLOCK_T, BLOCK_K], dtype=tl.int32)
    b_key = tl.zeros([BLOCK_T, BLOCK_K], dtype=tl.int32)
    taken = tl.full([BLOCK_T, 1], _TAKEN, tl.int64)  # an int64 tensor: TAKEN + k must not fold to int32
    for k in range(K):
        best = tl.max(packed, axis=1)
        col = (BLOCK_E - 1) - (best & 0xFFFFFFFF).to(tl.int32)
        packed = tl.where(i_e[None, :] == col[:, None], taken + k, packed)
        b_id = tl.where(i_k == k, col[:, None], b_id)
        b_key = tl.where(i_k == k, (best >> 32).to(tl.int32)[:, None], b_key)

    # The key is an involution of the float bits: the selected logits come back exactly,
    # and slot 0 holds the row max.
    m_k = i_k < K
    x_sel = tl.where(m_k, _ordered_key(b_key).to(tl.float32, bitcast=True), float("-inf"))
    x_max = tl.max(x_sel, axis=1)
    p_sel = tl.where(m_k, _unnormalised(x_sel, x_max), 0.0)
    if RENORMALIZE:
        denom = _fixed_point_sum(p_sel)
    else:
        denom = _fixed_point_sum(tl.where(m_e[None, :], _unnormalised(x, x_max), 0.0))
    return i_t, x, x_max, denom, packed, b_id, p_sel / denom[:, None]


@triton.jit
def taken_slots(packed):
    """-> (selected, slot) per column of a ``select_topk`` tile."""
    return (packed >> 32) == _TAKEN_KEY, (packed & 0xFFFFFFFF).to(tl.int32)


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
    """Gate rows [row0, row0 + BLOCK_T) of the logits (rows >= T masked off) and store them."""
    i_t, _, _, _, _, b_id, b_w = select_topk(logits_ptr, stride_t, stride_e, row0, T, E,
                                             K, BLOCK_T, BLOCK_E, BLOCK_K, RENORMALIZE)
    store_topk(weights_ptr, ids_ptr, i_t, b_id, b_w, T, K, BLOCK_K)


@triton.jit
def selected_in_tile(packed, i_t, M, mask_ptr, E, HAS_MASK: tl.constexpr, BLOCK_E: tl.constexpr):
    """-> (sel, slot) per [row, column] of a ``select_topk`` tile: selected by a row t < M
    and kept by the expert mask (what the sort keeps), and its top-k slot."""
    taken, slot = taken_slots(packed)
    sel = taken & (i_t < M)[:, None]
    if HAS_MASK:
        i_e = tl.arange(0, BLOCK_E)
        sel = sel & (tl.load(mask_ptr + i_e, mask=i_e < E, other=0) != 0)[None, :]
    return sel, slot


@kernel
def topk_gating_kernel(
    logits_ptr,  # (T, E) float32/float16/bfloat16, any strides: input
    stride_t, stride_e,
    weights_ptr,  # (T, K) float32: output
    ids_ptr,  # (T, K) int32: output
    mask_ptr,  # (E,): input (when HIST and HAS_MASK)
    m_ptr,  # (1,) int32: input, num_local_tokens on the device (when HIST and M_ON_DEVICE)
    hist_ptr,  # (tiles, BLOCK_E) int32: output, each tile's histogram of kept experts (when HIST)
    buf_ptr, buf_row_words,  # moe_buf: output (when HAS_BUF)
    num_gate_tiles, m_value, T, E,
    K: tl.constexpr, BLOCK_T: tl.constexpr, BLOCK_E: tl.constexpr, BLOCK_K: tl.constexpr,
    RENORMALIZE: tl.constexpr, HIST: tl.constexpr, HAS_MASK: tl.constexpr, M_ON_DEVICE: tl.constexpr,
    HAS_BUF: tl.constexpr, BUF_WORD: tl.constexpr, BLOCK_Z: tl.constexpr,
):
    """Grid: (tiles + Z,). Program p < tiles owns rows [p*BLOCK_T, (p+1)*BLOCK_T); with HIST
    (the unfused route) it also counts its tile's kept experts for the tiled sort, straight
    from the gating registers. Programs tiles.. zero moe_buf."""
    pid = tl.program_id(0)
    M = local_token_count(m_ptr, m_value, T, M_ON_DEVICE)
    if pid < num_gate_tiles:
        i_t, _, _, _, packed, b_id, b_w = select_topk(logits_ptr, stride_t, stride_e, pid * BLOCK_T, T, E,
                                                      K, BLOCK_T, BLOCK_E, BLOCK_K, RENORMALIZE)
        store_topk(weights_ptr, ids_ptr, i_t, b_id, b_w, T, K, BLOCK_K)
        if HIST:
            sel, _ = selected_in_tile(packed, i_t, M, mask_ptr, E, HAS_MASK, BLOCK_E)
            tl.store(hist_ptr + pid * BLOCK_E + tl.arange(0, BLOCK_E), tl.sum(sel.to(tl.int32), axis=0))
    elif HAS_BUF:
        zero_moe_buf(buf_ptr, buf_row_words, M, num_gate_tiles, BUF_WORD, BLOCK_Z)
