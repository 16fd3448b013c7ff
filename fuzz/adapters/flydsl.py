"""FlyDSL's MoE sorting (ROCm/FlyDSL ``kernels/moe/moe_sorting_kernel.py``) on our signature.

The kernels live in the FlyDSL repository's top-level ``kernels`` package, not in the
``flydsl`` wheel (0.5.0 ships only the DSL): ``kernels.moe.moe_sorting_kernel`` must be
importable (a FlyDSL checkout on ``PYTHONPATH``) and a ROCm device present.

Source: ``kernels/moe/moe_sorting_kernel.py`` (ROCm/FlyDSL commit cc8b6a5):

* ``moe_sorting_flydsl(topk_ids, topk_weights, sorted_ids, sorted_weights, sorted_expert_ids,
  num_valid_ids, moe_buf, num_experts, unit_size=32, expert_mask=None,
  num_local_tokens=None, workspace=None)``: "API matches aiter.moe_sorting_fwd"; all
  outputs caller-allocated; returns them.
* Layout (module docstring): ``(slot << 24) | token``, pad ``(K << 24) | M``: the CK layout.
* ``num_local_tokens`` (int or tensor) is read on the HOST (``.item()``): a device tensor
  works but syncs (not graph-capturable as SPEC section 2 asks).
* Paths: one-shot in LDS when ``M <= min(sub_tokens, max(16, 256 // max(K, E // 8)))``
  (``sub_tokens`` from the LDS size: 64 KiB gfx94x, 160 KiB gfx95x), two kernels up to
  M = 2048, four kernels above. Every path builds a token x expert "mesh" storing
  ``slot + 1`` -> a repeated id in a row keeps one slot (duplicates collapse); the id
  indexes the mesh unchecked (ids outside ``[0, E)`` are outside the domain).
* ``moe_buf`` is viewed as int32 and zeroed in 16-byte vectors over
  ``numel(int32) >> 2`` -> the whole buffer (not rows ``[0, M)``), and a byte size that is
  not a multiple of 16 leaves its last bytes as they were (read from the source; not run).
* ``moe_softmax_sort_flydsl(gating_logits, ...)``: the fused gating + sorting entry point,
  fused only for ``M <= 16`` (``FUSED_ONESHOT_MAX_T``), else gating then sorting.
"""
from __future__ import annotations

import importlib.util

from fuzz import buffers
from fuzz.conventions import load


def available() -> bool:
    try:
        if importlib.util.find_spec("flydsl") is None or importlib.util.find_spec("kernels") is None:
            return False
        import torch
        if not (torch.cuda.is_available() and getattr(torch.version, "hip", None)):
            return False
        from kernels.moe import moe_sorting_kernel
        return hasattr(moe_sorting_kernel, "moe_sorting_flydsl")
    except Exception:  # noqa: BLE001 - availability probes must not raise
        return False


def moe_sorting(topk_ids, topk_weights, num_experts, *, unit_size=32, expert_mask=None, num_local_tokens=None,
                moe_buf=None, out=None):
    import torch
    from kernels.moe.moe_sorting_kernel import moe_sorting_flydsl
    T, K = topk_ids.shape
    dev = topk_ids.device
    if out is None:
        out = buffers.fresh("ck", "aiter", T, K, num_experts, unit_size, dev)
    buf = moe_buf if moe_buf is not None else torch.empty((T, 0), dtype=torch.int32, device=dev)
    moe_sorting_flydsl(topk_ids, topk_weights, *out, buf, num_experts, unit_size, expert_mask, num_local_tokens)
    return buffers.as_fields("ck", out)


moe_sorting.convention = load({
    "name": "flydsl.moe_sorting", "op": "sorting", "layout": "ck", "order": "exact",
    "invalid_ids": "outside_domain", "duplicates": "outside_domain", "capacity": "aiter", "tail": "untouched",
    "domain": {"max_topk": 127, "supports": ["expert_mask", "num_local_tokens", "num_local_tokens_tensor",
                                             "moe_buf", "out"],
               "token_boundaries": [16, 32, 2048]},
})

TARGETS = {"flydsl.moe_sorting": moe_sorting}
