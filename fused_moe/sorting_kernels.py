"""Triton code for MoE sorting (SPEC section 2). Only ``@triton.jit`` code.

Pipeline of the single-program sort (``sort_assignments``), which walks the
flat assignments f = t*K + j, t < M, in chunks of BLOCK_A:

    pass 1: histogram of kept experts              -> counts[E]
            padded = ceil(counts/U)*U, exclusive scan -> starts[E], total
            fill [0, total) with the padding sentinel (real entries overwrite it)
    pass 2: per chunk, sort keys (expert, f); the rank inside an expert run
            plus the expert's cursor gives the destination; cursor += counts

| name              | shape        | dtype | meaning                                   | pad value      |
|-------------------|--------------|-------|-------------------------------------------|----------------|
| sorted_token_ids  | capacity     | int32 | (j << 24) | t, expert-major               | (K << 24) | M  |
| sorted_weights    | capacity     | int32 | bits of topk_weights[t, j]                | 0 (== 0.0f)    |
| sorted_expert_ids | capacity / U | int32 | local expert id of each U-slot block      | none (prefix)  |
| num_valid_ids     | 2            | int32 | [total, M]                                | -              |
| scratch           | 2 * BLOCK_E  | int32 | [cursor per expert, local id per expert]  | -              |

Weights travel as int32 bit patterns so copies are bit-exact on every lane.
Everything past the valid prefixes is left untouched.
"""
import triton
import triton.language as tl


@triton.jit
def local_token_count(m_ptr, m_value, T, M_ON_DEVICE: tl.constexpr):
    """M: from device memory (graph-replayable) or a host int; clamped to [0, T] so a bad
    device value can never index out of bounds."""
    if M_ON_DEVICE:
        m = tl.load(m_ptr).to(tl.int32)
    else:
        m = m_value
    return tl.minimum(tl.maximum(m, 0), T)


@triton.jit
def load_assignments(ids_ptr, stride_t, stride_k, mask_ptr, f, N, E,
                     K: tl.constexpr, HAS_MASK: tl.constexpr, CACHE: tl.constexpr):
    """Expert id and keep flag of flat assignments f (f < N = M*K): dropped when out of
    [0, E) or masked off."""
    m_f = f < N
    t = f // K
    j = f % K
    e = tl.load(ids_ptr + t.to(tl.int64) * stride_t + j * stride_k, mask=m_f, other=-1,
                cache_modifier=CACHE)
    keep = m_f & (e >= 0) & (e < E)
    if HAS_MASK:
        keep = keep & (tl.load(mask_ptr + e, mask=keep, other=0) != 0)
    return e, keep


@triton.jit
def _run_length(e_a, n_a, e_b, n_b):
    # Segmented count over runs of equal experts (associative on sorted input).
    return e_b, n_b + tl.where(e_a == e_b, n_a, 0)


@triton.jit
def sort_assignments(
    ids_ptr,  # (T, K) int32, any strides: input
    ids_stride_t, ids_stride_k,
    w_ptr,  # (T, K) int32 bit patterns of float32 weights: input
    w_stride_t, w_stride_k,
    mask_ptr,  # (E,) int: input, nonzero = expert kept (only read when HAS_MASK)
    sorted_ids_ptr,  # (capacity,) int32: output
    sorted_w_ptr,  # (capacity,) int32: output
    sorted_eids_ptr,  # (capacity // U,) int32: output
    num_valid_ptr,  # (2,) int32: output
    scratch_ptr,  # (2 * BLOCK_E,) int32: workspace
    M, E,
    K: tl.constexpr, U: tl.constexpr, HAS_MASK: tl.constexpr,
    BLOCK_E: tl.constexpr, BLOCK_A: tl.constexpr, CACHE: tl.constexpr,
):
    """The whole sort in one program (the caller's program owns every output)."""
    N = M * K
    i_a = tl.arange(0, BLOCK_A)
    i_e = tl.arange(0, BLOCK_E)
    m_e = i_e < E

    counts = tl.zeros([BLOCK_E], dtype=tl.int32)
    for start in range(0, N, BLOCK_A):
        e, keep = load_assignments(ids_ptr, ids_stride_t, ids_stride_k, mask_ptr, start + i_a,
                                   N, E, K, HAS_MASK, CACHE)
        counts += tl.histogram(e, BLOCK_E, mask=keep)

    padded = (counts + (U - 1)) // U * U
    starts = tl.cumsum(padded, 0) - padded
    total = tl.sum(padded, 0)
    if HAS_MASK:
        on = (tl.load(mask_ptr + i_e, mask=m_e, other=0) != 0).to(tl.int32)
        local = tl.cumsum(on, 0) - on
    else:
        local = i_e
    tl.store(scratch_ptr + i_e, starts)
    tl.store(scratch_ptr + BLOCK_E + i_e, local)
    tl.store(num_valid_ptr, total)
    tl.store(num_valid_ptr + 1, M)

    pad_token = (K << 24) | M
    for q0 in range(0, total, BLOCK_A):
        q = q0 + i_a
        tl.store(sorted_ids_ptr + q, tl.zeros_like(q) + pad_token, mask=q < total)
        tl.store(sorted_w_ptr + q, tl.zeros_like(q), mask=q < total)
    tl.debug_barrier()  # the scratch and the padding fill land before pass 2 reads/overwrites them

    cursor = starts
    for start in range(0, N, BLOCK_A):
        e, keep = load_assignments(ids_ptr, ids_stride_t, ids_stride_k, mask_ptr, start + i_a,
                                   N, E, K, HAS_MASK, CACHE)
        key = tl.sort(tl.where(keep, e, BLOCK_E) * BLOCK_A + i_a)
        e_s = key // BLOCK_A
        f_s = start + key % BLOCK_A
        kept = e_s < BLOCK_E
        _, run = tl.associative_scan((e_s, tl.full([BLOCK_A], 1, tl.int32)), 0, _run_length)
        dest = tl.load(scratch_ptr + e_s, mask=kept, other=0) + run - 1
        t = f_s // K
        j = f_s % K
        w = tl.load(w_ptr + t.to(tl.int64) * w_stride_t + j * w_stride_k, mask=kept, other=0,
                    cache_modifier=CACHE)
        tl.store(sorted_ids_ptr + dest, (j << 24) | t, mask=kept)
        tl.store(sorted_w_ptr + dest, w, mask=kept)
        block_head = kept & (dest % U == 0)  # padding only ends a run, so every block starts with a real entry
        tl.store(sorted_eids_ptr + dest // U, tl.load(scratch_ptr + BLOCK_E + e_s, mask=block_head, other=0),
                 mask=block_head)
        cursor += tl.histogram(e, BLOCK_E, mask=keep)
        tl.debug_barrier()  # every gather of this chunk is done before the cursors move
        tl.store(scratch_ptr + i_e, cursor)
        tl.debug_barrier()


@triton.jit
def zero_rows(buf_ptr, n_words, part, parts, BLOCK_Z: tl.constexpr):
    """Zero words [0, n_words) of buf; this program takes blocks part, part+parts, ...
    Full blocks store unmasked (vectorised); one program finishes the ragged tail."""
    i_z = tl.arange(0, BLOCK_Z)
    n_full = n_words // BLOCK_Z * BLOCK_Z
    zeros = tl.zeros([BLOCK_Z], dtype=buf_ptr.dtype.element_ty)
    for start in range(part * BLOCK_Z, n_full, parts * BLOCK_Z):
        tl.store(buf_ptr + start + i_z, zeros)
    if part == 0:
        o = n_full + i_z
        tl.store(buf_ptr + o, zeros, mask=o < n_words)


@triton.jit
def moe_sorting_kernel(
    ids_ptr, ids_stride_t, ids_stride_k,  # (T, K) int32: input
    w_ptr, w_stride_t, w_stride_k,  # (T, K) int32 bits of float32: input
    mask_ptr,  # (E,): input
    m_ptr,  # (1,) int32: input, num_local_tokens on the device (when M_ON_DEVICE)
    sorted_ids_ptr, sorted_w_ptr, sorted_eids_ptr, num_valid_ptr,  # outputs
    scratch_ptr,  # (2 * BLOCK_E,) int32: workspace
    buf_ptr,  # moe_buf viewed as words: output, rows [0, M) zeroed (when HAS_BUF)
    buf_row_words,
    m_value, T, E,
    K: tl.constexpr, U: tl.constexpr, HAS_MASK: tl.constexpr, M_ON_DEVICE: tl.constexpr,
    HAS_BUF: tl.constexpr, BLOCK_E: tl.constexpr, BLOCK_A: tl.constexpr, BLOCK_Z: tl.constexpr,
):
    """Grid: (1 + Z,). Program 0 sorts every assignment; programs 1..Z zero moe_buf rows [0, M)."""
    pid = tl.program_id(0)
    M = local_token_count(m_ptr, m_value, T, M_ON_DEVICE)
    if pid == 0:
        sort_assignments(ids_ptr, ids_stride_t, ids_stride_k, w_ptr, w_stride_t, w_stride_k, mask_ptr,
                         sorted_ids_ptr, sorted_w_ptr, sorted_eids_ptr, num_valid_ptr, scratch_ptr,
                         M, E, K, U, HAS_MASK, BLOCK_E, BLOCK_A, "")
    elif HAS_BUF:
        zero_rows(buf_ptr, M.to(tl.int64) * buf_row_words, pid - 1, tl.num_programs(0) - 1, BLOCK_Z)
