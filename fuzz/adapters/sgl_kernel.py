"""sgl-kernel's CUDA ``topk_softmax`` and ``moe_align_block_size`` on our signatures (CUDA only).

Sources: ``sgl_kernel/moe.py`` in the sgl-kernel 0.3.21 wheel (signatures); the kernels
themselves as shipped (unchanged, per its header) in the sglang 0.5.23 wheel:
``sglang/kernels/jit/csrc/moe/moe_topk_softmax.cuh`` and ``.../moe/moe_align_kernel.cu``;
the caller ``sglang/srt/layers/moe/moe_runner/triton_utils/moe_align_block_size.py``.

``topk_softmax(topk_weights, topk_ids, gating_output, renormalize=False,
moe_softcapping=0.0, correction_bias=None)``: caller buffers float32 / int32 [T, K].
Softmax in float32, top-k on the probabilities. Power-of-two E <= 512: per-row warp
argmax, equal values -> lower index. Any other E: a [T*E] workspace, then
``moeTopK`` (K == 1, ``cub::ArgMax``: lower index) or ``moeTopKFast`` (K >= 2: two winners
per round, ``TopKPairArgMax`` keeps the second candidate on equal values -> tie order
depends on the reduction tree: ``any``). No NaN guard (NaN weights); renormalize is
``1 / sum`` with no zero guard. Contiguous rows (``row * E`` addressing).

``moe_align_block_size(topk_ids, num_experts, block_size, sorted_token_ids, experts_ids,
num_tokens_post_pad, cumsum_buffer, pad_sorted_token_ids=False)``: the "+1 offset"
convention -- callers pass ``num_experts = E + 1`` and id ``-1`` is bucket 0, kept as a
leading segment whose blocks read expert ``-1``; ids ``>= E`` index past the counters
(outside our domain). ``sorted_token_ids``: flat ``t*K + j``; with
``pad_sorted_token_ids=True`` (what sglang passes) the WHOLE buffer is first set to
``numel``; with False even the pad slots inside the valid prefix stay unwritten.
``expert_ids`` past the used blocks are NOT written (only the JIT variant's
``pad_expert_ids`` fills them with -1): the tail is mixed (filled tokens, untouched
blocks) -- declared ``filled`` here, see the report. Order inside an expert: atomics
(unordered). ``cumsum_buffer`` int32 [E + 2]. Small-batch kernel for
``numel < 1024 and E + 1 <= 64``; one CTA up to ``E + 1 <= 1024`` buckets; a v2 kernel
above (JIT copy: up to 8192 buckets). sglang's buffer sizes: ``numel * U`` if
``numel < E + 1`` else ``numel + (E + 1) * (U - 1)``, rounded up to 4.
"""
from __future__ import annotations

import importlib.util

from fuzz import buffers
from fuzz.conventions import load


def available() -> bool:
    try:
        if importlib.util.find_spec("sgl_kernel") is None:
            return False
        import torch
        if not torch.cuda.is_available():
            return False
        import sgl_kernel
        return hasattr(sgl_kernel, "topk_softmax") and hasattr(sgl_kernel, "moe_align_block_size")
    except Exception:  # noqa: BLE001 - availability probes must not raise
        return False


def topk_softmax(logits, topk, *, renormalize=True):
    import sgl_kernel
    T = logits.shape[0]
    w, ids = buffers.fresh_gating(T, topk, logits.device)
    sgl_kernel.topk_softmax(w, ids, logits.contiguous(), renormalize)
    return {"topk_weights": w, "topk_ids": ids}


def topk_softmax_any_e(logits, topk, *, renormalize=True):
    """The same kernel, declared for any E (the workspace path's tie order is unspecified)."""
    return topk_softmax(logits, topk, renormalize=renormalize)


def moe_align_block_size(topk_ids, topk_weights, num_experts, *, unit_size=32, out=None):
    import sgl_kernel
    import torch
    del topk_weights
    dev = topk_ids.device
    if out is None:
        out = buffers.fresh("vllm", "sglang", *topk_ids.shape, num_experts, unit_size, dev)
    cumsum = torch.empty(num_experts + 2, dtype=torch.int32, device=dev)
    sgl_kernel.moe_align_block_size(topk_ids, num_experts + 1, unit_size, *out, cumsum, True)
    return buffers.as_fields("vllm", out)


_GATE = {"op": "gating", "selection": "probabilities", "weights": "softmax", "renormalize": "argument",
         "weights_dtype": "float32", "nan": "outside_domain"}
topk_softmax.convention = load({
    **_GATE, "name": "sgl_kernel.topk_softmax", "ties": "lower",
    "domain": {"powers_of_two": True, "max_experts": 512, "supports": []},
})
topk_softmax_any_e.convention = load({
    **_GATE, "name": "sgl_kernel.topk_softmax.any_e", "ties": "any", "domain": {"supports": []},
})
moe_align_block_size.convention = load({
    "base": "vllm", "name": "sgl_kernel.moe_align_block_size", "op": "sorting", "order": "unordered",
    "invalid_ids": "outside_domain", "duplicates": "keep", "capacity": "vllm", "tail": "filled",
    "domain": {"max_experts": 1023, "supports": ["out"], "assignment_boundaries": [1024]},
})

TARGETS = {
    "sgl_kernel.topk_softmax": topk_softmax,
    "sgl_kernel.topk_softmax.any_e": topk_softmax_any_e,
    "sgl_kernel.moe_align_block_size": moe_align_block_size,
}
