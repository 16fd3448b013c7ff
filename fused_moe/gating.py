"""Host side of top-k gating softmax: validate once per plan, allocate, launch."""
from . import buffers, geometry
from .gating_kernels import topk_gating_kernel
from .launcher import KernelLaunch
from .plans import PlanCache, plan_key
from .results import GatingResult
from .validation import LOGIT_DTYPES, as_flag, as_int, check_int, check_tensor, check_topk


def check_logits(logits, topk):
    check_tensor("logits", logits, dtypes=LOGIT_DTYPES, ndim=2)
    T, E = logits.shape
    check_int("num_experts (logits.shape[1])", E, 1)
    check_topk(topk, E)
    return T, E


_GATING_DYNAMIC = ("logits_ptr", "weights_ptr", "ids_ptr", "mask_ptr", "m_ptr", "hist_ptr", "buf_ptr")


def gating_launch(logits, topk, renormalize, sorting=None):
    """The launch that gates logits of this shape and these strides into (T, K) outputs.
    With ``sorting`` (the unfused route's SortingArgs) it also writes every tile's histogram
    as row bits (at least one tile, so the sort always has one) and zeroes moe_buf. Per call it takes
    _GATING_DYNAMIC (pass any tensor for the unused ones)."""
    T, E = logits.shape
    tile = geometry.gate_tile(E)
    tiles = geometry.cdiv(T, tile.block_t)
    static = dict(buf_row_words=0, m_value=T, HAS_MASK=False, M_ON_DEVICE=False, HAS_BUF=False, BUF_WORD=4,
                  BLOCK_Z=geometry.ZERO_BLOCK)
    if sorting is not None:
        static.update(sorting.static)
        tiles = max(1, tiles)
    static.update(stride_t=logits.stride(0), stride_e=logits.stride(1), num_gate_tiles=tiles, T=T, E=E, K=topk,
                  BLOCK_T=tile.block_t, BLOCK_E=tile.block_e, BLOCK_K=geometry.next_pow2(topk), RENORMALIZE=renormalize,
                  HIST=sorting is not None)
    zero = sorting.zero_programs if sorting is not None else 0
    return KernelLaunch(topk_gating_kernel, tiles + zero, tile.warps, _GATING_DYNAMIC, static)


class _GatingPlan:
    def __init__(self, logits, topk, renormalize):
        T, _ = check_logits(logits, topk)
        self.shape = (T, topk, logits.device)
        self.gate = gating_launch(logits, topk, renormalize)

    def __call__(self, logits):
        topk_weights, topk_ids = buffers.allocate_gating_outputs(*self.shape)
        self.gate(logits, topk_weights, topk_ids, topk_ids, topk_ids, topk_ids, topk_ids)
        return GatingResult(topk_weights, topk_ids)


_plans = PlanCache(_GatingPlan)


def topk_gating_softmax(logits, topk, *, renormalize=True):
    """Top-k gating softmax (SPEC section 1).

    logits: (T, E) float32/float16/bfloat16 tensor, any strides. Returns
    GatingResult(topk_weights (T, K) float32, topk_ids (T, K) int32): slot 0 holds the
    largest logit, ties go to the lower expert index, NaN ranks as -inf.
    """
    renormalize = as_flag("renormalize", renormalize)  # a bool in the key, whatever bool type came in
    topk = as_int("topk", topk)
    return _plans.get(plan_key(logits, topk, renormalize), logits, topk, renormalize)(logits)
