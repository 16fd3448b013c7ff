"""vLLM's CUDA ``topk_softmax`` and ``moe_align_block_size`` on our signatures (CUDA only).

Sources (vllm-project/vllm; Python side checked in the vllm 0.33.0 wheel):

* ``vllm/_custom_ops.py``: ``topk_softmax(topk_weights, topk_ids, token_expert_indices,
  gating_output, renormalize=False, e_score_correction_bias=None, is_padding=None)`` and
  ``moe_align_block_size(topk_ids, num_experts, block_size, sorted_token_ids, experts_ids,
  num_tokens_post_pad, expert_map=None, scatter_idx=None)``: both write into caller buffers.
* ``vllm/model_executor/layers/fused_moe/router/fused_topk_router.py: fused_topk``: the caller
  allocates ``topk_weights`` float32 [T, K], ``topk_ids`` int32 [T, K] (int64/uint32 accepted).
* ``vllm/model_executor/layers/fused_moe/moe_align_block_size.py``: buffers are
  ``torch.empty``: ``T*K + E*(U-1)`` slots (``min`` with ``T*K*U`` when ``T*K < E``),
  ``ceil(slots / U)`` blocks, ``num_tokens_post_pad`` int32 [1].
* ``csrc/libtorch_stable/moe/topk_softmax_kernels.cu`` (commit 7bdc15d): softmax in
  float32 first, then top-k on the PROBABILITIES; equal values -> lower index (butterfly
  reduce "lower indices win"; ``cub::ArgMax`` in the generic path); NaN/Inf
  probabilities are clamped to 0 -- a NaN or +inf logit zeroes the whole row, which then
  selects ids 0..K-1 with weight 0 (outside our domain: SPEC gives limit semantics);
  renormalize divides by the selected sum (``1`` if it is 0). Fused path for E in
  {1..512 powers of two} and {192, 320, 384, 448, 576}; any other E goes through a
  [T, E] float32 workspace. Rows are read as ``row * E``: contiguous rows only (we pass
  ``.contiguous()``). fp32 / fp16 / bf16 logits.
* ``csrc/libtorch_stable/moe/moe_align_sum_kernels.cu`` (commit 112a7fb):
  ``sorted_token_ids`` holds the flat index ``t*K + j``, EVERY slot of the buffer is first
  set to ``numel``; blocks past the end get ``-1`` (``inactive_expert_id``; older
  versions wrote 0, e.g. commit 1377b4e of csrc/moe/moe_align_sum_kernels.cu);
  ``get_local_expert_id`` drops ids ``< 0`` or ``>= E``; duplicates counted separately;
  order inside an expert: atomics (count_and_sort kernel) or per-thread strided order
  (small-batch kernel) -> unordered. ``padded_num_experts < 1024`` -> E <= 992.
  Small-batch kernel when ``numel < 1024 and E <= 64``.
* ``tests/kernels/moe/test_moe_align_block_size.py`` (commit d29a69a): checks ids per
  expert as sets ("may or may not preserve original token order"), draws distinct ids per
  row (``randperm``), E in {32, 160, 256, 257}, K up to 32.
"""
from __future__ import annotations

import importlib.util

from fuzz import buffers
from fuzz.conventions import load


def available() -> bool:
    try:
        if importlib.util.find_spec("vllm") is None:
            return False
        import torch
        if not torch.cuda.is_available():
            return False
        import vllm._custom_ops  # noqa: F401
        return True
    except Exception:  # noqa: BLE001 - availability probes must not raise
        return False


def topk_softmax(logits, topk, *, renormalize=True):
    from vllm import _custom_ops as ops
    T = logits.shape[0]
    w, ids, tei = buffers.fresh_gating(T, topk, logits.device, token_expert_indices=True)
    ops.topk_softmax(w, ids, tei, logits.contiguous(), renormalize)
    return {"topk_weights": w, "topk_ids": ids}


def moe_align_block_size(topk_ids, topk_weights, num_experts, *, unit_size=32, out=None):
    from vllm import _custom_ops as ops
    del topk_weights
    if out is None:
        out = buffers.fresh("vllm", "vllm", *topk_ids.shape, num_experts, unit_size, topk_ids.device)
    ops.moe_align_block_size(topk_ids, num_experts, unit_size, *out)
    return buffers.as_fields("vllm", out)


topk_softmax.convention = load({
    "name": "vllm.topk_softmax", "op": "gating", "ties": "lower", "selection": "probabilities",
    "weights": "softmax", "renormalize": "argument", "weights_dtype": "float32", "nan": "outside_domain",
    "domain": {"supports": [], "dtypes": ["float32", "float16", "bfloat16"]},
})
moe_align_block_size.convention = load({
    "base": "vllm", "name": "vllm.moe_align_block_size", "op": "sorting", "order": "unordered",
    "invalid_ids": "drop", "duplicates": "keep", "capacity": "vllm", "tail": "filled",
    "domain": {"max_experts": 992, "supports": ["out"], "assignment_boundaries": [1024]},
})

TARGETS = {"vllm.topk_softmax": topk_softmax, "vllm.moe_align_block_size": moe_align_block_size}
