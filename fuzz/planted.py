"""Planted bugs: targets with one bug each, from bug classes seen in real routing kernels.

Each is a target (same signature as the kernel function of its op, see
:mod:`fuzz.targets`); ``tests/quality`` proves that the differential properties
find every one under the ``ci`` profile and shrink it to a small case. A planted
bug that survives is a gap in :mod:`fuzz.strategies`.

Gating bugs post-process the oracle's output; sorting bugs run :func:`buggy_layout`,
a NumPy rewrite of the layout with one knob turned, and store through the same
prefix writer as the oracle target (so canaries and ``moe_buf`` are handled alike).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

import oracles
from fuzz.conventions import CK
from fuzz.properties import Target
from fuzz.targets.oracle import gating as oracle_gating
from fuzz.targets.oracle import host as _host
from fuzz.targets.oracle import m_value as _m_value
from fuzz.targets.oracle import route as oracle_route
from fuzz.targets.oracle import route_from, write_sorting
from fuzz.targets.oracle import sorting as oracle_sorting

#: One gating program's tile of tokens (the "tokens past one tile dropped" bug).
TILE = 16
#: Assignments per step of a chunked loop (the "last trip skipped" bug).
CHUNK = 4
#: Vector width of a zeroing store (the "row tail not zeroed" bug).
VECTOR_BYTES = 16


# --------------------------------------------------------------------------- gating bugs


def _gating_bug(fn: Callable[[np.ndarray, np.ndarray, np.ndarray, int, bool], tuple]) -> Callable:
    """Gating target: the oracle's output, then ``fn(logits, weights, ids, K, renormalize)``."""
    def target(logits, topk, *, renormalize=True):
        torch = __import__("torch")
        x = _host(logits)
        r = oracles.topk_gating_softmax(x, topk, renormalize=renormalize)
        w, i = fn(x, r.topk_weights.copy(), r.topk_ids.copy(), topk, renormalize)
        return oracles.GatingResult(torch.from_numpy(np.ascontiguousarray(w, np.float32)).to(logits.device),
                                    torch.from_numpy(np.ascontiguousarray(i, np.int32)).to(logits.device))
    target.__name__ = target.__qualname__ = fn.__name__
    target.__doc__ = fn.__doc__
    return target


@_gating_bug
def gating_ties_to_higher_index(x, w, ids, K, renormalize):
    """Ties go to the HIGHER expert index (a max-reduction with ``>=`` / an unkeyed bitonic topk)."""
    E = x.shape[1]
    r = oracles.topk_gating_softmax(np.ascontiguousarray(x[:, ::-1]), K, renormalize=renormalize)
    return r.topk_weights, E - 1 - r.topk_ids


@_gating_bug
def gating_nan_row_id_minus_one(x, w, ids, K, renormalize):
    """Argmax loop initialised to (-inf, -1) with a strict ``>``: a slot whose best remaining
    logit is -inf or NaN keeps id -1."""
    picked = np.take_along_axis(x, ids.astype(np.int64), axis=1)
    bad = ~(picked > -np.inf)
    return np.where(bad, 0.0, w), np.where(bad, -1, ids)


@_gating_bug
def gating_nan_repeats_id(x, w, ids, K, renormalize):
    """NaN wins the max (``torch.max`` semantics) and is never masked out (``x == max`` is
    false for NaN): a row with a NaN gets that expert in every slot."""
    for t in np.flatnonzero(np.isnan(x).any(axis=1)):
        ids[t, :] = np.flatnonzero(np.isnan(x[t]))[0]
    return w, ids


@_gating_bug
def gating_not_renormalized(x, w, ids, K, renormalize):
    """``renormalize=True`` ignored: the top-K probabilities are not divided by their sum."""
    return oracles.topk_gating_softmax(x, K, renormalize=False).topk_weights, ids


@_gating_bug
def gating_batch_dependent(x, w, ids, K, renormalize):
    """Batch-size-dependent reduction: beyond one tile of tokens the row sum is computed in
    another order, changing weights by one ulp (within tolerance, but not batch invariant)."""
    if x.shape[0] > TILE:
        w = np.nextafter(w, np.float32(np.inf), dtype=np.float32)
    return w, ids


# --------------------------------------------------------------------------- sorting bugs


@dataclass(frozen=True)
class Layout:
    """Knobs of :func:`buggy_layout`; the defaults are the contract."""

    pad_extra_block_when_full: bool = False  # padded = (c // U + 1) * U: an extra block when c % U == 0
    empty_expert_gets_block: bool = False  # an expert with c == 0 (and mask 1) still gets a block
    global_block_ids: bool = False  # sorted_expert_ids holds the global id under a mask
    sentinel_uses_T: bool = False  # padding (K << 24) | T instead of (K << 24) | M
    slot_major_order: bool = False  # within an expert, (j, t) order instead of (t, j)
    drop_past_tile: bool = False  # assignments of tokens t >= TILE are lost
    collapse_duplicates: bool = False  # a repeated id in one row counted once
    drop_last_chunk: bool = False  # chunked loop over assignments skips its last, partial trip
    last_pad_unwritten: bool = False  # the padding loop of each expert stops one slot short
    moe_buf_rows_short: bool = False  # zeroing loop stops one row short: rows [0, M-1)
    moe_buf_tail_bytes: bool = False  # zeroing with 16-byte stores only: row tails left


def buggy_layout(ids, w, E, U, mask, M, bug: Layout):
    """Sorting layout with ``bug`` applied: (prefix SortingResult, mask of written slots)."""
    T, K = ids.shape
    flat = ids[:M].reshape(-1).astype(np.int64)
    f = np.arange(flat.size)
    keep = (flat >= 0) & (flat < E)
    if mask is not None:
        keep[keep] = mask[flat[keep]] != 0
    if bug.drop_past_tile:
        keep &= f // K < TILE
    if bug.collapse_duplicates:
        for t in range(M):
            seen = set()
            for j in range(K):
                if keep[t * K + j] and flat[t * K + j] in seen:
                    keep[t * K + j] = False
                seen.add(flat[t * K + j])
    if bug.drop_last_chunk:
        keep &= f < flat.size // CHUNK * CHUNK
    kept = np.ones(E, bool) if mask is None else mask != 0
    M_pad = T if bug.sentinel_uses_T else M
    tokens, weights, written, blocks = [], [], [], []
    local = np.cumsum(kept) - kept
    wbits = np.ascontiguousarray(w[:M]).view(np.uint32).reshape(-1)
    for e in range(E):
        fe = f[keep & (flat == e)]
        if bug.slot_major_order:
            fe = fe[np.lexsort((fe // K, fe % K))]
        c = fe.size
        padded = -(-c // U) * U
        if bug.pad_extra_block_when_full and c and c % U == 0:
            padded += U
        if bug.empty_expert_gets_block and c == 0 and kept[e]:
            padded = U
        if padded == 0:
            continue
        tokens += [((g % K) << 24) | (g // K) for g in fe] + [(K << 24) | M_pad] * (padded - c)
        weights += [int(wbits[g]) for g in fe] + [0] * (padded - c)
        written += [True] * (padded - 1) + [not (bug.last_pad_unwritten and padded > c)]
        blocks += [e if bug.global_block_ids or mask is None else int(local[e])] * (padded // U)
    P = len(tokens)
    prefix = oracles.SortingResult(np.array(tokens, np.int64).astype(np.int32),
                                   np.array(weights, np.uint32).view(np.float32),
                                   np.array(blocks, np.int32), np.array([P, M], np.int32))
    return prefix, np.array(written, bool)


def _zero_moe_buf(moe_buf, M: int, bug: Layout) -> None:
    if moe_buf is None:
        return
    torch = __import__("torch")
    rows = moe_buf.view(torch.uint8).reshape(moe_buf.shape[0], -1) if moe_buf.numel() else moe_buf
    stop = M - 1 if bug.moe_buf_rows_short else M
    width = rows.shape[1] // VECTOR_BYTES * VECTOR_BYTES if bug.moe_buf_tail_bytes else rows.shape[1]
    rows[:max(stop, 0), :width] = 0


def _sorting_bug(name: str, doc: str, **knobs) -> Callable:
    bug = Layout(**knobs)

    def target(topk_ids, topk_weights, num_experts, *, unit_size=32, expert_mask=None, num_local_tokens=None,
               moe_buf=None, out=None):
        T, K = topk_ids.shape
        M = _m_value(num_local_tokens, T)
        mask = None if expert_mask is None else _host(expert_mask)
        prefix, written = buggy_layout(_host(topk_ids), _host(topk_weights), num_experts, unit_size, mask, M, bug)
        _zero_moe_buf(moe_buf, M, bug)
        return oracles.SortingResult(*write_sorting(prefix, T, K, num_experts, unit_size, topk_ids.device, out,
                                                    written=written))
    target.__name__ = target.__qualname__ = name
    target.__doc__ = doc
    return target


sorting_pad_extra_block = _sorting_bug(
    "sorting_pad_extra_block", "Padding off by one: ceil((c + 1) / U) * U slots, an extra block when c % U == 0.",
    pad_extra_block_when_full=True)
sorting_empty_expert_block = _sorting_bug(
    "sorting_empty_expert_block", "An expert with no assignment still gets one block of padding.",
    empty_expert_gets_block=True)
sorting_global_block_ids = _sorting_bug(
    "sorting_global_block_ids", "Under an expert mask, sorted_expert_ids holds the global id, not the local one.",
    global_block_ids=True)
sorting_sentinel_T = _sorting_bug(
    "sorting_sentinel_T", "The padding sentinel uses T instead of M: (K << 24) | T.", sentinel_uses_T=True)
sorting_slot_major = _sorting_bug(
    "sorting_slot_major", "Unstable order inside an expert: (slot, token) order instead of (token, slot).",
    slot_major_order=True)
sorting_drop_past_tile = _sorting_bug(
    "sorting_drop_past_tile", f"Tokens past one program's tile (t >= {TILE}) are dropped.", drop_past_tile=True)
sorting_collapse_duplicates = _sorting_bug(
    "sorting_collapse_duplicates", "A repeated expert id in one row is counted once (a per-row set / bitmask).",
    collapse_duplicates=True)
sorting_drop_last_chunk = _sorting_bug(
    "sorting_drop_last_chunk", f"The runtime loop over assignments (chunks of {CHUNK}) skips its last, partial trip.",
    drop_last_chunk=True)
sorting_last_pad_unwritten = _sorting_bug(
    "sorting_last_pad_unwritten", "The padding loop of each expert stops one slot short (last slot never written).",
    last_pad_unwritten=True)
sorting_moe_buf_rows_short = _sorting_bug(
    "sorting_moe_buf_rows_short", "The moe_buf zeroing loop skips its last trip: rows [0, M-1) only.",
    moe_buf_rows_short=True)
sorting_moe_buf_tail = _sorting_bug(
    "sorting_moe_buf_tail", f"moe_buf zeroed with {VECTOR_BYTES}-byte stores only: the last bytes of each row "
    "(row size not a multiple of 16) stay.", moe_buf_tail_bytes=True)


# --------------------------------------------------------------------------- route bugs


def route_plan_keyed_by_shape(logits, topk, **kwargs):
    """A plan cache keyed by the logits' shape and dtype only: a later call of the same shape
    runs with the expert mask and num_local_tokens of the call that built the plan."""
    key = (tuple(logits.shape), str(logits.dtype), topk)
    stale = _shape_plans.setdefault(key, {k: kwargs.get(k) for k in ("expert_mask", "num_local_tokens")})
    return oracle_route(logits, topk, **{**kwargs, **stale})


_shape_plans: dict = {}
route_plan_keyed_by_shape.reset_plans = _shape_plans.clear


# --------------------------------------------------------------------------- the catalogue


@dataclass(frozen=True)
class Planted:
    """A planted bug, the properties that must find it, and the largest acceptable shrunk size."""

    name: str
    op: str  # "gating", "sorting" or "route"
    target: Callable
    properties: tuple[str, ...]  # among "gating", "sorting", "route", "batch", "reuse"
    max_size: dict = field(default_factory=dict)  # overrides of the default shrunk-size bound

    def as_route(self) -> Callable:
        """This bug inside a route target (the rest is the oracle)."""
        if self.op == "route":
            return self.target
        if self.op == "gating":
            return route_from(self.target, oracle_sorting)
        return route_from(oracle_gating, self.target)


#: Shrunk-size bounds beyond tests/quality's default (T <= 17, E <= 8, K <= 2, U <= 4), only
#: where the bug needs more: tokens past the tile need T = TILE + 1 with any unit size.
PLANTED = (
    Planted("gating_ties_to_higher_index", "gating", gating_ties_to_higher_index, ("gating", "route")),
    Planted("gating_nan_row_id_minus_one", "gating", gating_nan_row_id_minus_one, ("gating", "route")),
    Planted("gating_nan_repeats_id", "gating", gating_nan_repeats_id, ("gating", "route")),
    Planted("gating_not_renormalized", "gating", gating_not_renormalized, ("gating", "route")),
    Planted("gating_batch_dependent", "gating", gating_batch_dependent, ("batch",)),
    Planted("sorting_pad_extra_block", "sorting", sorting_pad_extra_block, ("sorting", "route")),
    Planted("sorting_empty_expert_block", "sorting", sorting_empty_expert_block, ("sorting", "route")),
    Planted("sorting_global_block_ids", "sorting", sorting_global_block_ids, ("sorting", "route")),
    Planted("sorting_sentinel_T", "sorting", sorting_sentinel_T, ("sorting", "route")),
    Planted("sorting_slot_major", "sorting", sorting_slot_major, ("sorting", "route")),
    Planted("sorting_drop_past_tile", "sorting", sorting_drop_past_tile, ("sorting", "route"), {"U": 64}),
    Planted("sorting_collapse_duplicates", "sorting", sorting_collapse_duplicates, ("sorting",)),
    Planted("sorting_drop_last_chunk", "sorting", sorting_drop_last_chunk, ("sorting", "route")),
    Planted("sorting_last_pad_unwritten", "sorting", sorting_last_pad_unwritten, ("sorting", "route")),
    Planted("sorting_moe_buf_rows_short", "sorting", sorting_moe_buf_rows_short, ("sorting", "route")),
    Planted("sorting_moe_buf_tail", "sorting", sorting_moe_buf_tail, ("sorting", "route")),
    Planted("route_plan_keyed_by_shape", "route", route_plan_keyed_by_shape, ("reuse",)),
)
BY_NAME = {p.name: p for p in PLANTED}


def target(spec: str) -> Target:
    """``NAME`` (the bug alone, as its op) or ``NAME/route`` (inside a route target whose
    other half is the oracle) as a Target named ``planted:SPEC``."""
    name, _, as_route = spec.partition("/")
    if name not in BY_NAME or as_route not in ("", "route"):
        raise ValueError(f"unknown planted bug {spec!r}: expected NAME or NAME/route, NAME one of "
                         f"{', '.join(BY_NAME)}")
    p = BY_NAME[name]
    op = "route" if as_route else p.op
    reset = getattr(p.target, "reset_plans", None)
    # Like a real kernel, a planted one declares where its code changes path: its tile of tokens.
    conv = CK.replace(op=op).with_domain(token_boundaries=(TILE,))
    return Target.of(f"planted:{spec}", p.as_route() if as_route else p.target, conv, spec=f"planted:{spec}",
                     reset=reset)


def target_for(p: Planted, prop: str) -> Target:
    """The target that property ``prop`` judges for planted bug ``p``."""
    return target(f"{p.name}/route" if prop == "route" and p.op != "route" else p.name)
