"""Triton code for the fused route (SPEC section 3): gating, sorting and moe_buf
zeroing in one launch. Only ``@triton.jit`` code.

Grid: (G + Z,).
- Programs [0, G) gate one tile of BLOCK_T rows each and write topk_ids / topk_weights.
  With G == 1 (SINGLE_TILE) program 0 also sorts, one of two ways (geometry.sort_from_registers):
  straight from the gating tile's registers, where an assignment's place inside its
  expert is a popcount over the earlier rows (``tile_assignments``; fastest for 1-2 rows),
  or by reading its rows back after a barrier and sorting them (``sort_assignments``).
  With G > 1 each program sorts its own tile (``presort_tile``) and takes a ticket from
  ``counter``; the last arriver, which waits on nobody (no spin-wait: the interpreter
  runs programs one after another), resets the counter for the next call or graph
  replay and places every tile.
- Programs [G, G + Z) zero moe_buf rows [0, M), M read on the device: the
  data-dependent loop under a runtime branch of SPEC section 4.

Buffers: see gating_kernels.py and sorting_kernels.py (both sorting layouts, CK and
vLLM, by the ``VLLM`` constexpr); ``counter`` is one int32, zero between calls.
"""
import triton
import triton.language as tl

from .gating_kernels import gating_rows, tile_assignments, tile_weights
from .geometry import kernel
from .sorting_kernels import (as_bits, local_token_count, pack_token, place_presorted, presort_tile, sort_assignments,
                              write_layout, zero_moe_buf)


@triton.jit
def route_single_tile(
    logits_ptr, stride_t, stride_e, weights_ptr, ids_ptr, mask_ptr,
    sorted_ids_ptr, sorted_w_ptr, sorted_eids_ptr, num_valid_ptr, n_sorted, n_blocks, M, T, E,
    K: tl.constexpr, U: tl.constexpr, RENORMALIZE: tl.constexpr, HAS_MASK: tl.constexpr,
    BLOCK_T: tl.constexpr, BLOCK_E: tl.constexpr, BLOCK_K: tl.constexpr, PAD_W: tl.constexpr, VLLM: tl.constexpr,
):
    """Gate all T <= BLOCK_T rows and sort them from registers: slot = start of the expert
    + rank among earlier rows. No sort, no scan over assignments, no memory round trip."""
    tl.static_assert(BLOCK_T <= 16, "tile_assignments packs a tile's rows into 16 bits")
    i_t, x, x_max, denom, packed = gating_rows(logits_ptr, stride_t, stride_e, weights_ptr, ids_ptr, 0, T, E,
                                               K, BLOCK_T, BLOCK_E, BLOCK_K, RENORMALIZE)
    sel, slot, rank, counts = tile_assignments(packed, i_t, 0, M, mask_ptr, E, HAS_MASK, BLOCK_E)
    starts, local = write_layout(
        counts, mask_ptr, sorted_ids_ptr=sorted_ids_ptr, sorted_w_ptr=sorted_w_ptr, sorted_eids_ptr=sorted_eids_ptr,
        num_valid_ptr=num_valid_ptr, n_sorted=n_sorted, n_blocks=n_blocks, M=M, T=T, E=E, K=K, U=U,
        HAS_MASK=HAS_MASK, BLOCK_E=BLOCK_E, PAD_W=PAD_W, VLLM=VLLM)
    dest = starts[None, :] + rank
    tl.store(sorted_ids_ptr + dest, pack_token(i_t[:, None], slot, K, VLLM), mask=sel)
    if not VLLM:
        tl.store(sorted_w_ptr + dest, tile_weights(x, x_max, denom).to(tl.int32, bitcast=True), mask=sel)
    head = sel & (dest % U == 0)  # padding only ends a run, so every block starts with a real entry
    tl.store(sorted_eids_ptr + dest // U, tl.broadcast_to(local[None, :], [BLOCK_T, BLOCK_E]), mask=head)


@kernel
def fused_route_kernel(
    logits_ptr, stride_t, stride_e,  # (T, E) float32/float16/bfloat16: input
    weights_ptr,  # (T, K) float32: output
    ids_ptr,  # (T, K) int32: output
    mask_ptr,  # (E,): input
    m_ptr,  # (1,) int32: input, num_local_tokens on the device (when M_ON_DEVICE)
    sorted_ids_ptr, sorted_w_ptr, sorted_eids_ptr, num_valid_ptr,  # outputs (vLLM: sorted_w_ptr unused)
    counter_ptr,  # (1,) int32: arrival counter, zero between calls
    keys_ptr,  # (G, BLOCK_N) int64: workspace, presorted tiles (G > 1 only)
    hist_ptr,  # (G, BLOCK_E) int32: workspace, tile histograms, then placement deltas (G > 1 only)
    buf_ptr, buf_row_words,  # moe_buf: output, zeroed as BUF_WORD-byte words (when HAS_BUF)
    n_sorted, n_blocks,  # lengths of sorted_ids / sorted_eids (read when VLLM)
    m_value, T, E, num_gate_tiles,
    K: tl.constexpr, U: tl.constexpr, RENORMALIZE: tl.constexpr, HAS_MASK: tl.constexpr,
    M_ON_DEVICE: tl.constexpr, HAS_BUF: tl.constexpr, BUF_WORD: tl.constexpr, SINGLE_TILE: tl.constexpr,
    BLOCK_T: tl.constexpr, BLOCK_E: tl.constexpr, BLOCK_K: tl.constexpr,
    PAD_W: tl.constexpr, BLOCK_N: tl.constexpr, SCAN_ROWS: tl.constexpr, PLACE_BLOCK: tl.constexpr,
    BLOCK_Z: tl.constexpr, SORT_FROM_REGISTERS: tl.constexpr, BLOCK_A: tl.constexpr, SINGLE_CHUNK: tl.constexpr,
    VLLM: tl.constexpr,
):
    """Grid: (G + Z,). Program p < G owns gating rows [p*BLOCK_T, (p+1)*BLOCK_T); the one
    that sorts (p == 0 when G == 1, else the last arriver) owns every sorting output;
    programs p >= G zero moe_buf (see the module docstring)."""
    pid = tl.program_id(0)
    M = local_token_count(m_ptr, m_value, T, M_ON_DEVICE)
    sorted_w_ptr = as_bits(sorted_w_ptr)
    if pid < num_gate_tiles:
        if SINGLE_TILE and not SORT_FROM_REGISTERS:
            # Sorting the rows read back measured faster here than ranking them by row bits
            # (tile_expert_rows + place_tile_by_rows) at 4-16 rows: docs/notes.md, v7.
            gating_rows(logits_ptr, stride_t, stride_e, weights_ptr, ids_ptr, 0, T, E, K, BLOCK_T, BLOCK_E, BLOCK_K,
                        RENORMALIZE)
            tl.debug_barrier()  # the topk rows are written before they are read back
            sort_assignments(
                ids_ptr, K, 1, as_bits(weights_ptr), K, 1, mask_ptr, sorted_ids_ptr=sorted_ids_ptr,
                sorted_w_ptr=sorted_w_ptr, sorted_eids_ptr=sorted_eids_ptr, num_valid_ptr=num_valid_ptr,
                n_sorted=n_sorted, n_blocks=n_blocks, M=M, T=T, E=E, K=K, U=U, HAS_MASK=HAS_MASK, BLOCK_E=BLOCK_E,
                BLOCK_A=BLOCK_A, PAD_W=PAD_W, SINGLE_CHUNK=SINGLE_CHUNK, VLLM=VLLM)
        elif SINGLE_TILE:
            route_single_tile(
                logits_ptr, stride_t, stride_e, weights_ptr, ids_ptr, mask_ptr, sorted_ids_ptr=sorted_ids_ptr,
                sorted_w_ptr=sorted_w_ptr, sorted_eids_ptr=sorted_eids_ptr, num_valid_ptr=num_valid_ptr,
                n_sorted=n_sorted, n_blocks=n_blocks, M=M, T=T, E=E, K=K, U=U, RENORMALIZE=RENORMALIZE,
                HAS_MASK=HAS_MASK, BLOCK_T=BLOCK_T, BLOCK_E=BLOCK_E, BLOCK_K=BLOCK_K, PAD_W=PAD_W, VLLM=VLLM)
        else:
            gating_rows(logits_ptr, stride_t, stride_e, weights_ptr, ids_ptr, pid * BLOCK_T, T, E,
                        K, BLOCK_T, BLOCK_E, BLOCK_K, RENORMALIZE)
            tl.debug_barrier()  # this program's topk rows are written before it reads them back
            presort_tile(ids_ptr, as_bits(weights_ptr), mask_ptr, keys_ptr, hist_ptr, pid, pid * BLOCK_T, M, E,
                         K=K, HAS_MASK=HAS_MASK, BLOCK_T=BLOCK_T, BLOCK_E=BLOCK_E, BLOCK_N=BLOCK_N, VLLM=VLLM)
            tl.debug_barrier()  # this tile's keys and histogram are written before its ticket says so
            ticket = tl.atomic_add(counter_ptr, 1, sem="acq_rel")
            if ticket == num_gate_tiles - 1:
                tl.store(counter_ptr, 0)
                place_presorted(
                    keys_ptr, hist_ptr, mask_ptr, sorted_ids_ptr=sorted_ids_ptr, sorted_w_ptr=sorted_w_ptr,
                    sorted_eids_ptr=sorted_eids_ptr, num_valid_ptr=num_valid_ptr, n_sorted=n_sorted,
                    n_blocks=n_blocks, num_tiles=num_gate_tiles, M=M, T=T, E=E, K=K, U=U, HAS_MASK=HAS_MASK,
                    BLOCK_T=BLOCK_T, BLOCK_E=BLOCK_E, BLOCK_N=BLOCK_N, SCAN_ROWS=SCAN_ROWS, PAD_W=PAD_W,
                    PLACE_BLOCK=PLACE_BLOCK, VLLM=VLLM)
    elif HAS_BUF:
        zero_moe_buf(buf_ptr, buf_row_words, M, num_gate_tiles, BUF_WORD, BLOCK_Z)
