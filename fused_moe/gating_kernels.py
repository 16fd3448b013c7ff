"""Triton code for top-k gating softmax (SPEC section 1). Only ``@triton.jit`` code.

Pipeline (one program per tile of BLOCK_T rows, independent of T and of the
other rows, which is what makes routing batch invariant):

    logits[T, E] --load, upcast--> x (float32; NaN -> -inf, -0.0 -> +0.0)
    x --order-preserving int key, packed with the inverted column--> packed (int64)
    K x (row max of packed) --> topk_ids   (ties: lower expert index wins)
    exp(x - rowmax) --fixed-point row sum--> S; topk_weights = e_k / S or e_k / sum(e_k)

| name    | shape           | dtype   | meaning                                  | pad value          |
|---------|-----------------|---------|------------------------------------------|--------------------|
| x       | [BLOCK_T, BLOCK_E] | float32 | logits, NaN as -inf                   | -inf (cols >= E)   |
| packed  | [BLOCK_T, BLOCK_E] | int64   | (ordered key << 32) | (BLOCK_E-1-col)  | INT64_MIN (cols >= E, taken) |
| b_e     | [BLOCK_T, BLOCK_E] | float32 | unnormalised probability exp(x - max) | 0.0 (cols >= E)    |
| b_id    | [BLOCK_T, BLOCK_K] | int32   | selected experts, slot order          | 0                  |
| b_w     | [BLOCK_T, BLOCK_K] | float32 | their unnormalised probabilities      | 0.0                |

Why a fixed-point sum: a float tree reduction's order follows the register
layout, which Triton picks per shape, alignment and num_warps. Summing exact
int64 multiples of 2**-40 is order independent, so a row's weights are
bit-identical on every path, tile size and batch.
"""
import triton
import triton.language as tl

_FIXED_ONE = tl.constexpr(1099511627776.0)  # 2**40: b_e <= 1, so E <= 2**20 terms never overflow int64
_INT64_MIN = tl.constexpr(-9223372036854775808)


@triton.jit
def _ordered_key(x):
    """float32 -> int32 whose signed order is the float order (x has no NaN, no -0.0)."""
    bits = x.to(tl.int32, bitcast=True)
    return bits ^ ((bits >> 31) & 0x7FFFFFFF)


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
    """Gate rows [row0, row0 + BLOCK_T) of the logits; rows >= T are masked off."""
    i_t = row0 + tl.arange(0, BLOCK_T)
    i_e = tl.arange(0, BLOCK_E)
    i_k = tl.arange(0, BLOCK_K)
    m_t = i_t < T
    m_e = i_e < E

    p_x = logits_ptr + i_t[:, None].to(tl.int64) * stride_t + i_e[None, :].to(tl.int64) * stride_e
    x = tl.load(p_x, mask=m_t[:, None] & m_e[None, :], other=float("-inf")).to(tl.float32)
    x = tl.where(x != x, float("-inf"), x)  # NaN ranks as -inf
    x = tl.where(x == 0.0, 0.0, x)  # -0.0 ties with +0.0

    # Selection: one int64 max per slot; low bits make ties go to the lower column.
    key = tl.where(m_e[None, :], _ordered_key(x), -2147483648)
    packed = (key.to(tl.int64) << 32) | (BLOCK_E - 1 - i_e[None, :]).to(tl.int64)

    # Unnormalised probabilities with the limit semantics of SPEC section 1.
    x_max = tl.max(x, axis=1)
    row_pos_inf = (x_max == float("inf"))[:, None]
    row_neg_inf = (x_max == float("-inf"))[:, None]
    row_finite = (x_max > float("-inf")) & (x_max < float("inf"))
    shift = tl.where(row_finite, x_max, 0.0)
    b_e = tl.exp(tl.where(row_finite[:, None], x - shift[:, None], float("-inf")))
    b_e = tl.where(row_pos_inf, tl.where(x == float("inf"), 1.0, 0.0), b_e)
    b_e = tl.where(row_neg_inf, 1.0, b_e)
    b_e = tl.where(m_e[None, :], b_e, 0.0)

    b_id = tl.zeros([BLOCK_T, BLOCK_K], dtype=tl.int32)
    b_w = tl.zeros([BLOCK_T, BLOCK_K], dtype=tl.float32)
    picked_sum = tl.zeros([BLOCK_T], dtype=tl.float32)  # summed in slot order on every path
    for k in range(K):
        best = tl.max(packed, axis=1)
        col = (BLOCK_E - 1) - (best & 0xFFFFFFFF).to(tl.int32)
        hit = i_e[None, :] == col[:, None]
        packed = tl.where(hit, _INT64_MIN, packed)
        e_k = tl.max(tl.where(hit, b_e, -1.0), axis=1)  # exactly one hit per row
        b_id = tl.where(i_k[None, :] == k, col[:, None], b_id)
        b_w = tl.where(i_k[None, :] == k, e_k[:, None], b_w)
        picked_sum += e_k

    if RENORMALIZE:
        denom = picked_sum
    else:
        fixed = (b_e * _FIXED_ONE).to(tl.int64)
        denom = tl.sum(fixed, axis=1).to(tl.float32) * (1.0 / _FIXED_ONE)
    b_w = b_w / denom[:, None]

    m_out = m_t[:, None] & (i_k[None, :] < K)
    o_out = i_t[:, None].to(tl.int64) * K + i_k[None, :]
    tl.store(ids_ptr + o_out, b_id, mask=m_out)
    tl.store(weights_ptr + o_out, b_w, mask=m_out)


@triton.jit
def topk_gating_kernel(
    logits_ptr,  # (T, E) float32/float16/bfloat16, any strides: input
    stride_t, stride_e,
    weights_ptr,  # (T, K) float32: output
    ids_ptr,  # (T, K) int32: output
    T, E,
    K: tl.constexpr, BLOCK_T: tl.constexpr, BLOCK_E: tl.constexpr, BLOCK_K: tl.constexpr,
    RENORMALIZE: tl.constexpr,
):
    """Grid: (cdiv(T, BLOCK_T),). Program p owns rows [p*BLOCK_T, (p+1)*BLOCK_T)."""
    gating_rows(logits_ptr, stride_t, stride_e, weights_ptr, ids_ptr,
                tl.program_id(0) * BLOCK_T, T, E,
                K, BLOCK_T, BLOCK_E, BLOCK_K, RENORMALIZE)
