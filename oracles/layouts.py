"""The vLLM layout of MoE sorting, defined from the CK layout (pure NumPy).

vLLM / sgl-kernel ``moe_align_block_size`` (SPEC section 6) group the same assignments
as SPEC section 2 but write them differently. Buffers (``P = num_tokens_post_pad[0]``):

========================  ========  =======  ======================================  ==============
name                      shape     dtype    meaning                                 past the prefix
========================  ========  =======  ======================================  ==============
``sorted_token_ids``      [cap]     int32    flat index ``t * K + j``; pad ``T * K``  ``T * K``
``expert_ids``            [blocks]  int32    LOCAL expert id of each U-row block      ``-1``
``num_tokens_post_pad``   [1]       int32    ``[P]``                                  (none)
========================  ========  =======  ======================================  ==============

Same segments, same order inside an expert (token, slot ascending), the same local
ids under a mask and the same dropping rules as the CK layout; the pad value is the
numel of ``topk_ids`` (``T * K``, whatever M is). Unlike the CK layout the WHOLE buffer
is defined: every slot past P holds the pad value and every block past ``P // U`` holds
``-1`` (current vLLM fills both; the GEMM skips ``-1`` blocks). There are no sorted
weights: vLLM's GEMM gathers ``topk_weights`` through ``sorted_token_ids``.

:func:`vllm_from_ck` and :func:`ck_from_vllm` convert valid prefixes both ways; they
are exact inverses on any oracle output (tests/oracle round-trip the pair).
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ._common import as_int
from .sorting import SortingResult, sentinel

__all__ = ["LAYOUTS", "VllmSortingResult", "VllmRouteResult", "vllm_from_ck", "ck_from_vllm", "vllm_capacity", "vllm_pad"]

#: Names of the sorting layouts the oracle defines.
LAYOUTS = ("ck", "vllm")


class VllmSortingResult(NamedTuple):
    """vLLM-layout sorting output (valid prefixes when it comes from the oracle)."""

    sorted_token_ids: np.ndarray  #: (P,) int32, t * K + j; padding T * K
    expert_ids: np.ndarray  #: (P // U,) int32, local expert id per block; -1 past the end
    num_tokens_post_pad: np.ndarray  #: (1,) int32, [P]


class VllmRouteResult(NamedTuple):
    """vLLM-layout route output: the gating outputs, then the vLLM-layout sorting ones."""

    topk_weights: np.ndarray  #: (T, K) float32
    topk_ids: np.ndarray  #: (T, K) int32
    sorted_token_ids: np.ndarray
    expert_ids: np.ndarray
    num_tokens_post_pad: np.ndarray


def vllm_pad(T, K) -> int:
    """The vLLM pad value of ``sorted_token_ids``: ``T * K`` (the numel of topk_ids)."""
    return as_int(T, "T") * as_int(K, "K")


def vllm_capacity(T, K, E, unit_size) -> tuple[int, int]:
    """vLLM's own buffer sizes: ``T*K + E*(U-1)`` slots, no more than ``T*K*U`` when
    ``T*K < E``, and ``ceil(slots / U)`` blocks
    (``vllm/model_executor/layers/fused_moe/moe_align_block_size.py``)."""
    T, K, E, U = (as_int(v, n) for v, n in ((T, "T"), (K, "K"), (E, "E"), (unit_size, "unit_size")))
    rows = T * K + E * (U - 1)
    if T * K < E:
        rows = min(rows, T * K * U)
    return rows, -(-rows // U)


def vllm_from_ck(ck: SortingResult, T: int, K: int) -> VllmSortingResult:
    """Valid prefixes in the CK layout -> the same prefixes in the vLLM layout."""
    tok = np.asarray(ck.sorted_token_ids, dtype=np.int64)
    M = int(ck.num_valid_ids[1])
    pad = tok == sentinel(K, M)
    flat = np.where(pad, vllm_pad(T, K), (tok & 0xFFFFFF) * K + (tok >> 24))
    return VllmSortingResult(flat.astype(np.int32), np.asarray(ck.sorted_expert_ids, dtype=np.int32).copy(),
                             np.array([int(ck.num_valid_ids[0])], dtype=np.int32))


def ck_from_vllm(v: VllmSortingResult, topk_weights, T: int, K: int, M: int, unit_size: int) -> SortingResult:
    """Valid prefixes in the vLLM layout -> the CK layout (weights gathered from ``topk_weights``)."""
    P = int(np.asarray(v.num_tokens_post_pad).reshape(-1)[0])
    flat = np.asarray(v.sorted_token_ids, dtype=np.int64)[:P]
    pad = flat == vllm_pad(T, K)
    t, j = np.divmod(np.where(pad, 0, flat), max(K, 1))
    tok = np.where(pad, sentinel(K, M), (j << 24) | t).astype(np.int32)
    w_bits = np.ascontiguousarray(np.asarray(topk_weights, dtype=np.float32)).view(np.uint32).reshape(-1)
    bits = np.where(pad, np.uint32(0), w_bits[np.where(pad, 0, flat)] if w_bits.size else np.uint32(0))
    return SortingResult(tok, bits.astype(np.uint32).view(np.float32),
                         np.asarray(v.expert_ids, dtype=np.int32)[: P // unit_size].copy(),
                         np.array([P, M], dtype=np.int32))
