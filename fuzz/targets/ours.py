"""This project's kernels as targets (``fused_moe`` is imported on first call: the lane,
``TRITON_INTERPRET``, must be chosen before it is imported)."""
from __future__ import annotations

import functools

from fuzz.conventions import CK, VLLM, Convention

def _fused_moe():
    import fused_moe
    return fused_moe


def available() -> bool:
    try:
        fm = _fused_moe()
    except ImportError:
        return False
    return all(hasattr(fm, n) for n in ("topk_gating_softmax", "moe_sorting", "route"))


@functools.lru_cache(maxsize=None)
def convention(op: str, layout: str = "ck") -> Convention:
    """The contract (SPEC sections 1-3; the vLLM layout of oracles/layouts.py: exact order,
    tight capacity, whole buffers written) with the token counts where the kernels change
    path (``fused_moe.DISPATCH_THRESHOLDS``): the strategies draw on both sides of each."""
    fm = _fused_moe()
    thresholds = getattr(fm, "DISPATCH_THRESHOLDS", {})
    assignments = getattr(getattr(fm, "geometry", None), "DISPATCH_THRESHOLDS_ASSIGNMENTS", {})
    base = CK if layout == "ck" else VLLM.replace(order="exact", capacity="tight")
    return base.replace(name=f"ours-{layout}", op=op).with_domain(
        token_boundaries=tuple(sorted(set(thresholds.values()))),
        assignment_boundaries=tuple(sorted(set(assignments.values()))))


def gating(logits, topk, *, renormalize=True):
    return _fused_moe().topk_gating_softmax(logits, topk, renormalize=renormalize)


@functools.lru_cache(maxsize=None)
def sorting(layout: str = "ck"):
    """``fused_moe.moe_sorting`` in ``layout``."""
    def target(topk_ids, topk_weights, num_experts, **kwargs):
        return _fused_moe().moe_sorting(topk_ids, topk_weights, num_experts, layout=layout, **kwargs)
    target.__name__ = target.__qualname__ = f"sorting_{layout}"
    return target


@functools.lru_cache(maxsize=None)
def route(path: str, layout: str = "ck"):
    """``fused_moe.route`` with ``path`` and ``layout`` bound."""
    def target(logits, topk, **kwargs):
        return _fused_moe().route(logits, topk, path=path, layout=layout, **kwargs)
    target.__name__ = target.__qualname__ = f"route_{path}_{layout}"
    return target


def reset_plans() -> None:
    """Empty the kernels' plan cache (the plan-reuse property starts every case from it)."""
    from fused_moe.plans import clear_plans
    clear_plans()
