"""Host side of MoE sorting: validate once per plan, allocate, launch."""
import torch

from . import buffers, geometry
from .launcher import KernelLaunch
from .plans import PlanCache, plan_key
from .sorting_kernels import moe_sorting_kernel, tile_histogram_kernel, tile_place_kernel, tile_scan_kernel
from .validation import (MAX_TOPK_SORTED, as_int, as_local_tokens, check_int, check_same_device, check_tensor,
                         check_tokens, expert_mask_arg, kernel_pointers, local_tokens_arg, moe_buf_arg)

_SORT_INPUTS = ("ids_ptr", "w_ptr", "mask_ptr", "m_ptr")
_SORT_OUTPUTS = ("sorted_ids_ptr", "sorted_w_ptr", "sorted_eids_ptr", "num_valid_ptr")


class SortingArgs:
    """Validated sorting arguments in the form the kernels take: everything but addresses."""

    def __init__(self, T, K, E, unit_size, expert_mask, num_local_tokens, moe_buf, ref, layout):
        check_int("num_experts", E, 1)
        check_int("unit_size", unit_size, 1)
        check_tokens(T)
        self.T, self.K, self.E, self.U = T, K, E, unit_size
        self.layout = buffers.check_layout(layout)
        has_mask = expert_mask_arg(expert_mask, E, ref) is not None
        m_tensor, m_value = local_tokens_arg(num_local_tokens, T, ref)
        buf_word, buf_row_words = moe_buf_arg(moe_buf, T, ref)
        self.device = ref.device
        self.block_e = geometry.next_pow2(E)
        self.zero_programs = geometry.zero_programs(T, buf_row_words, ref.device) if moe_buf is not None else 0
        self.static = dict(
            buf_row_words=buf_row_words, m_value=m_value, T=T, E=E, K=K, U=unit_size,
            HAS_MASK=has_mask, M_ON_DEVICE=m_tensor is not None, HAS_BUF=moe_buf is not None,
            BUF_WORD=buf_word or 4, BLOCK_E=self.block_e, PAD_W=geometry.pad_width(unit_size, self.block_e),
            BLOCK_Z=geometry.ZERO_BLOCK, VLLM=layout == "vllm",
        )


class TiledPlacement:
    """The launches after the tile histograms: (column scan), then every tile placed in
    parallel (kernels in sorting_kernels.py). ``histogram`` is the launch that writes the
    histograms (and zeroes moe_buf); the caller owns it."""

    def __init__(self, args, tiling, ids_strides, w_strides, tail_lengths, ranked=False):
        """ranked: the histogram launch writes each tile's rows of each expert as bits (the
        unfused route's gating, tile_expert_rows); the placing programs then sort nothing."""
        self.tiling, self.block_e, self.device, self.ranked = tiling, args.block_e, args.device, ranked
        static = dict(args.static, **tail_lengths, ids_stride_t=ids_strides[0], ids_stride_k=ids_strides[1],
                      w_stride_t=w_strides[0], w_stride_k=w_strides[1], num_tiles=tiling.tiles, RANKED=ranked,
                      BITS=ranked,
                      scanned=int(tiling.scanned), ROWS=tiling.rows, BLOCK_N=tiling.block_n,
                      SCAN_ROWS=tiling.scan_rows, COLUMNS=tiling.scan_columns,
                      ROWS_PER_STEP=geometry.SCAN_ELEMENTS // tiling.scan_columns)
        self.scan = KernelLaunch(tile_scan_kernel, tiling.scan_programs if tiling.scanned else 0,
                                 geometry.SORT_WARPS, ("hist_ptr", "prefix_ptr", "counts_ptr"), static)
        self.place = KernelLaunch(tile_place_kernel, tiling.tiles + 1, geometry.SORT_WARPS,
                                  _SORT_INPUTS + ("hist_ptr", "prefix_ptr", "counts_ptr") + _SORT_OUTPUTS, static)
        self.static = static

    def workspace(self):
        """(histograms, prefixes, counts): int32, one allocation per call. The column scan
        writes its prefixes over the histograms, except row bits, which placing still reads."""
        n_hist = self.tiling.tiles * self.block_e
        n_prefix = n_hist if self.ranked and self.tiling.scanned else 0
        workspace = torch.empty(n_hist + n_prefix + self.block_e, dtype=torch.int32, device=self.device)
        hist = workspace[:n_hist]
        prefix = workspace[n_hist: n_hist + n_prefix] if n_prefix else hist
        return hist, prefix, workspace[n_hist + n_prefix:]

    def __call__(self, topk_ids, topk_weights, out, mask, m, hist, prefix, counts):
        self.scan(hist, prefix, counts)
        self.place(topk_ids, topk_weights, mask, m, hist, prefix, counts, *out)


class SortingPlan:
    """The launches that sort (T, K) topk tensors with these strides (and zero moe_buf)."""

    def __init__(self, args, ids_strides, w_strides, tail_lengths):
        """tail_lengths: n_sorted and n_blocks (buffers.tail_lengths)."""
        self.args = args
        self.single_program = geometry.single_program_sort(args.T)
        if self.single_program:
            block_a = geometry.sort_chunk(args.T, args.K)
            static = dict(args.static, **tail_lengths, ids_stride_t=ids_strides[0], ids_stride_k=ids_strides[1],
                          w_stride_t=w_strides[0], w_stride_k=w_strides[1], BLOCK_A=block_a,
                          SINGLE_CHUNK=args.T * args.K <= block_a)
            self.sort = KernelLaunch(moe_sorting_kernel, 1 + args.zero_programs, geometry.SORT_WARPS,
                                     _SORT_INPUTS + _SORT_OUTPUTS + ("buf_ptr",), static)
            return
        self.tiled = TiledPlacement(args, geometry.tiled_sort(args.T, args.K, args.E), ids_strides, w_strides,
                                    tail_lengths)
        self.histogram = KernelLaunch(tile_histogram_kernel, self.tiled.tiling.tiles + args.zero_programs,
                                      geometry.SORT_WARPS, ("ids_ptr", "mask_ptr", "m_ptr", "hist_ptr", "buf_ptr"),
                                      self.tiled.static)

    def __call__(self, topk_ids, topk_weights, out, mask, m, buf):
        """out: the four sorting buffers in the kernels' order (buffers.kernel_outputs). Small
        batches: one launch, program 0 sorts while programs 1.. zero moe_buf. Larger ones:
        histogram (+ zeroing), (column scan,) place: every tile in parallel."""
        if self.single_program:
            self.sort(topk_ids, topk_weights, mask, m, *out, buf)
            return
        hist, prefix, counts = self.tiled.workspace()
        self.histogram(topk_ids, mask, m, hist, buf)
        self.tiled(topk_ids, topk_weights, out, mask, m, hist, prefix, counts)


class _MoeSortingPlan:
    def __init__(self, topk_ids, topk_weights, num_experts, unit_size, expert_mask, num_local_tokens,
                 moe_buf, layout, out):
        check_tensor("topk_ids", topk_ids, dtypes=(torch.int32, torch.int64), ndim=2)
        check_tensor("topk_weights", topk_weights, dtypes=(torch.float32,), ndim=2)
        if topk_weights.shape != topk_ids.shape:
            raise ValueError(f"topk_weights must have the shape of topk_ids {tuple(topk_ids.shape)}, "
                             f"got {tuple(topk_weights.shape)}")
        check_same_device("topk_weights", topk_weights, topk_ids)
        T, K = topk_ids.shape
        check_int("topk (topk_ids.shape[1])", K, 1, MAX_TOPK_SORTED)
        args = SortingArgs(T, K, num_experts, unit_size, expert_mask, num_local_tokens, moe_buf, topk_ids, layout)
        if out is not None:
            buffers.check_sorting_out(out, T, K, num_experts, unit_size, args.device, layout)
        self.shape = (T, K, num_experts, unit_size, args.device, layout)
        self.layout, self.result = layout, buffers.result_types(layout)[0]
        self.sort = SortingPlan(args, topk_ids.stride(), topk_weights.stride(),
                                buffers.tail_lengths(out, T, K, num_experts, unit_size, layout))

    def __call__(self, topk_ids, topk_weights, expert_mask, num_local_tokens, moe_buf, out):
        out = buffers.allocate_sorting_outputs(*self.shape) if out is None else self.result(*out)
        self.sort(topk_ids, topk_weights, buffers.kernel_outputs(out, self.layout),
                  *kernel_pointers(expert_mask, num_local_tokens, moe_buf, out[-1]))
        return out


_plans = PlanCache(_MoeSortingPlan)


def moe_sorting(topk_ids, topk_weights, num_experts, *, unit_size=32, expert_mask=None,
                num_local_tokens=None, moe_buf=None, layout="ck", out=None):
    """MoE sorting (SPEC section 2); returns capacity-sized buffers.

    ``layout="ck"`` (CK / aiter): a SortingResult; only the valid prefixes
    (num_valid_ids[0] slots, num_valid_ids[0] // unit_size blocks) are written, the rest of
    each buffer is left untouched. ``layout="vllm"`` (vLLM's moe_align_block_size,
    oracles/layouts.py): a VllmSortingResult, every buffer written to its end (pad T*K,
    expert id -1); ``topk_weights`` is not read. ``num_local_tokens`` may be an int32
    device tensor, read by the kernel (no host sync; values are clamped to [0, T]).
    ``topk_ids`` may be int32 or int64 (what ``torch.topk`` returns); integer arguments may
    be any integer type but bool (NumPy integers included).
    """
    num_experts, unit_size = as_int("num_experts", num_experts), as_int("unit_size", unit_size)
    num_local_tokens = as_local_tokens(num_local_tokens)
    key = plan_key(topk_ids, topk_weights, num_experts, unit_size, expert_mask, num_local_tokens, moe_buf, layout,
                   out)
    plan = _plans.get(key, topk_ids, topk_weights, num_experts, unit_size, expert_mask, num_local_tokens,
                      moe_buf, layout, out)
    return plan(topk_ids, topk_weights, expert_mask, num_local_tokens, moe_buf, out)
