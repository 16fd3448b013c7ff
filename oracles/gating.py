"""Top-k gating softmax oracle (SPEC section 1), pure NumPy.

Pipeline for ``logits[T, E]`` (float32; float16 upcast exactly):

====================  ===========  ========  =============================================
name                  shape        dtype     meaning
====================  ===========  ========  =============================================
``key``               [T, E]       float32   logits with NaN -> -inf and -0.0 -> +0.0
``order``             [T, E]       uint64    (descending-order bits << 32) | expert index
``topk_ids``          [T, K]       int32     selected experts, slot 0 = largest logit
``z``                 [T, E]       float64   exp(key - row max) (limit forms, see below)
``topk_weights``      [T, K]       float32   z[ids] / sum(z), optionally renormalized
====================  ===========  ========  =============================================
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ._common import as_flag, as_logits, as_topk

__all__ = ["GatingResult", "topk_gating_softmax", "gating_probabilities", "probabilities_of", "select",
           "selection_key"]


class GatingResult(NamedTuple):
    """Output of :func:`topk_gating_softmax`."""

    topk_weights: np.ndarray  #: (T, K) float32
    topk_ids: np.ndarray  #: (T, K) int32


def _selection_key(x: np.ndarray) -> np.ndarray:
    """float32 [T, E] -> float32 [T, E] with NaN -> -inf and -0.0 -> +0.0."""
    key = np.where(np.isnan(x), np.float32(-np.inf), x)
    key += np.float32(0.0)  # -0.0 + 0.0 == +0.0 under round-to-nearest: the two zeros tie
    return key


def _select(key: np.ndarray, K: int) -> np.ndarray:
    """Top-K expert ids per row, largest first, ties to the lower index.

    Each float32 is mapped to a uint32 whose unsigned order is the *descending*
    order of the values, then packed above the expert index into a uint64.
    The packed keys of a row are all distinct, so a partition plus a sort of
    the first K gives exactly the rule "larger value first, then lower index"
    with no reliance on sort stability.
    """
    T, E = key.shape
    bits = key.view(np.uint32)
    neg = (bits >> np.uint32(31)).astype(bool)
    ascending = np.where(neg, ~bits, bits | np.uint32(0x80000000))  # unsigned order == value order
    descending = (~ascending).astype(np.uint64)
    packed = (descending << np.uint64(32)) | np.arange(E, dtype=np.uint64)
    if K < E:
        packed = np.partition(packed, K - 1, axis=1)[:, :K]
    packed = np.sort(packed, axis=1)
    return (packed & np.uint64(0xFFFFFFFF)).astype(np.int32)


def _row_exp(key: np.ndarray) -> np.ndarray:
    """float64 ``z`` with ``z / z.sum(1)`` the softmax of each row, limit forms included.

    * row max finite: ``z = exp(x - max)`` in float64 (so 3e38 and -3e38 give
      exp(-6e38) == 0, never inf - inf);
    * row max +inf: ``z = 1`` on the +inf entries, 0 elsewhere (each +inf gets 1/count);
    * row max -inf (every entry -inf or NaN): ``z = 1`` everywhere (uniform 1/E).
    """
    x = key.astype(np.float64)
    m = x.max(axis=1, keepdims=True) if x.shape[0] else np.zeros((0, 1))
    with np.errstate(invalid="ignore", over="ignore"):
        z = np.exp(x - m)
    special = np.flatnonzero(~np.isfinite(m[:, 0]))
    if special.size:
        xs = x[special]
        pos = m[special, 0] > 0
        z[special] = np.where(pos[:, None], (xs == np.inf).astype(np.float64), 1.0)
    return z


#: Tie rules and selection keys the oracle can apply (SPEC section 1 is ``lower`` on ``logits``;
#: section 6 lists the others seen in the field).
TIES = ("lower", "higher")
SELECTIONS = ("logits", "probabilities")


#: How a selection orders the specials: ``spec`` (NaN as -inf, -0.0 ties +0.0) or ``bits`` (by
#: the float's bits, as a key built from them does: +NaN above +inf, -NaN below -inf, -0.0 below +0.0).
SPECIAL_ORDERS = ("spec", "bits")


def selection_key(logits, *, selection: str = "logits", specials: str = "spec") -> np.ndarray:
    """float32 [T, E] key the top-k is taken on: the logits (NaN -> -inf, -0.0 -> +0.0, or
    kept as they are with ``specials="bits"``), or the float32 softmax probabilities of the
    whole row (values that round alike tie)."""
    x = as_logits(logits)
    if specials not in SPECIAL_ORDERS:
        raise ValueError(f"specials must be one of {', '.join(SPECIAL_ORDERS)}, got {specials!r}")
    key = _selection_key(x)
    if selection == "logits":
        return x.copy() if specials == "bits" else key
    if selection != "probabilities":
        raise ValueError(f"selection must be one of {', '.join(SELECTIONS)}, got {selection!r}")
    z = _row_exp(key)
    return (z / z.sum(axis=1, keepdims=True)).astype(np.float32)


def select(key: np.ndarray, K: int, *, ties: str = "lower") -> np.ndarray:
    """Top-K ids of each row of ``key``, largest first, ties to the ``lower`` or ``higher`` index."""
    if ties == "lower":
        return _select(key, K)
    if ties != "higher":
        raise ValueError(f"ties must be one of {', '.join(TIES)}, got {ties!r}")
    return (key.shape[1] - 1 - _select(np.ascontiguousarray(key[:, ::-1]), K)).astype(np.int32)


def probabilities_of(logits, ids, *, renormalize: bool = True) -> np.ndarray:
    """float64 [T, K] softmax probabilities (of the whole row) at ``ids``, optionally
    renormalized over them: the weights any valid selection of those ids must carry."""
    key = _selection_key(as_logits(logits))
    z = _row_exp(key)
    probs = np.take_along_axis(z, np.asarray(ids, dtype=np.intp), axis=1) / z.sum(axis=1, keepdims=True)
    if as_flag(renormalize, "renormalize"):
        # The selected set always holds the row max, whose probability is >= 1/E > 0.
        probs = probs / probs.sum(axis=1, keepdims=True)
    return probs


def gating_probabilities(logits, topk, *, renormalize: bool = True, ties: str = "lower",
                         selection: str = "logits"):
    """float64 oracle: ``(weights64[T, K], topk_ids[T, K] int32)`` before the final rounding.

    :func:`topk_gating_softmax` is this rounded once to float32; the checker
    compares against these unrounded values. ``ties`` and ``selection`` give the
    other conventions of SPEC section 6 (the contract is ``lower`` on ``logits``).
    """
    x = as_logits(logits)
    K = as_topk(topk, x.shape[1])
    ids = select(selection_key(x, selection=selection), K, ties=ties)
    return probabilities_of(x, ids, renormalize=renormalize), ids


def topk_gating_softmax(logits, topk, *, renormalize: bool = True) -> GatingResult:
    """Top-K gating softmax: the reference for SPEC section 1.

    Args:
        logits: [T, E] float32 (float16 accepted and upcast exactly; bfloat16
            callers pass an exact float32 upcast). Any other dtype: TypeError.
        topk: K, with ``1 <= K <= E`` (ValueError otherwise).
        renormalize: divide the K selected probabilities by their sum. A bool or NumPy
            bool; anything else is a TypeError (never its truth value).

    Returns:
        GatingResult(topk_weights [T, K] float32, topk_ids [T, K] int32).

    Selection (on the float32 logits, not on probabilities):
        * slot 0 holds the largest logit, slot K-1 the K-th largest;
        * ties go to the LOWER expert index;
        * NaN ranks as -inf and ties with -inf by index;
        * -0.0 equals +0.0 (a tie, broken by index).
        Ids are therefore always distinct and in ``[0, E)``.

    Weights (float64, rounded once to float32 at the end):
        * ``p = exp(x - max) / sum(exp(x - max))`` over the WHOLE row, with the
          subtraction done in float64, so a finite row never overflows to NaN
          (e.g. 3e38 and -3e38 give probabilities 1 and 0);
        * NaN counts as -inf everywhere;
        * row max +inf: each +inf entry has probability 1/count(+inf), every
          other entry 0;
        * all entries -inf/NaN: uniform, probability 1/E;
        * ``renormalize=True``: ``p_sel / sum(p_sel)`` in float64, then rounded.
        No input yields a NaN weight.
    """
    probs, ids = gating_probabilities(logits, topk, renormalize=renormalize)
    return GatingResult(probs.astype(np.float32), ids)
