"""Host side of MoE sorting: validate, allocate, launch."""
import torch

from . import buffers, config
from .results import SortingResult
from .dispatch import DISPATCH_THRESHOLDS
from .sorting_kernels import moe_sorting_kernel, tile_histogram_kernel, tile_offsets_kernel, tile_scatter_kernel
from .validation import (MAX_TOPK_SORTED, check_int, check_same_device, check_tensor, check_tokens,
                         expert_mask_arg, local_tokens_arg, moe_buf_arg)


class SortingArgs:
    """Validated sorting arguments in the form the kernels take."""

    def __init__(self, T, K, E, unit_size, expert_mask, num_local_tokens, moe_buf, ref):
        check_int("num_experts", E, 1)
        check_int("unit_size", unit_size, 1)
        check_tokens(T)
        self.T, self.K, self.E, self.U = T, K, E, unit_size
        self.mask = expert_mask_arg(expert_mask, E, ref)
        self.m_tensor, self.m_value = local_tokens_arg(num_local_tokens, T, ref)
        self.buf, self.buf_row_words = moe_buf_arg(moe_buf, T, ref)
        self.device = ref.device
        self.block_e = config.next_pow2(E)
        self.block_a = config.sort_chunk(T, K)
        self.zero_programs = config.zero_programs(T, self.buf_row_words, ref.device) if self.buf is not None else 0

    def outputs(self, out):
        if out is None:
            return buffers.allocate_sorting_outputs(self.T, self.K, self.E, self.U, self.device)
        return buffers.check_sorting_out(out, self.T, self.K, self.E, self.U, self.device)

    def kernel_args(self, dummy):
        """Pointer / flag arguments shared by every sorting launch."""
        return dict(
            mask_ptr=dummy if self.mask is None else self.mask,
            m_ptr=dummy if self.m_tensor is None else self.m_tensor,
            buf_ptr=dummy if self.buf is None else self.buf,
            buf_row_words=self.buf_row_words,
            m_value=self.m_value, T=self.T, E=self.E,
            K=self.K, U=self.U, HAS_MASK=self.mask is not None, M_ON_DEVICE=self.m_tensor is not None,
            HAS_BUF=self.buf is not None, BLOCK_E=self.block_e, BLOCK_A=self.block_a,
            PAD_W=config.pad_width(self.U, self.block_e), BLOCK_Z=config.ZERO_BLOCK,
            SINGLE_CHUNK=self.T * self.K <= self.block_a,
        )


def launch_sorting(args, topk_ids, topk_weights, out):
    """Small batches: one launch, program 0 sorts while programs 1.. zero moe_buf.
    Larger ones: histogram, scan and scatter launches, every tile in parallel."""
    w_bits = topk_weights.view(torch.int32)
    inputs = (topk_ids, topk_ids.stride(0), topk_ids.stride(1), w_bits, w_bits.stride(0), w_bits.stride(1))
    if args.T <= DISPATCH_THRESHOLDS["sort_single_program"]:
        moe_sorting_kernel[(1 + args.zero_programs,)](
            *inputs,
            sorted_ids_ptr=out.sorted_token_ids, sorted_w_ptr=out.sorted_weights.view(torch.int32),
            sorted_eids_ptr=out.sorted_expert_ids, num_valid_ptr=out.num_valid_ids,
            **args.kernel_args(out.num_valid_ids),
            num_warps=4,
        )
        return
    _launch_tiled(args, inputs, out)


def _launch_tiled(args, inputs, out):
    common = args.kernel_args(out.num_valid_ids)
    block_s = args.block_a  # T > sort_single_program, so a full chunk of assignments per tile
    tiles = config.cdiv(args.T * args.K, block_s)
    workspace = torch.empty((tiles + 1) * args.block_e, dtype=torch.int32, device=args.device)
    tile_base, local = workspace[: tiles * args.block_e], workspace[tiles * args.block_e:]
    pick = lambda *names: {name: common[name] for name in names}
    flags = pick("mask_ptr", "m_ptr", "m_value", "T", "E", "K", "HAS_MASK", "M_ON_DEVICE", "BLOCK_E")
    tile_histogram_kernel[(tiles,)](*inputs[:3], tile_base_ptr=tile_base, BLOCK_S=block_s, **flags, num_warps=4)
    tile_offsets_kernel[(1 + args.zero_programs,)](
        tile_base, local, sorted_ids_ptr=out.sorted_token_ids, sorted_w_ptr=out.sorted_weights.view(torch.int32),
        num_valid_ptr=out.num_valid_ids, num_tiles=tiles,
        SCAN_ROWS=min(config.next_pow2(tiles), max(1, 8192 // args.block_e)),
        **flags, **pick("buf_ptr", "buf_row_words", "U", "HAS_BUF", "PAD_W", "BLOCK_Z"), num_warps=4,
    )
    tile_scatter_kernel[(tiles,)](
        *inputs, tile_base_ptr=tile_base, local_ptr=local,
        sorted_ids_ptr=out.sorted_token_ids, sorted_w_ptr=out.sorted_weights.view(torch.int32),
        sorted_eids_ptr=out.sorted_expert_ids, BLOCK_S=block_s, U=args.U, **flags, num_warps=4,
    )


def moe_sorting(topk_ids, topk_weights, num_experts, *, unit_size=32, expert_mask=None,
                num_local_tokens=None, moe_buf=None, out=None):
    """MoE sorting in the CK / aiter layout (SPEC section 2); returns capacity-sized buffers.

    Only the valid prefixes (num_valid_ids[0] slots, num_valid_ids[0] // unit_size blocks)
    are written; the rest of each buffer is left untouched. ``num_local_tokens`` may be an
    int32 device tensor, read by the kernel (no host sync; values are clamped to [0, T]).
    """
    check_tensor("topk_ids", topk_ids, dtypes=(torch.int32,), ndim=2)
    check_tensor("topk_weights", topk_weights, dtypes=(torch.float32,), ndim=2)
    if topk_weights.shape != topk_ids.shape:
        raise ValueError(f"topk_weights must have the shape of topk_ids {tuple(topk_ids.shape)}, "
                         f"got {tuple(topk_weights.shape)}")
    check_same_device("topk_weights", topk_weights, topk_ids)
    T, K = topk_ids.shape
    check_int("topk (topk_ids.shape[1])", K, 1, MAX_TOPK_SORTED)
    args = SortingArgs(T, K, num_experts, unit_size, expert_mask, num_local_tokens, moe_buf, topk_ids)
    out = args.outputs(out)
    launch_sorting(args, topk_ids, topk_weights, out)
    return SortingResult(*out)
