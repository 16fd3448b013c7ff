"""Triton code for the fused route (SPEC section 3): gating, sorting and moe_buf
zeroing in one launch. Only ``@triton.jit`` code.

Grid: (G + Z,).
- Programs [0, G) gate one tile of BLOCK_T rows each (``gating_rows``) and write
  topk_ids / topk_weights. With G == 1 (SINGLE_TILE) program 0 then sorts at once,
  reading its own rows back after a barrier. (Sorting the tile straight from registers
  measured slower on an H200: 10.4 against 7.5 us at T=1, see docs/notes.md.)
  With G > 1 each program takes a ticket from ``counter``; the last arriver, which
  waits on nobody (no spin-wait: the interpreter runs programs one after another),
  resets the counter for the next call or graph replay and sorts every assignment.
- Programs [G, G + Z) zero moe_buf rows [0, M), M read on the device: the
  data-dependent loop under a runtime branch of SPEC section 4.

Buffers: see gating_kernels.py and sorting_kernels.py; ``counter`` is one int32,
zero between calls.
"""
import triton
import triton.language as tl

from .gating_kernels import gating_rows
from .sorting_kernels import local_token_count, place_presorted, presort_tile, sort_assignments, zero_rows


@triton.jit
def fused_route_kernel(
    logits_ptr, stride_t, stride_e,  # (T, E) float32/float16/bfloat16: input
    weights_ptr,  # (T, K) float32: output, read back by the sorter
    ids_ptr,  # (T, K) int32: output, read back by the sorter
    mask_ptr,  # (E,): input
    m_ptr,  # (1,) int32: input, num_local_tokens on the device (when M_ON_DEVICE)
    sorted_ids_ptr, sorted_w_ptr, sorted_eids_ptr, num_valid_ptr,  # outputs
    counter_ptr,  # (1,) int32: arrival counter, zero between calls
    keys_ptr,  # (G, BLOCK_N) int64: workspace, presorted tiles (G > 1 only)
    hist_ptr,  # (G, BLOCK_E) int32: workspace, tile histograms, then placement deltas (G > 1 only)
    buf_ptr, buf_row_words,  # moe_buf as words: output (when HAS_BUF)
    m_value, T, E, num_gate_tiles,
    K: tl.constexpr, U: tl.constexpr, RENORMALIZE: tl.constexpr, HAS_MASK: tl.constexpr,
    M_ON_DEVICE: tl.constexpr, HAS_BUF: tl.constexpr, SINGLE_TILE: tl.constexpr,
    BLOCK_T: tl.constexpr, BLOCK_E: tl.constexpr, BLOCK_K: tl.constexpr,
    BLOCK_A: tl.constexpr, PAD_W: tl.constexpr, BLOCK_N: tl.constexpr, SCAN_ROWS: tl.constexpr,
    PLACE_BLOCK: tl.constexpr, SINGLE_CHUNK: tl.constexpr, BLOCK_Z: tl.constexpr,
):
    """Grid: (G + Z,). Program p < G owns gating rows [p*BLOCK_T, (p+1)*BLOCK_T); the one
    that sorts (p == 0 when G == 1, else the last arriver) owns every sorting output;
    programs p >= G zero moe_buf (see the module docstring)."""
    pid = tl.program_id(0)
    M = local_token_count(m_ptr, m_value, T, M_ON_DEVICE)
    if pid < num_gate_tiles:
        gating_rows(logits_ptr, stride_t, stride_e, weights_ptr, ids_ptr, pid * BLOCK_T, T, E,
                    K, BLOCK_T, BLOCK_E, BLOCK_K, RENORMALIZE)
        tl.debug_barrier()  # this program's topk rows are written before anyone reads them
        # Weights are float32 in memory; the sorter copies their bits as int32.
        w_bits = weights_ptr.to(tl.pointer_type(tl.int32))
        if SINGLE_TILE:
            sort_assignments(ids_ptr, K, 1, w_bits, K, 1, mask_ptr,
                             sorted_ids_ptr, sorted_w_ptr, sorted_eids_ptr, num_valid_ptr,
                             M, E, K, U, HAS_MASK, BLOCK_E, BLOCK_A, PAD_W, SINGLE_CHUNK, "")
        else:
            presort_tile(ids_ptr, w_bits, mask_ptr, keys_ptr, hist_ptr, pid, pid * BLOCK_T, M, E,
                         K, HAS_MASK, BLOCK_T, BLOCK_E, BLOCK_N)
            tl.debug_barrier()  # this tile's keys and histogram are written before its ticket says so
            ticket = tl.atomic_add(counter_ptr, 1, sem="acq_rel")
            if ticket == num_gate_tiles - 1:
                tl.store(counter_ptr, 0)
                place_presorted(keys_ptr, hist_ptr, mask_ptr, sorted_ids_ptr, sorted_w_ptr, sorted_eids_ptr,
                                num_valid_ptr, num_gate_tiles, M, E, K, U, HAS_MASK, BLOCK_T, BLOCK_E, BLOCK_N,
                                SCAN_ROWS, PAD_W, PLACE_BLOCK)
    elif HAS_BUF:
        zero_rows(buf_ptr, M.to(tl.int64) * buf_row_words, pid - num_gate_tiles,
                  tl.num_programs(0) - num_gate_tiles, BLOCK_Z)
