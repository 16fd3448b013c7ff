"""Host side of the fused route: gating + sorting (+ moe_buf zeroing) on one of two paths."""
import torch

from . import buffers, geometry
from .gating import check_logits, gating_launch
from .launcher import KernelLaunch
from .plans import PlanCache, plan_key
from .route_kernels import fused_route_kernel
from .sorting import SortingArgs, TiledPlacement
from .validation import MAX_TOPK_SORTED, as_flag, as_int, as_local_tokens, check_topk, kernel_pointers

_FUSED_DYNAMIC = ("logits_ptr", "weights_ptr", "ids_ptr", "mask_ptr", "m_ptr", "sorted_ids_ptr", "sorted_w_ptr",
                  "sorted_eids_ptr", "num_valid_ptr", "counter_ptr", "keys_ptr", "hist_ptr", "buf_ptr")


class _RoutePlan:
    def __init__(self, logits, topk, unit_size, renormalize, expert_mask, num_local_tokens, moe_buf, path, layout,
                 out):
        T, E = check_logits(logits, topk)
        check_topk(topk, E, MAX_TOPK_SORTED)
        args = SortingArgs(T, topk, E, unit_size, expert_mask, num_local_tokens, moe_buf, logits, layout)
        self.path = geometry.choose_path(path, T, E, topk, logits.device)
        if out is not None:
            buffers.check_route_out(out, T, topk, E, unit_size, logits.device, layout)
        self.shape = (T, topk, E, unit_size, logits.device, layout)
        self.layout, self.result = layout, buffers.result_types(layout)[1]
        tails = buffers.tail_lengths(None if out is None else out[2:], T, topk, E, unit_size, layout)
        if self.path == "fused":
            self._plan_fused(logits, renormalize, args, tails)
        else:  # gating writes the tile histograms the tiled sort places from
            self.gate = gating_launch(logits, topk, renormalize, args)
            rows = geometry.gate_tile(E).block_t
            self.sort = TiledPlacement(args, geometry.tiled_sort(T, topk, E, rows), (topk, 1), (topk, 1), tails,
                                       ranked=True)

    def _plan_fused(self, logits, renormalize, args, tails):
        fused = geometry.fused_tile(args.T, args.K, args.E)
        self.gate_tiles, self.block_n, self.block_e = fused.tiles, fused.block_n, fused.gate.block_e
        self.fused = KernelLaunch(
            fused_route_kernel, fused.tiles + args.zero_programs, fused.warps, _FUSED_DYNAMIC,
            dict(args.static, **tails, stride_t=logits.stride(0), stride_e=logits.stride(1),
                 num_gate_tiles=fused.tiles, RENORMALIZE=renormalize, SINGLE_TILE=fused.tiles == 1,
                 BLOCK_T=fused.gate.block_t, BLOCK_K=geometry.next_pow2(args.K), BLOCK_N=fused.block_n,
                 SCAN_ROWS=fused.scan_rows, PLACE_BLOCK=geometry.PLACE_BLOCK, SORT_FROM_REGISTERS=fused.registers,
                 BLOCK_A=fused.block_a, SINGLE_CHUNK=fused.tiles > 1 or args.T * args.K <= fused.block_a),
        )

    def __call__(self, logits, expert_mask, num_local_tokens, moe_buf, out):
        out = buffers.allocate_route_outputs(*self.shape) if out is None else self.result(*out)
        mask, m, buf = kernel_pointers(expert_mask, num_local_tokens, moe_buf, out[-1])
        sorting = buffers.kernel_outputs(out[2:], self.layout)
        if self.path != "fused":
            hist, prefix, counts = self.sort.workspace()
            self.gate(logits, out.topk_weights, out.topk_ids, mask, m, hist, buf)
            self.sort(out.topk_ids, out.topk_weights, sorting, mask, m, hist, prefix, counts)
            return out
        if self.gate_tiles > 1:
            tiles, block_n = self.gate_tiles, self.block_n
            workspace = torch.empty(tiles * block_n + tiles * self.block_e // 2 + 1, dtype=torch.int64,
                                    device=logits.device)
            keys, hist = workspace[: tiles * block_n], workspace[tiles * block_n:].view(torch.int32)
            counter = buffers.arrival_counter(logits.device)
        else:  # one tile: no workspace, no counter
            keys = hist = counter = out[-1]
        self.fused(logits, out.topk_weights, out.topk_ids, mask, m, *sorting, counter, keys, hist, buf)
        return out


_plans = PlanCache(_RoutePlan)


def route(logits, topk, *, unit_size=32, renormalize=True, expert_mask=None, num_local_tokens=None,
          moe_buf=None, path="auto", layout="ck", out=None):
    """Gating softmax then MoE sorting (SPEC section 3), bit-for-bit equal to
    ``moe_sorting(*topk_gating_softmax(logits, topk), layout=layout)`` on every path:
    "fused" (one launch), "unfused" (separate kernels) or "auto" (by shape and device).
    ``layout="ck"`` returns a RouteResult, ``layout="vllm"`` a VllmRouteResult (see moe_sorting).
    """
    renormalize = as_flag("renormalize", renormalize)  # a bool in the key, whatever bool type came in
    topk, unit_size = as_int("topk", topk), as_int("unit_size", unit_size)
    num_local_tokens = as_local_tokens(num_local_tokens)
    key = plan_key(logits, topk, unit_size, renormalize, expert_mask, num_local_tokens, moe_buf, path, layout, out)
    plan = _plans.get(key, logits, topk, unit_size, renormalize, expert_mask, num_local_tokens, moe_buf, path,
                      layout, out)
    return plan(logits, expert_mask, num_local_tokens, moe_buf, out)
