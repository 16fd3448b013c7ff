"""Adapters: other projects' MoE routing kernels behind our target signatures.

One module per implementation. Each exposes ``available() -> bool`` (importable here and
runnable on this machine; never raises), target functions with our signatures

* gating: ``fn(logits, topk, *, renormalize=True) -> {"topk_weights", "topk_ids"}``
* sorting: ``fn(topk_ids, topk_weights, num_experts, *, unit_size=32, [expert_mask],
  [num_local_tokens], [moe_buf], [out]) -> {<layout fields>}`` (CK layout:
  ``sorted_token_ids, sorted_weights, sorted_expert_ids, num_valid_ids``; vLLM layout:
  ``sorted_token_ids, expert_ids, num_tokens_post_pad``), keyword arguments only where
  the implementation supports them; ``out=`` buffers (in that field order) are passed
  through to the kernel,

each with a ``convention`` attribute (:class:`fuzz.conventions.Convention`), and a
``TARGETS`` dict. The module docstrings cite the source of every convention fact.

==================  ==========================================  ====================
module              implementation                              runs where
==================  ==========================================  ====================
``sglang_triton``   sglang's pure-Triton kernels (sglang wheel)  anywhere (interpreter)
``vllm``            vLLM ``_C`` / ``_moe_C`` CUDA ops             CUDA
``sgl_kernel``      sgl-kernel CUDA ops                          CUDA
``aiter``           aiter CK / HIP ops (PyPI ``amd-aiter``)      ROCm
``flydsl``          FlyDSL ``kernels.moe`` (repo checkout)       ROCm
==================  ==========================================  ====================
"""
from __future__ import annotations

import importlib

MODULES = ("sglang_triton", "vllm", "sgl_kernel", "aiter", "flydsl")


def adapter(name: str):
    """The adapter module ``name`` (imported lazily: the lane must be chosen first)."""
    if name not in MODULES:
        raise ValueError(f"unknown adapter {name!r}; known: {', '.join(MODULES)}")
    return importlib.import_module(f"{__name__}.{name}")


def available_targets() -> dict:
    """``{target name: function}`` over every adapter whose ``available()`` is true."""
    targets = {}
    for name in MODULES:
        mod = adapter(name)
        if mod.available():
            targets.update(mod.TARGETS)
    return targets
