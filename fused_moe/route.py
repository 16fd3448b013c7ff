"""Host side of the fused route: gating + sorting (+ moe_buf zeroing) on one of two paths."""
import torch

from . import buffers, config
from .dispatch import choose_path
from .gating import check_logits, launch_gating
from .results import SortingResult
from .route_kernels import fused_route_kernel
from .sorting import SortingArgs, launch_sorting
from .validation import MAX_TOPK_SORTED, check_topk


def route(logits, topk, *, unit_size=32, renormalize=True, expert_mask=None, num_local_tokens=None,
          moe_buf=None, path="auto", out=None):
    """Gating softmax then MoE sorting (SPEC section 3), bit-for-bit equal to
    ``moe_sorting(*topk_gating_softmax(logits, topk))`` on every path:
    "fused" (one launch), "unfused" (separate kernels) or "auto" (by shape and device).
    """
    T, E = check_logits(logits, topk)
    check_topk(topk, E, MAX_TOPK_SORTED)
    args = SortingArgs(T, topk, E, unit_size, expert_mask, num_local_tokens, moe_buf, logits)
    chosen = choose_path(path, T, E, topk, logits.device)
    if out is None:
        out = buffers.allocate_route_outputs(T, topk, E, unit_size, logits.device)
    else:
        out = buffers.check_route_out(out, T, topk, E, unit_size, logits.device)
    if chosen == "fused":
        _launch_fused(logits, renormalize, args, out)
    else:
        launch_gating(logits, topk, renormalize, out.topk_weights, out.topk_ids)
        launch_sorting(args, out.topk_ids, out.topk_weights, SortingResult(*out[2:]))
    return out


def _launch_fused(logits, renormalize, args, out):
    block_t, block_e, block_k = config.gate_tile(args.E, args.K, args.T)
    gate_tiles = max(1, config.cdiv(args.T, block_t))
    block_n = config.next_pow2(block_t * args.K)
    if gate_tiles > 1:
        workspace = torch.empty(gate_tiles * block_n + gate_tiles * block_e // 2 + 1, dtype=torch.int64,
                                device=logits.device)
        keys, hist = workspace[: gate_tiles * block_n], workspace[gate_tiles * block_n:].view(torch.int32)
    else:
        keys = hist = out.num_valid_ids  # never read: SINGLE_TILE sorts from the topk outputs
    fused_route_kernel[(gate_tiles + args.zero_programs,)](
        logits, logits.stride(0), logits.stride(1),
        weights_ptr=out.topk_weights, ids_ptr=out.topk_ids,
        sorted_ids_ptr=out.sorted_token_ids, sorted_w_ptr=out.sorted_weights.view(torch.int32),
        sorted_eids_ptr=out.sorted_expert_ids, num_valid_ptr=out.num_valid_ids,
        counter_ptr=buffers.arrival_counter(logits.device), keys_ptr=keys, hist_ptr=hist,
        num_gate_tiles=gate_tiles,
        RENORMALIZE=bool(renormalize), SINGLE_TILE=gate_tiles == 1,
        BLOCK_T=block_t, BLOCK_K=block_k, BLOCK_N=block_n,
        SCAN_ROWS=min(config.next_pow2(gate_tiles), max(1, 4096 // block_e)),
        PLACE_BLOCK=config.PLACE_BLOCK,
        **args.kernel_args(out.num_valid_ids),
        num_warps=max(4, config.gate_warps(block_t, block_e)),  # the sort wants 4 warps
    )
