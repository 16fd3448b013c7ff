"""A plain-PyTorch reference for MoE routing (SPEC sections 1-3), written apart from ``oracles``.

A second reference, written the way a PyTorch user would (float64 ``torch.softmax``,
``torch.topk`` on an explicit integer tie key, ``bincount`` / ``cumsum`` /
``argsort(stable=True)`` for the layout), so that it and the NumPy oracle can catch each
other's slips: the fuzz harness judges it against the oracle
(``tests/fuzz/test_torch_reference.py``). It runs on the inputs' device, whatever that
is, and reads device scalars with ``.item()``: a reference, not a kernel.

Sorting layouts: ``"ck"`` (SPEC section 2: only the valid prefix of ``out`` buffers is
written) and ``"vllm"`` (``oracles/layouts.py``: the whole buffers are written).
"""
from __future__ import annotations

import numbers
from typing import NamedTuple

import torch

import oracles

__all__ = ["GatingResult", "SortingResult", "VllmSortingResult", "RouteResult", "VllmRouteResult",
           "topk_gating_softmax", "moe_sorting", "route", "LAYOUTS"]

LAYOUTS = ("ck", "vllm")
#: ``(j << 24) | t`` must fit: t < 2**24, and ``(K << 24) | M`` stays a non-negative int32.
MAX_TOKENS = 1 << 24
MAX_TOPK = 127
INF = float("inf")


# The result types are the oracle's NamedTuples (field names only: nothing of its logic).
GatingResult, SortingResult, RouteResult = oracles.GatingResult, oracles.SortingResult, oracles.RouteResult
VllmSortingResult, VllmRouteResult = oracles.VllmSortingResult, oracles.VllmRouteResult


# --------------------------------------------------------------------------- argument checks


def _int(value, name: str, low: int, high: int | None = None) -> int:
    """``value`` as an int in ``[low, high]``: TypeError for non-integers (bool included), else ValueError."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    value = int(value)
    if value < low or (high is not None and value > high):
        raise ValueError(f"{name} must be in [{low}, {'inf' if high is None else high}], got {value}")
    return value


def _tensor(x, name: str, *, ndim: int | None = None) -> torch.Tensor:
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if ndim is not None and x.dim() != ndim:
        raise ValueError(f"{name} must be {ndim}-D, got shape {tuple(x.shape)}")
    return x


def _is_integer(x: torch.Tensor) -> bool:
    return not (x.dtype.is_floating_point or x.dtype.is_complex or x.dtype == torch.bool)


def _logits(logits) -> torch.Tensor:
    """[T, E] logits as float32 (float16 and bfloat16 convert exactly)."""
    x = _tensor(logits, "logits", ndim=2)
    if x.dtype not in (torch.float32, torch.float16, torch.bfloat16):
        raise TypeError(f"logits must be float32, float16 or bfloat16, got {x.dtype}")
    if x.shape[1] < 1:
        raise ValueError(f"logits must have E >= 1 columns (experts), got shape {tuple(x.shape)}")
    return x.float()


def _num_local_tokens(value, T: int) -> int:
    """M: None means T; a one-element integer tensor is read on the host (a kernel reads it on the device)."""
    if value is None:
        return T
    if isinstance(value, torch.Tensor):
        if value.numel() != 1 or not _is_integer(value):
            raise TypeError(f"num_local_tokens as a tensor must hold one integer, got {value.dtype} "
                            f"{tuple(value.shape)}")
        value = int(value.item())
    return _int(value, "num_local_tokens", 0, T)


def _expert_mask(mask, E: int, device) -> torch.Tensor | None:
    """None, or E booleans on ``device`` (nonzero = expert kept)."""
    if mask is None:
        return None
    m = _tensor(mask, "expert_mask")
    if not (_is_integer(m) or m.dtype == torch.bool):
        raise TypeError(f"expert_mask must be a bool or integer tensor, got {m.dtype}")
    if tuple(m.shape) != (E,):
        raise ValueError(f"expert_mask must have shape ({E},) (one entry per expert), got {tuple(m.shape)}")
    return (m != 0).to(device)


def _moe_buf(buf, T: int, device) -> None:
    if buf is None:
        return
    b = _tensor(buf, "moe_buf")
    if b.dim() < 1 or b.shape[0] < T or not b.is_contiguous():
        raise ValueError(f"moe_buf must be a contiguous tensor of at least T={T} rows (tokens first), "
                         f"got shape {tuple(b.shape)}")
    if b.device != device:
        raise ValueError(f"moe_buf is on {b.device} but topk_ids is on {device}")


def _buffer_specs(layout: str, rows: int, U: int) -> tuple:
    """(name, dtype, length) of each sorting buffer, in the result's field order."""
    blocks = -(-rows // U)
    if layout == "ck":
        return (("sorted_token_ids", torch.int32, rows), ("sorted_weights", torch.float32, rows),
                ("sorted_expert_ids", torch.int32, blocks), ("num_valid_ids", torch.int32, 2))
    return (("sorted_token_ids", torch.int32, rows), ("expert_ids", torch.int32, blocks),
            ("num_tokens_post_pad", torch.int32, 1))


def _sorting_buffers(out, layout: str, T: int, K: int, E: int, U: int, device) -> tuple:
    """``out`` checked, or fresh buffers, of the tight capacity ``T*K + min(E, T*K)*(U-1)``
    rows (SPEC section 2). That is also vLLM's own size: ``numel + E*(U-1)``, clamped to
    ``numel*U`` when ``numel < E`` (vllm/.../moe_align_block_size.py)."""
    specs = _buffer_specs(layout, T * K + min(E, T * K) * (U - 1), U)
    if out is None:
        return tuple(torch.zeros(n, dtype=dtype, device=device) for _, dtype, n in specs)
    if not isinstance(out, (tuple, list)) or len(out) != len(specs):
        raise TypeError(f"out must be a tuple of {len(specs)} tensors "
                        f"({', '.join(s[0] for s in specs)}) for layout {layout!r}")
    for (name, dtype, need), buf in zip(specs, out):
        b = _tensor(buf, f"out.{name}", ndim=1)
        if b.dtype != dtype:
            raise TypeError(f"out.{name} must be a {dtype} tensor, got {b.dtype}")
        if b.numel() < need or b.device != device:
            raise ValueError(f"out.{name} must hold at least {need} elements (the capacity) on {device}, "
                             f"got {b.numel()} on {b.device}")
    return tuple(out)


# --------------------------------------------------------------------------- gating


def _selection_key(x: torch.Tensor) -> torch.Tensor:
    """float32 logits with NaN -> -inf (NaN ranks as -inf) and -0.0 -> +0.0 (-0.0 + 0.0 is +0.0)."""
    return torch.where(torch.isnan(x), -INF, x) + 0.0


def _rank_key(key: torch.Tensor) -> torch.Tensor:
    """int64 keys, all distinct in a row, whose descending order is the selection order:
    larger logit first, then LOWER expert index.

    A float32's bits read as int32 are in value order once the magnitude bits of the
    negatives are flipped; the expert index goes in the low 32 bits, reversed, so that
    the lower index ranks higher. No reliance on the stability of torch.topk.
    """
    bits = key.contiguous().view(torch.int32)
    ordered = torch.where(bits < 0, bits ^ 0x7FFFFFFF, bits).long()
    E = key.shape[1]
    return ordered * 2**32 + (E - 1 - torch.arange(E, device=key.device))


def _limit_logits(key: torch.Tensor) -> torch.Tensor:
    """float64 logits whose ordinary softmax is SPEC section 1's: a row holding +inf becomes
    0 at its +inf entries and -inf elsewhere (1/count each); an all -inf row becomes zeros
    (uniform). Finite-max rows are unchanged (float64: 3e38 - (-3e38) does not overflow)."""
    x = key.double()
    row_max = x.amax(dim=1, keepdim=True)
    x = torch.where(row_max == INF, torch.where(x == INF, 0.0, -INF).double(), x)
    return x.masked_fill(row_max == -INF, 0.0)


def topk_gating_softmax(logits, topk, *, renormalize: bool = True) -> GatingResult:
    """SPEC section 1: top-K of the float32 logits (ties to the lower index, NaN as -inf, the
    zeros tie), weights = float32 rounding of the float64 whole-row softmax at those experts,
    renormalized over the K if asked."""
    x = _logits(logits)
    K = _int(topk, "topk", 1, x.shape[1])
    key = _selection_key(x)
    ids = torch.topk(_rank_key(key), K, dim=1).indices
    probs = torch.softmax(_limit_logits(key), dim=1).gather(1, ids)
    if renormalize:
        probs = probs / probs.sum(dim=1, keepdim=True)  # the row max is selected: its probability >= 1/E
    return GatingResult(probs.float(), ids.to(torch.int32))


# --------------------------------------------------------------------------- sorting


class _Layout(NamedTuple):
    """The layout, independent of how it is written: where each kept assignment goes."""

    flat: torch.Tensor  #: (n,) int64, t * K + j of each kept assignment, in layout order
    pos: torch.Tensor  #: (n,) int64, its row in the sorted buffers
    block_ids: torch.Tensor  #: (P // U,) int32, local expert id of each block
    P: int  #: padded total


def _local_ids(mask: torch.Tensor | None, E: int, device) -> torch.Tensor:
    """Local id of each expert: the number of kept experts below it (no mask: itself)."""
    if mask is None:
        return torch.arange(E, device=device)
    return torch.cumsum(mask.long(), 0) - mask.long()


def _layout(ids: torch.Tensor, E: int, U: int, mask: torch.Tensor | None, M: int) -> _Layout:
    expert = ids[:M].reshape(-1).long()
    kept = (expert >= 0) & (expert < E)
    if mask is not None:
        kept &= mask[expert.clamp(0, E - 1)]
    flat = torch.nonzero(kept).reshape(-1)  # (t, j) ascending
    order = torch.argsort(expert[flat], stable=True)  # stable: (t, j) order survives inside an expert
    flat = flat[order]
    expert = expert[flat]
    counts = torch.bincount(expert, minlength=E)
    slots = (counts + U - 1) // U * U
    first_slot = torch.cumsum(slots, 0) - slots
    rank = torch.arange(flat.numel(), device=ids.device) - (torch.cumsum(counts, 0) - counts)[expert]
    block_ids = torch.repeat_interleave(_local_ids(mask, E, ids.device), slots // U)
    return _Layout(flat, first_slot[expert] + rank, block_ids.to(torch.int32), int(slots.sum().item()))


def _write_ck(lay: _Layout, weights: torch.Tensor, K: int, M: int, bufs: tuple) -> None:
    """The valid prefixes only; weights copied as int32 bits (NaN payloads, -0.0)."""
    tokens, sorted_weights, blocks, num_valid = bufs
    P, bits = lay.P, sorted_weights.view(torch.int32)
    tokens[:P] = (K << 24) | M
    tokens[lay.pos] = ((lay.flat % K) << 24 | lay.flat // K).to(torch.int32)
    bits[:P] = 0
    bits[lay.pos] = weights.view(torch.int32).reshape(-1)[lay.flat]
    blocks[: lay.block_ids.numel()] = lay.block_ids
    num_valid[:2] = torch.tensor([P, M], dtype=torch.int32)


def _write_vllm(lay: _Layout, T: int, K: int, bufs: tuple) -> None:
    """The whole buffers: pad T * K past the assignments, -1 past the last block."""
    tokens, blocks, num_post_pad = bufs
    tokens.fill_(T * K)
    tokens[lay.pos] = lay.flat.to(torch.int32)
    blocks.fill_(-1)
    blocks[: lay.block_ids.numel()] = lay.block_ids
    num_post_pad[:1] = lay.P


def moe_sorting(topk_ids, topk_weights, num_experts, *, unit_size=32, expert_mask=None, num_local_tokens=None,
                moe_buf=None, out=None, layout: str = "ck"):
    """SPEC section 2 (layout ``"ck"``) or ``oracles/layouts.py`` (``"vllm"``).

    Assignments (t, j) with t < M, dropped when the id is outside [0, E) or masked,
    duplicates kept; experts ascending, (t, j) ascending inside one, each expert padded
    to a multiple of U. Rows [0, M) of ``moe_buf`` are zeroed. Returns SortingResult
    (ck) or VllmSortingResult (vllm): ``out`` itself when given.
    """
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {', '.join(map(repr, LAYOUTS))}, got {layout!r}")
    ids = _tensor(topk_ids, "topk_ids", ndim=2)
    if not _is_integer(ids):
        raise TypeError(f"topk_ids must be an integer tensor (int32 or int64), got {ids.dtype}")
    weights = _tensor(topk_weights, "topk_weights")
    if weights.dtype != torch.float32:
        raise TypeError(f"topk_weights must be float32 (copied bit-exactly), got {weights.dtype}")
    if weights.shape != ids.shape or weights.device != ids.device:
        raise ValueError(f"topk_weights must have the shape and device of topk_ids {tuple(ids.shape)} on "
                         f"{ids.device}, got {tuple(weights.shape)} on {weights.device}")
    T, K = ids.shape
    _int(T, "T (rows of topk_ids)", 0, MAX_TOKENS - 1)
    _int(K, "K (columns of topk_ids)", 1, MAX_TOPK)
    E = _int(num_experts, "num_experts", 1)
    U = _int(unit_size, "unit_size", 1)
    mask = _expert_mask(expert_mask, E, ids.device)
    M = _num_local_tokens(num_local_tokens, T)
    _moe_buf(moe_buf, T, ids.device)
    bufs = _sorting_buffers(out, layout, T, K, E, U, ids.device)

    lay = _layout(ids, E, U, mask, M)
    if layout == "ck":
        _write_ck(lay, weights[:M], K, M, bufs)
    else:
        _write_vllm(lay, T, K, bufs)
    if moe_buf is not None:
        moe_buf[:M].zero_()  # zero is all-zero bytes in every dtype
    return (SortingResult if layout == "ck" else VllmSortingResult)(*bufs)


# --------------------------------------------------------------------------- route


def route(logits, topk, *, unit_size=32, renormalize=True, expert_mask=None, num_local_tokens=None,
          moe_buf=None, out=None, layout: str = "ck"):
    """SPEC section 3: ``moe_sorting`` of ``topk_gating_softmax``'s output. ``out`` is
    ``(topk_weights, topk_ids, *sorting buffers)``; gating outputs go there last, once
    every argument has been accepted."""
    x = _logits(logits)
    T, E = x.shape
    _int(T, "T (rows of logits)", 0, MAX_TOKENS - 1)
    K = _int(topk, "topk", 1, min(E, MAX_TOPK))
    if out is not None:
        if not isinstance(out, (tuple, list)) or len(out) < 2:
            raise TypeError("out must be a tuple (topk_weights, topk_ids, *sorting buffers)")
        for name, buf, dtype in (("topk_weights", out[0], torch.float32), ("topk_ids", out[1], torch.int32)):
            if _tensor(buf, f"out.{name}").dtype != dtype:
                raise TypeError(f"out.{name} must be a {dtype} tensor, got {buf.dtype}")
            if tuple(buf.shape) != (T, K):
                raise ValueError(f"out.{name} must have shape ({T}, {K}), got {tuple(buf.shape)}")
    gating = topk_gating_softmax(x, K, renormalize=renormalize)
    sorting = moe_sorting(gating.topk_ids, gating.topk_weights, E, unit_size=unit_size, expert_mask=expert_mask,
                          num_local_tokens=num_local_tokens, moe_buf=moe_buf, out=None if out is None else out[2:],
                          layout=layout)
    if out is not None:
        out[0].copy_(gating.topk_weights)
        out[1].copy_(gating.topk_ids)
        gating = GatingResult(out[0], out[1])
    return (RouteResult if layout == "ck" else VllmRouteResult)(*gating, *sorting)
