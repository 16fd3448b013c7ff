"""aiter (ROCm/aiter, PyPI ``amd-aiter``) ``moe_sorting_fwd``, ``topk_softmax`` and its Triton
routing top-k, on our signatures (ROCm only).

Beware: the PyPI project ``aiter`` is an unrelated async-iterator library; :func:`available`
checks for ``moe_sorting_fwd``, not just for a module named ``aiter``.

Sources (amd-aiter 0.1.7.post2.dev18 wheel; same paths in ROCm/aiter):

* ``aiter/ops/moe_sorting.py``: ``moe_sorting_fwd(topk_ids, topk_weights, sorted_token_ids,
  sorted_weights, sorted_expert_ids, num_valid_ids, moe_buf, num_experts, unit_size,
  local_expert_mask=None, num_local_tokens=None, dispatch_policy=0)`` -> None, caller buffers.
* ``aiter/fused_moe.py: moe_sorting``: sizes ``T*K + E*U - K`` rows (float32 weights),
  ``ceil(rows / U)`` blocks, ``num_valid_ids`` int32 [2], ``moe_buf`` [T, model_dim].
* ``aiter_meta/csrc/py_itfs_ck/moe_sorting_kernels.cu``: topk_weights must be float32;
  ``num_local_tokens`` is a device pointer (read on the device); ``moe_buf.size(-1)`` and
  itemsize describe the buffer.
* ``3rdparty/composable_kernel/include/ck_tile/ops/fused_moe/kernel/moe_sorting_kernel.hpp``:
  packed ``(slot << 24) | token`` (``MOE_SORTING_MOCK_ID``, slot in 8 bits), pad ``(K << 24) |
  M``; local expert ids under the mask (layout comment); moe_buf rows ``[0, M)`` zeroed
  (``moe_buf_set_zero_kernel_2d``). Two paths: one-shot in LDS when
  ``T <= floor8(LDS_ints / 2 / (E + 1) - 2)`` (64 KiB LDS: T <= 24 at E=256, 56 at E=128,
  120 at E=64, 248 at E=32), else multi-phase with a per-(expert, token) "mesh" holding
  ``slot + 1`` (4-byte cells below T=512, 1-byte above) -- a repeated id in a row
  overwrites its cell (duplicates collapse) and ``eid < num_experts`` is the only range
  check (negative ids index before the mesh); the one-shot path indexes counters by the
  raw id. Hence duplicates and ids outside ``[0, E)`` are outside the domain.
  ``reference_moe_sorting.hpp`` (host reference) has no range check either.
* ``aiter_meta/csrc/kernels/topk_softmax_kernels.cu``: power-of-two E <= 512: top-k on the
  LOGITS (argmax with ``a.key < b.key`` on equal values: lower index), weights
  ``exp(x - max)`` normalized by the selected sum (``need_renorm``) or the row sum; other E:
  softmax workspace + ``hipcub::ArgMax`` on probabilities. No NaN handling; strided
  output rows allowed, contiguous logits rows.
* ``aiter/ops/triton/moe_routing/topk.py`` + ``_triton_kernels/moe_routing/topk.py``
  (Triton, from triton_kernels): key = float bits packed above ``N_PAD - index`` (ties to
  the lower index in this version), softmax over the K selected values (renormalized
  always), values in the logits dtype, ids int16, K must be a power of two (tl.arange),
  E < 32768, and the K slots come back SORTED BY EXPERT ID, not by value (verified under
  the interpreter: logits [.1, 3, 2, .5, 1, -1], K=4 -> ids [1, 2, 3, 4]). ``routing()``
  then sorts assignments by expert without per-block padding (``ExptData`` hist /
  offsets / ``block_pid_map``) -- a layout our conventions do not have.
"""
from __future__ import annotations

import importlib.util

from fuzz import buffers
from fuzz.conventions import load


def available() -> bool:
    try:
        if importlib.util.find_spec("aiter") is None:
            return False
        import torch
        if not (torch.cuda.is_available() and getattr(torch.version, "hip", None)):
            return False
        import aiter
        return hasattr(aiter, "moe_sorting_fwd") and hasattr(aiter, "topk_softmax")
    except Exception:  # noqa: BLE001 - availability probes must not raise
        return False


def moe_sorting(topk_ids, topk_weights, num_experts, *, unit_size=32, expert_mask=None, num_local_tokens=None,
                moe_buf=None, out=None):
    import aiter
    import torch
    T, K = topk_ids.shape
    dev = topk_ids.device
    if out is None:
        out = buffers.fresh("ck", "aiter", T, K, num_experts, unit_size, dev)
    if isinstance(num_local_tokens, int):
        num_local_tokens = torch.tensor([num_local_tokens], dtype=torch.int32, device=dev)
    buf = moe_buf if moe_buf is not None else torch.empty((T, 0), dtype=torch.bfloat16, device=dev)
    aiter.moe_sorting_fwd(topk_ids, topk_weights, *out, buf, num_experts, unit_size, expert_mask, num_local_tokens, 0)
    return buffers.as_fields("ck", out)


def topk_softmax(logits, topk, *, renormalize=True):
    import aiter
    T = logits.shape[0]
    w, ids, tei = buffers.fresh_gating(T, topk, logits.device, token_expert_indices=True)
    aiter.topk_softmax(w, ids, tei, logits.contiguous(), renormalize)
    return {"topk_weights": w, "topk_ids": ids}


def routing_topk(logits, topk, *, renormalize=True):
    """The top-k of aiter's Triton ``routing()`` (softmax over the selected logits)."""
    del renormalize  # always renormalized
    import torch
    from aiter.ops.triton.moe_routing.topk import topk as triton_topk
    values, ids, _ = triton_topk(logits, topk, apply_softmax=True)
    return {"topk_weights": values, "topk_ids": ids.to(torch.int32)}


moe_sorting.convention = load({
    "name": "aiter.moe_sorting_fwd", "op": "sorting", "layout": "ck", "order": "exact",
    "invalid_ids": "outside_domain", "duplicates": "outside_domain", "capacity": "aiter", "tail": "untouched",
    "domain": {"max_topk": 127, "supports": ["expert_mask", "num_local_tokens", "num_local_tokens_tensor",
                                             "moe_buf", "out"],
               "token_boundaries": [24, 56, 120, 248, 512]},
})
topk_softmax.convention = load({
    "name": "aiter.topk_softmax", "op": "gating", "ties": "lower", "selection": "logits", "weights": "softmax",
    "renormalize": "argument", "weights_dtype": "float32", "nan": "outside_domain",
    "domain": {"powers_of_two": True, "max_experts": 512, "supports": []},
})
routing_topk.convention = load({
    "name": "aiter.triton.routing.topk", "op": "gating", "ties": "lower", "selection": "logits",
    "weights": "softmax", "renormalize": "always", "weights_dtype": "bfloat16", "nan": "outside_domain",
    "domain": {"max_experts": 32767, "dtypes": ["bfloat16"], "supports": []},
})

TARGETS = {"aiter.moe_sorting_fwd": moe_sorting, "aiter.topk_softmax": topk_softmax}
#: Not in TARGETS until conventions can say so: K must be a power of two and the K slots are
#: ordered by expert id (not by weight), neither of which a Convention can declare yet.
PENDING = {"aiter.triton.routing.topk": routing_topk}
