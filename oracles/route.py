"""Fused routing oracle (SPEC section 3): gating, then sorting of its output."""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ._common import MAX_TOPK, as_logits, as_topk
from .gating import topk_gating_softmax
from .sorting import moe_sorting

__all__ = ["RouteResult", "route"]


class RouteResult(NamedTuple):
    """Output of :func:`route`: gating outputs, then the sorting outputs (valid prefixes)."""

    topk_weights: np.ndarray  #: (T, K) float32
    topk_ids: np.ndarray  #: (T, K) int32
    sorted_token_ids: np.ndarray  #: (P,) int32
    sorted_weights: np.ndarray  #: (P,) float32
    sorted_expert_ids: np.ndarray  #: (P // U,) int32
    num_valid_ids: np.ndarray  #: (2,) int32, [P, M]


def route(logits, topk, *, unit_size=32, renormalize=True, expert_mask=None, num_local_tokens=None) -> RouteResult:
    """``moe_sorting(*topk_gating_softmax(logits, topk)[::-1], E, ...)`` in one call.

    The contract is that the kernels' ``route`` is bit-for-bit this
    composition; see :func:`oracles.topk_gating_softmax` for the tie / NaN / inf
    rules and :func:`oracles.moe_sorting` for the layout and pad values.
    ``1 <= topk <= min(E, 127)``. Gating runs on all T rows (rows >= M are
    computed but ignored by the sorting).
    """
    x = as_logits(logits)
    E = x.shape[1]
    K = as_topk(topk, E)
    if K > MAX_TOPK:
        raise ValueError(f"topk must satisfy 1 <= topk <= {MAX_TOPK} for sorting, got {K}")
    gating = topk_gating_softmax(x, K, renormalize=renormalize)
    sorting = moe_sorting(gating.topk_ids, gating.topk_weights, E, unit_size=unit_size, expert_mask=expert_mask,
                          num_local_tokens=num_local_tokens)
    return RouteResult(gating.topk_weights, gating.topk_ids, *sorting)
