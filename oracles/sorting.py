"""MoE sorting oracle (SPEC section 2, the CK / aiter / FlyDSL layout), pure NumPy.

Buffers (``P = num_valid_ids[0]``, the padded total; the oracle returns only
the valid prefix, kernels write into capacity-sized buffers and leave the rest
untouched):

=====================  ==========  ========  ==========================================  ============
name                   shape       dtype     meaning                                     pad value
=====================  ==========  ========  ==========================================  ============
``sorted_token_ids``   [P]         int32     packed ``(j << 24) | t`` of assignment       ``(K<<24)|M``
``sorted_weights``     [P]         float32   ``topk_weights[t, j]``, bit-exact             ``0.0``
``sorted_expert_ids``  [P // U]    int32     LOCAL expert id of each U-row block          (none)
``num_valid_ids``      [2]         int32     ``[P, M]``                                   (none)
=====================  ==========  ========  ==========================================  ============
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ._common import (MAX_TOKENS, MAX_TOPK, as_expert_mask, as_int, as_num_experts, as_num_local_tokens,
                      as_numpy, as_unit_size)

__all__ = ["SortingResult", "moe_sorting", "capacity", "sentinel"]


class SortingResult(NamedTuple):
    """Output of :func:`moe_sorting` (valid prefixes only)."""

    sorted_token_ids: np.ndarray  #: (P,) int32, packed (j << 24) | t; padding (K << 24) | M
    sorted_weights: np.ndarray  #: (P,) float32, bit-exact topk_weights[t, j]; padding 0.0
    sorted_expert_ids: np.ndarray  #: (P // U,) int32, local expert id per block
    num_valid_ids: np.ndarray  #: (2,) int32, [P, M]


class _Plan(NamedTuple):
    """Everything the checkers need to describe a position of the layout."""

    result: SortingResult
    T: int
    K: int
    E: int
    U: int
    M: int
    counts: np.ndarray  #: (E,) int64, kept assignments per (global) expert
    seg_start: np.ndarray  #: (E,) int64, first position of each expert's segment
    padded: np.ndarray  #: (E,) int64, slots of each expert (multiple of U)
    block_expert: np.ndarray  #: (P // U,) int64, GLOBAL expert of each block


def sentinel(K, M) -> int:
    """The padding value of ``sorted_token_ids``: ``(K << 24) | M``."""
    return (as_int(K, "K") << 24) | as_int(M, "M")


def capacity(T, K, E, unit_size):
    """Buffer sizes a caller must allocate: ``(max_tokens_padded, max_blocks)``.

    ``max_tokens_padded = T*K + min(E, T*K) * (unit_size - 1)`` (the tight
    bound: at most ``min(E, T*K)`` experts are non-empty and each wastes at
    most ``U - 1`` slots), ``max_blocks = ceil(max_tokens_padded / unit_size)``.
    """
    T, K, E, U = (as_int(T, "T"), as_int(K, "K"), as_int(E, "E"), as_unit_size(unit_size))
    if T < 0 or K < 0 or E < 0:
        raise ValueError(f"T, K, E must be >= 0, got T={T}, K={K}, E={E}")
    rows = T * K + min(E, T * K) * (U - 1)
    return rows, -(-rows // U)


def _validate(topk_ids, topk_weights, num_experts, unit_size, expert_mask, num_local_tokens):
    ids = as_numpy(topk_ids, "topk_ids")
    w = as_numpy(topk_weights, "topk_weights")
    if not np.issubdtype(ids.dtype, np.integer):
        raise TypeError(f"topk_ids must be an integer array [T, K], got dtype {ids.dtype}")
    if w.dtype != np.float32:
        raise TypeError(f"topk_weights must be a float32 array [T, K] (copied bit-exactly), got dtype {w.dtype}")
    if ids.ndim != 2:
        raise ValueError(f"topk_ids must be 2-D [T, K], got shape {ids.shape}")
    if w.shape != ids.shape:
        raise ValueError(f"topk_weights must have the shape of topk_ids {ids.shape}, got {w.shape}")
    T, K = ids.shape
    if not 1 <= K <= MAX_TOPK:
        raise ValueError(f"topk_ids must have 1 <= K <= {MAX_TOPK} columns (topk), got K={K}")
    if T >= MAX_TOKENS:
        raise ValueError(f"topk_ids must have T < 2**24 rows (tokens), got T={T}")
    E = as_num_experts(num_experts)
    U = as_unit_size(unit_size)
    mask = as_expert_mask(expert_mask, E)
    M = as_num_local_tokens(num_local_tokens, T)
    return ids, w, T, K, E, U, mask, M


def _plan(topk_ids, topk_weights, num_experts, *, unit_size=32, expert_mask=None, num_local_tokens=None) -> _Plan:
    ids, w, T, K, E, U, mask, M = _validate(topk_ids, topk_weights, num_experts, unit_size, expert_mask,
                                            num_local_tokens)
    # Flat index f = t*K + j enumerates assignments in (t asc, j asc) order.
    flat = ids[:M].reshape(-1).astype(np.int64, copy=False)
    keep = (flat >= 0) & (flat < E)
    if mask is not None:
        keep[keep] = mask[flat[keep]]
    f = np.flatnonzero(keep)
    e = flat[f]
    order = np.argsort(e, kind="stable")  # stable: within an expert, (t, j) order survives
    f, e = f[order], e[order]

    counts = np.bincount(e, minlength=E).astype(np.int64)
    padded = -(-counts // U) * U
    seg_start = np.cumsum(padded) - padded
    cnt_start = np.cumsum(counts) - counts
    pos = seg_start[e] + (np.arange(f.size, dtype=np.int64) - cnt_start[e])
    P = int(padded.sum())

    token_ids = np.full(P, sentinel(K, M), dtype=np.int32)
    token_ids[pos] = ((f % K) << 24) | (f // K)
    weight_bits = np.zeros(P, dtype=np.uint32)
    weight_bits[pos] = np.ascontiguousarray(w[:M]).view(np.uint32).reshape(-1)[f]

    if mask is None:
        local = np.arange(E, dtype=np.int64)
    else:
        local = np.cumsum(mask, dtype=np.int64) - mask
    nblocks = padded // U
    block_expert = np.repeat(np.arange(E, dtype=np.int64), nblocks)
    result = SortingResult(
        sorted_token_ids=token_ids,
        sorted_weights=weight_bits.view(np.float32),
        sorted_expert_ids=local[block_expert].astype(np.int32),
        num_valid_ids=np.array([P, M], dtype=np.int32),
    )
    return _Plan(result, T, K, E, U, M, counts, seg_start, padded, block_expert)


def moe_sorting(topk_ids, topk_weights, num_experts, *, unit_size=32, expert_mask=None,
                num_local_tokens=None) -> SortingResult:
    """MoE sorting: the reference for SPEC section 2. Returns the valid prefixes only.

    Args:
        topk_ids: [T, K] integer array (any integer dtype), ``T < 2**24``, ``1 <= K <= 127``.
            K may exceed E here (duplicates are legal); ``route`` enforces ``K <= E``.
        topk_weights: [T, K] float32 (other dtypes: TypeError; they could not be copied bit-exactly).
        num_experts: E >= 1.
        unit_size: U >= 1, the block height.
        expert_mask: None, or E bool/int values; nonzero = expert kept.
        num_local_tokens: M. None -> T; else an int, NumPy integer or one-element
            integer array with ``0 <= M <= T``.

    Semantics:
        * An assignment is (t, j) with ``t < M``; rows ``t >= M`` are ignored
          entirely (their ids may be garbage). Its expert is ``e = topk_ids[t, j]``.
        * Dropped when ``e < 0``, ``e >= E`` or ``expert_mask[e] == 0``.
        * Duplicate ids in one row are kept: each (t, j) is its own assignment.
        * Experts in ascending id. An expert with ``c > 0`` kept assignments gets
          ``ceil(c / U) * U`` slots: its assignments in (t asc, j asc) order, then
          padding. An expert with ``c == 0`` gets no slot and no block.
        * ``sorted_token_ids`` = ``(j << 24) | t``; padding = ``(K << 24) | M``
          (see :func:`sentinel`).
        * ``sorted_weights`` = ``topk_weights[t, j]`` copied through a uint32
          view (NaN payloads and -0.0 preserved); padding = +0.0 (bits 0).
        * ``sorted_expert_ids`` = LOCAL id of each block's expert: the number of
          experts ``< e`` whose mask is 1 (with no mask: ``e`` itself).
        * ``num_valid_ids`` = ``[P, M]`` int32, P the padded total.
        Nothing in the order is unspecified: every position is determined.

    Returns:
        SortingResult with lengths P, P, P // U and 2.
    """
    return _plan(topk_ids, topk_weights, num_experts, unit_size=unit_size, expert_mask=expert_mask,
                 num_local_tokens=num_local_tokens).result
