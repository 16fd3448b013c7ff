"""Host side of top-k gating softmax: validate, allocate, launch."""
import torch

from . import config
from .gating_kernels import topk_gating_kernel
from .results import GatingResult
from .validation import LOGIT_DTYPES, check_int, check_tensor, check_topk


def check_logits(logits, topk):
    check_tensor("logits", logits, dtypes=LOGIT_DTYPES, ndim=2)
    T, E = logits.shape
    check_int("num_experts (logits.shape[1])", E, 1)
    check_topk(topk, E)
    return T, E


def launch_gating(logits, topk, renormalize, topk_weights, topk_ids):
    T, E = logits.shape
    block_t, block_e, block_k = config.gate_tile(E, topk, T)
    if T == 0:
        return
    topk_gating_kernel[(config.cdiv(T, block_t),)](
        logits, logits.stride(0), logits.stride(1), topk_weights, topk_ids, T, E,
        K=topk, BLOCK_T=block_t, BLOCK_E=block_e, BLOCK_K=block_k, RENORMALIZE=bool(renormalize),
        num_warps=config.gate_warps(block_t, block_e),
    )


def topk_gating_softmax(logits, topk, *, renormalize=True):
    """Top-k gating softmax (SPEC section 1).

    logits: (T, E) float32/float16/bfloat16 tensor, any strides. Returns
    GatingResult(topk_weights (T, K) float32, topk_ids (T, K) int32): slot 0 holds the
    largest logit, ties go to the lower expert index, NaN ranks as -inf.
    """
    T, E = check_logits(logits, topk)
    topk_weights = torch.empty((T, topk), dtype=torch.float32, device=logits.device)
    topk_ids = torch.empty((T, topk), dtype=torch.int32, device=logits.device)
    launch_gating(logits, topk, renormalize, topk_weights, topk_ids)
    return GatingResult(topk_weights, topk_ids)
