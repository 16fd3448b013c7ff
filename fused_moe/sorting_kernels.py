"""Triton code for MoE sorting (SPEC section 2). Only ``@triton.jit`` code.

Building blocks, shared by every sorting path:

    expert_layout:  counts[E] -> padded = ceil(counts/U)*U, starts (exclusive scan), total, local ids
    fill_padding:   write the sentinel into each expert's padding slots [starts+counts, starts+padded)
    write_layout:   both of the above, num_valid_ids, and (vLLM layout) ``fill_tail`` past the prefix
    sort_chunk:     sort one chunk of assignments by (expert, position) -- stable by construction,
                    since the position is part of the key -- carrying the weight bits along
    place_sorted:   destination = cursor[expert] + rank inside the expert's run; scatter tokens,
                    weights and the local expert id of every block head

Paths built from them:
- ``sort_assignments``: one program walks all M*K assignments from memory in chunks
  (pass 1 histogram, pass 2 scatter); the cursor stays in registers.
- presorted (fused route, several gating tiles): every gating program sorts its own tile
  (``presort_tile``); the last arriver scans the tile histograms and places every tile
  with one gather per entry (``place_presorted``), no sorting left on its serial path.
- tiled, over row tiles (``tile_histogram_kernel`` or, in the unfused route, the gating
  launch -> ``tile_scan_kernel`` past SELF_SCAN_TILES tiles -> ``tile_place_kernel``):
  per-tile histograms; the column scan gives each (tile, expert) the expert's entries in
  earlier tiles (with few tiles every placing program sums them itself); every placing
  program derives the expert layout from the counts and places its tile, sorting it
  (moe_sorting) or, given the tile's per-expert row bits (the gating launch's
  ``tile_expert_rows``), ranking each entry by a popcount (``place_tile_by_rows``); one more
  program writes num_valid_ids, the padding and the vLLM tails.

| name              | shape        | dtype | meaning                                   | pad value      |
|-------------------|--------------|-------|-------------------------------------------|----------------|
| sorted_token_ids  | capacity     | int32 | (j << 24) | t, expert-major               | (K << 24) | M  |
| sorted_weights    | capacity     | float32, written as int32 bits | topk_weights[t, j] | 0 (== 0.0f) |
| sorted_expert_ids | capacity / U | int32 | local expert id of each U-slot block      | none (prefix)  |
| num_valid_ids     | 2            | int32 | [total, M]                                | -              |
| hist              | (tiles, BLOCK_E) | int32 | tiled path: counts per (tile, expert), or row bits (RANKED) | - |
| prefix            | (tiles, BLOCK_E) | int32 | tiled path, past SELF_SCAN_TILES: the expert's entries in earlier tiles | - |

Weights travel as int32 bit patterns so copies are bit-exact on every lane.
Everything past the valid prefixes is left untouched.

The vLLM layout (``VLLM`` constexpr; oracles/layouts.py) is written by the same code:

| name                | shape      | dtype | meaning                              | pad value, and past the prefix   |
|---------------------|------------|-------|--------------------------------------|----------------------------------|
| sorted_token_ids    | n_sorted   | int32 | t * K + j, expert-major              | T * K, up to n_sorted            |
| expert_ids          | n_blocks   | int32 | local expert id of each U-slot block | -1 from total // U to n_blocks   |
| num_tokens_post_pad | 1          | int32 | [total]                              | -                                |

No sorted weights (nothing is loaded or stored for them: the host passes a dummy
``sorted_w_ptr``); the whole of each buffer is written, its length ``n_sorted`` /
``n_blocks`` a runtime argument (``fill_tail``, by the program that writes the padding).
With ``VLLM`` off those arguments are unused and the code is the CK code.
"""
import triton
import triton.language as tl

from .geometry import kernel

TAIL_BLOCK = tl.constexpr(1024)  # vLLM layout: tail slots / blocks written per step of fill_range


@triton.jit
def popcount16(v):
    """Set bits of each int32 in [0, 2**16) (SWAR; no popc in the Triton language)."""
    v = v - ((v >> 1) & 0x5555)
    v = (v & 0x3333) + ((v >> 2) & 0x3333)
    v = (v + (v >> 4)) & 0x0F0F
    return (v + (v >> 8)) & 0x1F


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
def as_bits(ptr):
    """A float32 pointer as int32: weights travel as bit patterns (bit-exact on every lane)."""
    return ptr.to(tl.pointer_type(tl.int32))


@triton.jit
def as_words(ptr, WORD: tl.constexpr):
    """moe_buf as WORD-byte integers (the widest that divides a row and the base address)."""
    if WORD == 8:
        words = ptr.to(tl.pointer_type(tl.int64))
    elif WORD == 4:
        words = ptr.to(tl.pointer_type(tl.int32))
    elif WORD == 2:
        words = ptr.to(tl.pointer_type(tl.int16))
    else:
        words = ptr.to(tl.pointer_type(tl.int8))
    return words


@triton.jit
def load_assignments(ids_ptr, stride_t, stride_k, mask_ptr, f, N, E,
                     K: tl.constexpr, HAS_MASK: tl.constexpr):
    """Expert id (int32) and keep flag of flat assignments f (f < N = M*K): dropped when out of
    [0, E) or masked off. Ids may be int32 or int64: the range test runs on the loaded
    width, so an int64 id that would wrap into [0, E) as int32 is still dropped."""
    m_f = f < N
    t = f // K
    j = f % K
    e = tl.load(ids_ptr + t.to(tl.int64) * stride_t + j * stride_k, mask=m_f, other=-1)
    keep = m_f & (e >= 0) & (e < E)
    e = e.to(tl.int32)
    if HAS_MASK:
        keep = keep & (tl.load(mask_ptr + e, mask=keep, other=0) != 0)
    return e, keep


@triton.jit
def load_weight_bits(w_ptr, stride_t, stride_k, f, N, K: tl.constexpr, VLLM: tl.constexpr):
    """Weight bits of flat assignments f; zeros without a load in the vLLM layout (no sorted weights)."""
    if VLLM:
        bits = tl.zeros(f.shape, dtype=tl.int32)
    else:
        t = f // K
        bits = tl.load(w_ptr + t.to(tl.int64) * stride_t + (f % K) * stride_k, mask=f < N, other=0)
    return bits


@triton.jit
def pack_token(t, j, K: tl.constexpr, VLLM: tl.constexpr):
    """The sorted_token_ids entry of assignment (t, j): t * K + j (vLLM) or (j << 24) | t (CK)."""
    if VLLM:
        token = t * K + j
    else:
        token = (j << 24) | t
    return token


@triton.jit
def pad_token(M, T, K: tl.constexpr, VLLM: tl.constexpr):
    """The padding entry of sorted_token_ids: T * K (vLLM: the numel of topk_ids) or (K << 24) | M (CK)."""
    if VLLM:
        pad = T * K + tl.zeros_like(M)
    else:
        pad = (K << 24) | M
    return pad


@triton.jit
def fill_range(ptr, first, end, value):
    """value into ptr[first, end) (int32), TAIL_BLOCK at a time: ceil((end - first) / TAIL_BLOCK)
    trips, none when first >= end. (Starting at an aligned step instead would not vectorise
    the stores either: the mask's lower bound is a runtime value.)"""
    i_f = tl.arange(0, TAIL_BLOCK)
    for o0 in range(first, end, TAIL_BLOCK):
        o = o0 + i_f
        tl.store(ptr + o, tl.zeros([TAIL_BLOCK], dtype=tl.int32) + value, mask=o < end)


@triton.jit
def fill_tail(total, pad, sorted_ids_ptr, sorted_eids_ptr, n_sorted, n_blocks, U: tl.constexpr):
    """vLLM layout past the valid prefix, to the end of each buffer: pad into slots
    [total, n_sorted), -1 into blocks [total // U, n_blocks)."""
    fill_range(sorted_ids_ptr, total, n_sorted, pad)
    fill_range(sorted_eids_ptr, total // U, n_blocks, -1)


@triton.jit
def expert_layout(counts, mask_ptr, E, U: tl.constexpr, HAS_MASK: tl.constexpr, BLOCK_E: tl.constexpr):
    """-> (padded, starts, total, local): slots per expert, first slot, sum, local expert id."""
    padded = (counts + (U - 1)) // U * U
    starts = tl.cumsum(padded, 0) - padded
    total = tl.sum(padded, 0)
    i_e = tl.arange(0, BLOCK_E)
    if HAS_MASK:
        on = (tl.load(mask_ptr + i_e, mask=i_e < E, other=0) != 0).to(tl.int32)
        local = tl.cumsum(on, 0) - on
    else:
        local = i_e
    return padded, starts, total, local


@triton.jit
def fill_padding(starts, counts, padded, sorted_ids_ptr, sorted_w_ptr, pad,
                 U: tl.constexpr, BLOCK_E: tl.constexpr, PAD_W: tl.constexpr, VLLM: tl.constexpr):
    """Sentinel (and 0.0 but in the vLLM layout) into slots [starts + counts, starts + padded)
    of every expert (< U each)."""
    first = (starts + counts)[:, None]
    end = (starts + padded)[:, None]
    i_z = tl.arange(0, PAD_W)[None, :]
    for z0 in range(0, U - 1, PAD_W):
        o = first + z0 + i_z
        m_o = o < end
        tl.store(sorted_ids_ptr + o, tl.zeros_like(o) + pad, mask=m_o)
        if not VLLM:
            tl.store(sorted_w_ptr + o, tl.zeros_like(o), mask=m_o)


@triton.jit
def _run_length(e_a, n_a, e_b, n_b):
    # Segmented count over runs of equal experts (associative on sorted input).
    return e_b, n_b + tl.where(e_a == e_b, n_a, 0)


@triton.jit
def sort_chunk(e, keep, w_bits, BLOCK_E: tl.constexpr, BLOCK_A: tl.constexpr):
    """Sort a chunk by (expert, position); dropped entries go last with expert BLOCK_E.
    -> (expert, position in chunk, weight bits), all in sorted order."""
    i_a = tl.arange(0, BLOCK_A)
    hi = tl.where(keep, e, BLOCK_E) * BLOCK_A + i_a
    key = tl.sort((hi.to(tl.int64) << 32) | (w_bits.to(tl.int64) & 0xFFFFFFFF))
    hi = (key >> 32).to(tl.int32)
    return hi // BLOCK_A, hi % BLOCK_A, key.to(tl.int32)


@triton.jit
def store_placed(dest, kept, e, token, w_bits, local, sorted_ids_ptr, sorted_w_ptr, sorted_eids_ptr,
                 U: tl.constexpr, VLLM: tl.constexpr):
    """Entries at their slots ``dest`` (where ``kept``); a block's first slot also writes the
    block's local expert id (padding only ends a run, so every block starts with a real entry)."""
    tl.store(sorted_ids_ptr + dest, token, mask=kept)
    if not VLLM:
        tl.store(sorted_w_ptr + dest, w_bits, mask=kept)
    tl.store(sorted_eids_ptr + dest // U, tl.gather(local, e, 0), mask=kept & (dest % U == 0))


@triton.jit
def place_sorted(e_s, token_s, w_s, cursor, local, sorted_ids_ptr, sorted_w_ptr, sorted_eids_ptr,
                 U: tl.constexpr, BLOCK_E: tl.constexpr, BLOCK_A: tl.constexpr, VLLM: tl.constexpr):
    """Scatter a sorted chunk: slot = cursor[expert] + rank inside the expert's run."""
    kept = e_s < BLOCK_E
    e_c = tl.where(kept, e_s, 0)
    _, run = tl.associative_scan((e_s, tl.full([BLOCK_A], 1, tl.int32)), 0, _run_length)
    store_placed(tl.gather(cursor, e_c, 0) + run - 1, kept, e_c, token_s, w_s, local,
                 sorted_ids_ptr, sorted_w_ptr, sorted_eids_ptr, U, VLLM)


@triton.jit
def write_layout(counts, mask_ptr, sorted_ids_ptr, sorted_w_ptr, sorted_eids_ptr, num_valid_ptr,
                 n_sorted, n_blocks, M, T, E,
                 K: tl.constexpr, U: tl.constexpr, HAS_MASK: tl.constexpr, BLOCK_E: tl.constexpr,
                 PAD_W: tl.constexpr, VLLM: tl.constexpr):
    """From the expert counts: num_valid_ids, every padding slot and (vLLM layout) the tail of
    both buffers. -> (starts, local)."""
    padded, starts, total, local = expert_layout(counts, mask_ptr, E, U, HAS_MASK, BLOCK_E)
    pad = pad_token(M, T, K, VLLM)
    tl.store(num_valid_ptr, total)
    if VLLM:
        fill_tail(total, pad, sorted_ids_ptr, sorted_eids_ptr, n_sorted, n_blocks, U)
    else:
        tl.store(num_valid_ptr + 1, M)
    fill_padding(starts, counts, padded, sorted_ids_ptr, sorted_w_ptr, pad, U, BLOCK_E, PAD_W, VLLM)
    return starts, local


@triton.jit
def place_chunk(start, e, keep, w, cursor, local, sorted_ids_ptr, sorted_w_ptr, sorted_eids_ptr,
                K: tl.constexpr, U: tl.constexpr, BLOCK_E: tl.constexpr, BLOCK_A: tl.constexpr, VLLM: tl.constexpr):
    """Sort and place the chunk of flat assignments [start, start + BLOCK_A)."""
    e_s, i_s, w_s = sort_chunk(e, keep, w, BLOCK_E, BLOCK_A)
    f_s = start + i_s
    place_sorted(e_s, pack_token(f_s // K, f_s % K, K, VLLM), w_s, cursor, local,
                 sorted_ids_ptr, sorted_w_ptr, sorted_eids_ptr, U, BLOCK_E, BLOCK_A, VLLM)


@triton.jit
def sort_assignments(
    ids_ptr,  # (T, K) int32 or int64, any strides: input
    ids_stride_t, ids_stride_k,
    w_ptr,  # (T, K) int32 bit patterns of float32 weights: input
    w_stride_t, w_stride_k,
    mask_ptr,  # (E,) int: input, nonzero = expert kept (only read when HAS_MASK)
    sorted_ids_ptr, sorted_w_ptr, sorted_eids_ptr, num_valid_ptr,  # outputs, see the tables
    n_sorted, n_blocks,  # lengths of sorted_ids / sorted_eids (vLLM layout: written to the end)
    M, T, E,
    K: tl.constexpr, U: tl.constexpr, HAS_MASK: tl.constexpr,
    BLOCK_E: tl.constexpr, BLOCK_A: tl.constexpr, PAD_W: tl.constexpr, SINGLE_CHUNK: tl.constexpr,
    VLLM: tl.constexpr,
):
    """The whole sort in one program, reading assignments from memory in chunks of BLOCK_A.
    SINGLE_CHUNK (T*K <= BLOCK_A, known on the host) loads the one chunk once."""
    N = M * K
    i_a = tl.arange(0, BLOCK_A)
    if SINGLE_CHUNK:
        e, keep = load_assignments(ids_ptr, ids_stride_t, ids_stride_k, mask_ptr, i_a, N, E, K, HAS_MASK)
        w = load_weight_bits(w_ptr, w_stride_t, w_stride_k, i_a, N, K, VLLM)
        cursor, local = write_layout(
            tl.histogram(e, BLOCK_E, mask=keep), mask_ptr, sorted_ids_ptr=sorted_ids_ptr, sorted_w_ptr=sorted_w_ptr,
            sorted_eids_ptr=sorted_eids_ptr, num_valid_ptr=num_valid_ptr, n_sorted=n_sorted, n_blocks=n_blocks,
            M=M, T=T, E=E, K=K, U=U, HAS_MASK=HAS_MASK, BLOCK_E=BLOCK_E, PAD_W=PAD_W, VLLM=VLLM)
        place_chunk(0, e, keep, w, cursor, local, sorted_ids_ptr, sorted_w_ptr, sorted_eids_ptr,
                    K=K, U=U, BLOCK_E=BLOCK_E, BLOCK_A=BLOCK_A, VLLM=VLLM)
    else:
        counts = tl.zeros([BLOCK_E], dtype=tl.int32)
        for start in range(0, N, BLOCK_A):
            e, keep = load_assignments(ids_ptr, ids_stride_t, ids_stride_k, mask_ptr, start + i_a,
                                       N, E, K, HAS_MASK)
            counts += tl.histogram(e, BLOCK_E, mask=keep)
        cursor, local = write_layout(
            counts, mask_ptr, sorted_ids_ptr=sorted_ids_ptr, sorted_w_ptr=sorted_w_ptr,
            sorted_eids_ptr=sorted_eids_ptr, num_valid_ptr=num_valid_ptr, n_sorted=n_sorted, n_blocks=n_blocks,
            M=M, T=T, E=E, K=K, U=U, HAS_MASK=HAS_MASK, BLOCK_E=BLOCK_E, PAD_W=PAD_W, VLLM=VLLM)
        for start in range(0, N, BLOCK_A):
            f = start + i_a
            e, keep = load_assignments(ids_ptr, ids_stride_t, ids_stride_k, mask_ptr, f, N, E, K, HAS_MASK)
            w = load_weight_bits(w_ptr, w_stride_t, w_stride_k, f, N, K, VLLM)
            place_chunk(start, e, keep, w, cursor, local, sorted_ids_ptr, sorted_w_ptr, sorted_eids_ptr,
                        K=K, U=U, BLOCK_E=BLOCK_E, BLOCK_A=BLOCK_A, VLLM=VLLM)
            cursor += tl.histogram(e, BLOCK_E, mask=keep)


@triton.jit
def presort_tile(
    ids_ptr, w_ptr,  # (T, K) int32 (weights as bits), contiguous: input, rows written by this program
    mask_ptr,  # (E,): input
    keys_ptr,  # (tiles, BLOCK_N) int64: output, this tile sorted by (expert, position) with weight bits
    hist_ptr,  # (tiles, BLOCK_E) int32: output, this tile's expert histogram
    tile, row0, M, E,
    K: tl.constexpr, HAS_MASK: tl.constexpr, BLOCK_T: tl.constexpr, BLOCK_E: tl.constexpr,
    BLOCK_N: tl.constexpr, VLLM: tl.constexpr,
):
    """Sort one gating tile's assignments (rows [row0, row0 + BLOCK_T), t < M) in parallel with
    the other tiles, so the last arriver only has to place them."""
    i_n = tl.arange(0, BLOCK_N)
    f = row0 * K + i_n
    n_end = tl.minimum(M, row0 + BLOCK_T) * K
    e, keep = load_assignments(ids_ptr, K, 1, mask_ptr, f, n_end, E, K, HAS_MASK)
    w = load_weight_bits(w_ptr, K, 1, f, n_end, K, VLLM)
    hi = tl.where(keep, e, BLOCK_E) * BLOCK_N + i_n
    tl.store(keys_ptr + tile * BLOCK_N + i_n, tl.sort((hi.to(tl.int64) << 32) | (w.to(tl.int64) & 0xFFFFFFFF)))
    tl.store(hist_ptr + tile * BLOCK_E + tl.arange(0, BLOCK_E), tl.histogram(e, BLOCK_E, mask=keep))


@triton.jit
def place_presorted(
    keys_ptr, hist_ptr,  # from presort_tile of every tile: input (hist is overwritten)
    mask_ptr, sorted_ids_ptr, sorted_w_ptr, sorted_eids_ptr, num_valid_ptr,  # see the tables
    n_sorted, n_blocks,  # lengths of sorted_ids / sorted_eids (vLLM layout: written to the end)
    num_tiles, M, T, E,
    K: tl.constexpr, U: tl.constexpr, HAS_MASK: tl.constexpr, BLOCK_T: tl.constexpr,
    BLOCK_E: tl.constexpr, BLOCK_N: tl.constexpr, SCAN_ROWS: tl.constexpr, PAD_W: tl.constexpr,
    PLACE_BLOCK: tl.constexpr, VLLM: tl.constexpr,
):
    """One program places every presorted tile: slot = position in the sorted tile + delta,
    delta[tile, e] = first slot of (tile, e) - first position of e inside the tile."""
    i_r = tl.arange(0, SCAN_ROWS)[:, None]
    i_e = tl.arange(0, BLOCK_E)[None, :]
    counts = tl.zeros([BLOCK_E], dtype=tl.int32)
    for r0 in range(0, num_tiles, SCAN_ROWS):
        p_h = hist_ptr + (r0 + i_r) * BLOCK_E + i_e
        counts += tl.sum(tl.load(p_h, mask=(r0 + i_r) < num_tiles, other=0, cache_modifier=".cg"), axis=0)
    running, local = write_layout(
        counts, mask_ptr, sorted_ids_ptr=sorted_ids_ptr, sorted_w_ptr=sorted_w_ptr, sorted_eids_ptr=sorted_eids_ptr,
        num_valid_ptr=num_valid_ptr, n_sorted=n_sorted, n_blocks=n_blocks, M=M, T=T, E=E, K=K, U=U,
        HAS_MASK=HAS_MASK, BLOCK_E=BLOCK_E, PAD_W=PAD_W, VLLM=VLLM)
    for r0 in range(0, num_tiles, SCAN_ROWS):
        m_r = (r0 + i_r) < num_tiles
        p_h = hist_ptr + (r0 + i_r) * BLOCK_E + i_e
        h = tl.load(p_h, mask=m_r, other=0, cache_modifier=".cg")
        tile_start = running[None, :] + tl.cumsum(h, 0) - h
        tl.store(p_h, tile_start - (tl.cumsum(h, 1) - h), mask=m_r)
        running += tl.sum(h, axis=0)
    tl.debug_barrier()  # the deltas land before the gathers below read them

    i_q = tl.arange(0, PLACE_BLOCK)
    for q0 in range(0, num_tiles * BLOCK_N, PLACE_BLOCK):
        q = q0 + i_q
        key = tl.load(keys_ptr + q, mask=q < num_tiles * BLOCK_N, other=-1, cache_modifier=".cg")
        hi = (key >> 32).to(tl.int32)
        e = hi // BLOCK_N
        kept = (key >= 0) & (e < BLOCK_E)
        e = tl.where(kept, e, 0)
        tile = q // BLOCK_N
        dest = q % BLOCK_N + tl.load(hist_ptr + tile * BLOCK_E + e, mask=kept, other=0)
        i = hi % BLOCK_N
        tl.store(sorted_ids_ptr + dest, pack_token(tile * BLOCK_T + i // K, i % K, K, VLLM), mask=kept)
        if not VLLM:
            tl.store(sorted_w_ptr + dest, key.to(tl.int32), mask=kept)
        head = kept & (dest % U == 0)
        tl.store(sorted_eids_ptr + dest // U, tl.gather(local, e, 0), mask=head)


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


@kernel
def moe_sorting_kernel(
    ids_ptr, ids_stride_t, ids_stride_k,  # (T, K) int32 or int64: input
    w_ptr, w_stride_t, w_stride_k,  # (T, K) float32: input
    mask_ptr,  # (E,): input
    m_ptr,  # (1,) int32: input, num_local_tokens on the device (when M_ON_DEVICE)
    sorted_ids_ptr, sorted_w_ptr, sorted_eids_ptr, num_valid_ptr,  # outputs (vLLM: sorted_w_ptr unused)
    buf_ptr,  # moe_buf: output, rows [0, M) zeroed as BUF_WORD-byte words (when HAS_BUF)
    buf_row_words,
    n_sorted, n_blocks,  # lengths of sorted_ids / sorted_eids (read when VLLM)
    m_value, T, E,
    K: tl.constexpr, U: tl.constexpr, HAS_MASK: tl.constexpr, M_ON_DEVICE: tl.constexpr,
    HAS_BUF: tl.constexpr, BUF_WORD: tl.constexpr, BLOCK_E: tl.constexpr, BLOCK_A: tl.constexpr,
    PAD_W: tl.constexpr, SINGLE_CHUNK: tl.constexpr, BLOCK_Z: tl.constexpr, VLLM: tl.constexpr,
):
    """Grid: (1 + Z,). Program 0 sorts every assignment; programs 1..Z zero moe_buf rows [0, M)."""
    pid = tl.program_id(0)
    M = local_token_count(m_ptr, m_value, T, M_ON_DEVICE)
    if pid == 0:
        sort_assignments(
            ids_ptr, ids_stride_t, ids_stride_k, as_bits(w_ptr), w_stride_t, w_stride_k, mask_ptr,
            sorted_ids_ptr=sorted_ids_ptr, sorted_w_ptr=as_bits(sorted_w_ptr), sorted_eids_ptr=sorted_eids_ptr,
            num_valid_ptr=num_valid_ptr, n_sorted=n_sorted, n_blocks=n_blocks, M=M, T=T, E=E, K=K, U=U,
            HAS_MASK=HAS_MASK, BLOCK_E=BLOCK_E, BLOCK_A=BLOCK_A, PAD_W=PAD_W, SINGLE_CHUNK=SINGLE_CHUNK,
            VLLM=VLLM)
    elif HAS_BUF:
        zero_moe_buf(buf_ptr, buf_row_words, M, 1, BUF_WORD, BLOCK_Z)


@triton.jit
def zero_moe_buf(buf_ptr, buf_row_words, M, first_program, BUF_WORD: tl.constexpr, BLOCK_Z: tl.constexpr):
    """Programs [first_program, num_programs) zero moe_buf rows [0, M), as BUF_WORD-byte words."""
    zero_rows(as_words(buf_ptr, BUF_WORD), M.to(tl.int64) * buf_row_words, tl.program_id(0) - first_program,
              tl.num_programs(0) - first_program, BLOCK_Z)


@triton.jit
def tile_assignment_range(tile, M, ROWS: tl.constexpr, K: tl.constexpr, BLOCK_N: tl.constexpr):
    """Flat assignments of row tile ``tile`` (token rows [tile*ROWS, (tile+1)*ROWS), t < M):
    -> (f, n_end), f = first + arange(BLOCK_N), valid where f < n_end."""
    f = tile * (ROWS * K) + tl.arange(0, BLOCK_N)
    return f, tl.minimum(M, (tile + 1) * ROWS) * K


@triton.jit
def place_tile_by_rows(
    ids_ptr, ids_stride_t, ids_stride_k, w_ptr, w_stride_t, w_stride_k, mask_ptr,  # inputs
    tile, M, E,
    rows,  # [BLOCK_E] int32: the tile's rows that chose each expert, as bits (tile_expert_rows)
    cursor, local,  # [BLOCK_E]: first slot of each expert for this tile; local expert ids
    sorted_ids_ptr, sorted_w_ptr, sorted_eids_ptr,  # outputs
    K: tl.constexpr, U: tl.constexpr, HAS_MASK: tl.constexpr, ROWS: tl.constexpr, BLOCK_N: tl.constexpr,
    VLLM: tl.constexpr,
):
    """Place row tile ``tile`` without sorting it: an assignment's slot is its expert's
    cursor + the popcount of the expert's row bits below the assignment's row."""
    f, n_end = tile_assignment_range(tile, M, ROWS, K, BLOCK_N)
    e, keep = load_assignments(ids_ptr, ids_stride_t, ids_stride_k, mask_ptr, f, n_end, E, K, HAS_MASK)
    w = load_weight_bits(w_ptr, w_stride_t, w_stride_k, f, n_end, K, VLLM)
    e_c = tl.where(keep, e, 0)
    below = (1 << (f // K - tile * ROWS)) - 1
    dest = tl.gather(cursor, e_c, 0) + popcount16(tl.gather(rows, e_c, 0) & below)
    store_placed(dest, keep, e_c, pack_token(f // K, f % K, K, VLLM), w, local, sorted_ids_ptr, sorted_w_ptr,
                 sorted_eids_ptr, U, VLLM)


@kernel
def tile_histogram_kernel(
    ids_ptr, ids_stride_t, ids_stride_k,  # (T, K) int32 or int64: input
    mask_ptr,  # (E,): input
    m_ptr,  # (1,) int32: input (when M_ON_DEVICE)
    hist_ptr,  # (tiles, BLOCK_E) int32: output, each tile's expert histogram
    buf_ptr, buf_row_words,  # moe_buf: output (when HAS_BUF)
    num_tiles, m_value, T, E,
    K: tl.constexpr, HAS_MASK: tl.constexpr, M_ON_DEVICE: tl.constexpr, HAS_BUF: tl.constexpr,
    BUF_WORD: tl.constexpr, BLOCK_E: tl.constexpr, ROWS: tl.constexpr, BLOCK_N: tl.constexpr,
    BLOCK_Z: tl.constexpr,
):
    """Grid: (tiles + Z,). Program p < tiles counts the kept experts of row tile p; programs
    tiles.. zero moe_buf."""
    pid = tl.program_id(0)
    M = local_token_count(m_ptr, m_value, T, M_ON_DEVICE)
    if pid < num_tiles:
        f, n_end = tile_assignment_range(pid, M, ROWS, K, BLOCK_N)
        e, keep = load_assignments(ids_ptr, ids_stride_t, ids_stride_k, mask_ptr, f, n_end, E, K, HAS_MASK)
        tl.store(hist_ptr + pid * BLOCK_E + tl.arange(0, BLOCK_E), tl.histogram(e, BLOCK_E, mask=keep))
    elif HAS_BUF:
        zero_moe_buf(buf_ptr, buf_row_words, M, num_tiles, BUF_WORD, BLOCK_Z)


@triton.jit
def tile_counts_of(h, BITS: tl.constexpr):
    """Expert counts of histogram entries: the entries, or (BITS) the rows set in each."""
    if BITS:
        h = popcount16(h)
    return h


@kernel
def tile_scan_kernel(
    hist_ptr,  # (tiles, BLOCK_E) int32: input, histograms (BITS: row bits, see tile_counts_of)
    prefix_ptr,  # (tiles, BLOCK_E) int32: output, exclusive prefix over earlier tiles (may be hist_ptr)
    counts_ptr,  # (BLOCK_E,) int32: output, every expert's total
    num_tiles,
    BLOCK_E: tl.constexpr, COLUMNS: tl.constexpr, ROWS_PER_STEP: tl.constexpr, BITS: tl.constexpr,
):
    """Grid: (BLOCK_E // COLUMNS,). Program g scans experts [g*COLUMNS, (g+1)*COLUMNS) down
    every tile, so no program walks the whole (tiles, E) table alone."""
    i_c = tl.program_id(0) * COLUMNS + tl.arange(0, COLUMNS)
    i_r = tl.arange(0, ROWS_PER_STEP)[:, None]
    running = tl.zeros([COLUMNS], dtype=tl.int32)
    for r0 in range(0, num_tiles, ROWS_PER_STEP):
        m_r = (r0 + i_r) < num_tiles
        o_h = (r0 + i_r) * BLOCK_E + i_c[None, :]
        h = tile_counts_of(tl.load(hist_ptr + o_h, mask=m_r, other=0), BITS)
        tl.store(prefix_ptr + o_h, running[None, :] + tl.cumsum(h, 0) - h, mask=m_r)
        running += tl.sum(h, axis=0)
    tl.store(counts_ptr + i_c, running)


@triton.jit
def tile_counts(hist_ptr, prefix_ptr, counts_ptr, tile, num_tiles, scanned,
                BLOCK_E: tl.constexpr, SCAN_ROWS: tl.constexpr, BITS: tl.constexpr):
    """-> (counts, before): every expert's total, and its entries in tiles before ``tile``.
    ``scanned``: tile_scan_kernel ran; else sum the histograms here (few tiles)."""
    i_e = tl.arange(0, BLOCK_E)
    if scanned:
        counts = tl.load(counts_ptr + i_e)
        o_h = tile * BLOCK_E + i_e
        before = tl.load(prefix_ptr + o_h, mask=o_h < num_tiles * BLOCK_E, other=0)  # none for the layout program
    else:
        i_r = tl.arange(0, SCAN_ROWS)[:, None]
        counts = tl.zeros([BLOCK_E], dtype=tl.int32)
        before = tl.zeros([BLOCK_E], dtype=tl.int32)
        for r0 in range(0, num_tiles, SCAN_ROWS):
            h = tl.load(hist_ptr + (r0 + i_r) * BLOCK_E + i_e[None, :], mask=(r0 + i_r) < num_tiles, other=0)
            h = tile_counts_of(h, BITS)
            counts += tl.sum(h, axis=0)
            before += tl.sum(tl.where((r0 + i_r) < tile, h, 0), axis=0)
    return counts, before


@kernel
def tile_place_kernel(
    ids_ptr, ids_stride_t, ids_stride_k,  # (T, K) int32 or int64: input
    w_ptr, w_stride_t, w_stride_k,  # (T, K) float32: input (not read in the vLLM layout)
    mask_ptr,  # (E,): input
    m_ptr,  # (1,) int32: input (when M_ON_DEVICE)
    hist_ptr,  # (tiles, BLOCK_E) int32: input, histograms (RANKED: each expert's rows as bits)
    prefix_ptr, counts_ptr,  # from tile_scan_kernel: input when ``scanned``
    sorted_ids_ptr, sorted_w_ptr, sorted_eids_ptr, num_valid_ptr,  # outputs (vLLM: sorted_w_ptr unused)
    n_sorted, n_blocks,  # lengths of sorted_ids / sorted_eids (read when VLLM)
    num_tiles, scanned, m_value, T, E,
    K: tl.constexpr, U: tl.constexpr, HAS_MASK: tl.constexpr, M_ON_DEVICE: tl.constexpr,
    BLOCK_E: tl.constexpr, ROWS: tl.constexpr, BLOCK_N: tl.constexpr, SCAN_ROWS: tl.constexpr,
    PAD_W: tl.constexpr, RANKED: tl.constexpr, VLLM: tl.constexpr,
):
    """Grid: (tiles + 1,). Every program derives the expert layout from the tile counts;
    program p < tiles places row tile p at start of expert + entries of the expert in
    earlier tiles + rank inside the tile (RANKED: a popcount of the expert's row bits below
    the assignment's row; else it sorts the tile); program ``tiles`` writes num_valid_ids and
    the padding (vLLM: and the tails)."""
    pid = tl.program_id(0)
    M = local_token_count(m_ptr, m_value, T, M_ON_DEVICE)
    counts, before = tile_counts(hist_ptr, prefix_ptr, counts_ptr, pid, num_tiles, scanned, BLOCK_E, SCAN_ROWS,
                                 RANKED)
    sorted_w_ptr = as_bits(sorted_w_ptr)
    if pid == num_tiles:
        write_layout(counts, mask_ptr, sorted_ids_ptr=sorted_ids_ptr, sorted_w_ptr=sorted_w_ptr,
                     sorted_eids_ptr=sorted_eids_ptr, num_valid_ptr=num_valid_ptr, n_sorted=n_sorted,
                     n_blocks=n_blocks, M=M, T=T, E=E, K=K, U=U, HAS_MASK=HAS_MASK, BLOCK_E=BLOCK_E,
                     PAD_W=PAD_W, VLLM=VLLM)
    else:
        _, starts, _, local = expert_layout(counts, mask_ptr, E, U, HAS_MASK, BLOCK_E)
        if RANKED:
            place_tile_by_rows(
                ids_ptr, ids_stride_t, ids_stride_k, as_bits(w_ptr), w_stride_t, w_stride_k, mask_ptr, pid, M, E,
                tl.load(hist_ptr + pid * BLOCK_E + tl.arange(0, BLOCK_E)), starts + before, local,
                sorted_ids_ptr=sorted_ids_ptr, sorted_w_ptr=sorted_w_ptr, sorted_eids_ptr=sorted_eids_ptr,
                K=K, U=U, HAS_MASK=HAS_MASK, ROWS=ROWS, BLOCK_N=BLOCK_N, VLLM=VLLM)
        else:
            f, n_end = tile_assignment_range(pid, M, ROWS, K, BLOCK_N)
            e, keep = load_assignments(ids_ptr, ids_stride_t, ids_stride_k, mask_ptr, f, n_end, E, K, HAS_MASK)
            w = load_weight_bits(as_bits(w_ptr), w_stride_t, w_stride_k, f, n_end, K, VLLM)
            e_s, i_s, w_s = sort_chunk(e, keep, w, BLOCK_E, BLOCK_N)
            f_s = pid * (ROWS * K) + i_s
            place_sorted(e_s, pack_token(f_s // K, f_s % K, K, VLLM), w_s, starts + before, local, sorted_ids_ptr,
                         sorted_w_ptr, sorted_eids_ptr, U=U, BLOCK_E=BLOCK_E, BLOCK_A=BLOCK_N, VLLM=VLLM)
