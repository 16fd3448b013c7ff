"""Planted bugs: a corpus of small buggy targets, one bug class each, from bug classes
reported in public routing kernels (each docstring cites the report, or says "seen in
review" where there is none to cite).

Each entry of :data:`PLANTED` is a :class:`Planted`: a factory ``make(on)`` that builds the
target with its knob ON (the bug) or OFF (the control, the same code with the bug switched
off, which must pass), the properties that must find the bug, the convention the target
declares (its domain included: the token counts where its code changes path) and its
source. ``tests/quality`` proves that every bug is found by its properties under a pinned
seed within the CI budget, shrinks to a pinned minimal case and fails with its planted
symptom, and that every control passes; ``python -m fuzz power`` measures the same corpus
against a time and example budget. A planted bug that survives is a gap in
:mod:`fuzz.strategies` or in the harness (:mod:`fuzz.properties`).

How the bugs are built, by op:

* gating: the oracle's output post-processed by ``fn(call) -> (weights, ids)``
  (:func:`gating_bug`); ``call`` carries the logits tensor as passed, its exact float32
  values, the oracle's answer and, for targets that take one, the ``out=`` buffers;
* sorting: :func:`buggy_layout`, a NumPy rewrite of the layout with one :class:`Layout`
  knob turned, stored through the oracle target's prefix writer plus the stray loads and
  stores a kernel would issue (:func:`_load_at` / :func:`_store_at`: outside the
  allocation they raise, as a GPU faults); the table :data:`SORTING_BUGS` is the catalogue;
* route: plan caches with a key that misses what the plan depends on (``reuse``), and a
  second path that differs from the first (``paths``).
"""
from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Callable, NamedTuple

import numpy as np

import oracles
from fuzz.conventions import CK, VLLM
from fuzz.properties import Target, TargetGroup
from fuzz.targets.oracle import gating as oracle_gating
from fuzz.targets.oracle import host as _host
from fuzz.targets.oracle import m_value as _m_value
from fuzz.targets.oracle import route as oracle_route
from fuzz.targets.oracle import route_from, write_sorting
from fuzz.targets.oracle import sorting as oracle_sorting
from oracles.gating import probabilities_of, select, selection_key

#: One gating program's tile of tokens (the "tokens past one tile dropped" bug); every planted
#: target declares it as a token boundary, as a real kernel declares its dispatch thresholds.
TILE = 16
#: Assignments per step of a chunked loop (the "last trip skipped" bug).
CHUNK = 4
#: Vector width of a zeroing store (the "row tail not zeroed" bug).
VECTOR_BYTES = 16
#: Token count past which the path-threshold bug's second path (several programs) runs.
PATH_THRESHOLD = 24
#: Candidate slots per chunk in the two-stage top-k of the "unwritten candidate slots" bug.
MAX_TOPK = 8
#: Lanes per step of the chunked selection of the "padding lane index 0" bug.
LANES = 4

SEEN = "seen in review (no public report found)"


def _torch():
    import torch
    return torch


# --------------------------------------------------------------------------- the catalogue entry


@dataclass(frozen=True)
class Planted:
    """A planted bug: ``make(True)`` is the buggy target, ``make(False)`` its control."""

    name: str
    op: str  # "gating", "sorting" or "route"
    make: Callable[[bool], Callable]
    properties: tuple[str, ...]  # among fuzz.properties.PROPERTIES
    doc: str
    source: str  # "owner/repo#N" references, or SEEN
    layout: str = "ck"  # the declared convention: CK or VLLM ...
    convention: dict = field(default_factory=dict)  # ... with these fields changed
    token_boundaries: tuple[int, ...] = (TILE,)
    #: Examples its hunts get in CI when HUNT_EXAMPLES is not enough (None: HUNT_EXAMPLES);
    #: a class that only one exact shape exposes says so here rather than hiding in the mean.
    examples: int | None = None

    @functools.cached_property
    def target(self) -> Callable:
        return self.make(True)

    @functools.cached_property
    def control(self) -> Callable:
        return self.make(False)

    def fn(self, on: bool = True) -> Callable:
        return self.target if on else self.control

    def as_route(self, on: bool = True) -> Callable:
        """This bug (or its control) inside a route target whose other half is the oracle."""
        if self.op == "route":
            return self.fn(on)
        if self.op == "gating":
            return route_from(self.fn(on), oracle_sorting)
        return route_from(oracle_gating, self.fn(on))

    def convention_for(self, op: str):
        base = VLLM if self.layout == "vllm" else CK
        return base.replace(op=op, **self.convention).with_domain(token_boundaries=self.token_boundaries)


_CATALOGUE: list[Planted] = []


def _documented(fn: Callable, name: str, doc: str, source: str) -> Callable:
    fn.__name__ = fn.__qualname__ = name
    fn.__doc__ = f"{doc}\n\nSource: {source}"
    return fn


# --------------------------------------------------------------------------- gating bugs


class Call(NamedTuple):
    """What a gating bug sees: the call, its exact float32 logits and the correct answer."""

    logits: object  # the tensor as passed (dtype, strides)
    x: np.ndarray  # (T, E) float32, its exact values
    K: int
    renormalize: bool
    w: np.ndarray  # the oracle's weights and ids: what the knob-off target returns
    ids: np.ndarray
    out: tuple | None  # the out= buffers (targets declared with takes_out only)


def _weights_at(x: np.ndarray, ids: np.ndarray, renormalize: bool) -> np.ndarray:
    """float32 softmax weights at ``ids`` (repeats counted; ids outside [0, E) weigh 0)."""
    E = x.shape[1]
    real = (ids >= 0) & (ids < E)
    p = np.where(real, probabilities_of(x, np.where(real, ids, 0), renormalize=False), 0.0)
    if renormalize:
        s = p.sum(axis=1, keepdims=True)
        p = np.divide(p, s, out=np.zeros_like(p), where=s > 0)
    return p.astype(np.float32)


def _gating_target(fn: Callable | None, takes_out: bool) -> Callable:
    def run(logits, topk, renormalize, out):
        torch = _torch()
        x = _host(logits)
        r = oracles.topk_gating_softmax(x, topk, renormalize=renormalize)
        w, ids = (r.topk_weights, r.topk_ids) if fn is None else \
            fn(Call(logits, x, topk, renormalize, r.topk_weights.copy(), r.topk_ids.copy(), out))
        w = torch.from_numpy(np.ascontiguousarray(w, np.float32)).to(logits.device)
        ids = torch.from_numpy(np.ascontiguousarray(ids, np.int32)).to(logits.device)
        if out is None:
            return oracles.GatingResult(w, ids)
        out[0].copy_(w)
        out[1].copy_(ids)
        return oracles.GatingResult(*out)

    if takes_out:
        def target(logits, topk, *, renormalize=True, out=None):
            return run(logits, topk, renormalize, out)
    else:
        def target(logits, topk, *, renormalize=True):
            return run(logits, topk, renormalize, None)
    return target


def gating_bug(source: str, properties: tuple[str, ...] = ("gating", "route"), *, takes_out: bool = False,
               fixed: Callable | None = None, examples: int | None = None, **convention):
    """Register ``fn(call) -> (weights, ids)`` as a gating bug (its docstring says what it is).
    Knob off, the same target returns ``fixed(call)``: by default the oracle's answer (a bug
    declaring another convention brings the correct answer under it)."""
    def register(fn):
        def make(on: bool) -> Callable:
            name = fn.__name__ if on else f"{fn.__name__}_fixed"
            return _documented(_gating_target(fn if on else fixed, takes_out), name, fn.__doc__, source)
        _CATALOGUE.append(Planted(fn.__name__, "gating", make, properties, fn.__doc__, source,
                                  convention=convention, examples=examples))
        return fn
    return register


@gating_bug("SPEC section 6 (aiter's copy of triton_kernels routing ties to the higher index); "
            "vllm-project/vllm#52679 (torch.topk leaves tie order unspecified, the kernels prefer lower ids)")
def gating_ties_to_higher_index(c: Call):
    """Ties go to the HIGHER expert index (a max-reduction with ``>=`` / an unkeyed bitonic topk)."""
    E = c.x.shape[1]
    r = oracles.topk_gating_softmax(np.ascontiguousarray(c.x[:, ::-1]), c.K, renormalize=c.renormalize)
    return r.topk_weights, E - 1 - r.topk_ids


@gating_bug("sgl-project/sglang#30079 (out-of-range expert id on all-NaN rows); "
            "mlc-ai/mlc-llm#2694 (top-k index never set when the row is NaN or -inf)")
def gating_nan_row_id_minus_one(c: Call):
    """Argmax loop initialised to (-inf, -1) with a strict ``>``: a slot whose best remaining
    logit is -inf or NaN keeps id -1."""
    picked = np.take_along_axis(c.x, c.ids.astype(np.int64), axis=1)
    bad = ~(picked > -np.inf)
    return np.where(bad, 0.0, c.w), np.where(bad, -1, c.ids)


@gating_bug("vllm-project/vllm#39391 (NaN gating: the argmax picks expert 0 for every slot, duplicate ids)")
def gating_nan_repeats_id(c: Call):
    """NaN wins the max (``torch.max`` semantics) and is never masked out (``x == max`` is
    false for NaN): a row with a NaN gets that expert in every slot."""
    ids = c.ids
    for t in np.flatnonzero(np.isnan(c.x).any(axis=1)):
        ids[t, :] = np.flatnonzero(np.isnan(c.x[t]))[0]
    return c.w, ids


@gating_bug("vllm-project/vllm#31246 (review: the aiter topk_sigmoid wrapper ignores renormalize); "
            "ROCm/aiter#4460 (softmax top-k gating forced need_renorm off)")
def gating_not_renormalized(c: Call):
    """``renormalize=True`` ignored: the top-K probabilities are not divided by their sum."""
    return oracles.topk_gating_softmax(c.x, c.K, renormalize=False).topk_weights, c.ids


@gating_bug("flashinfer-ai/flashinfer#2889 (bug C: norm_topk_prob never reached the kernel, which "
            "always renormalized); lightseekorg/tokenspeed#603 (review: normalization defaulted to on)")
def gating_renormalize_forced(c: Call):
    """``renormalize=False`` ignored: the top-K probabilities are always divided by their sum."""
    return oracles.topk_gating_softmax(c.x, c.K, renormalize=True).topk_weights, c.ids


@gating_bug("sgl-project/sglang#35160 (renormalize=False returned the raw gathered router logits)")
def gating_raw_logit_weights(c: Call):
    """Softmax applied only inside the renormalize branch: with ``renormalize=False`` the
    weights are the raw selected logits."""
    if c.renormalize:
        return c.w, c.ids
    return np.take_along_axis(c.x, c.ids.astype(np.int64), axis=1), c.ids


@gating_bug(SEEN + "; SPEC section 3 (batch invariance)", ("batch",))
def gating_batch_dependent(c: Call):
    """Batch-size-dependent reduction: beyond one tile of tokens the row sum is computed in
    another order, changing weights by one ulp (within tolerance, but not batch invariant)."""
    if c.x.shape[0] > TILE:
        return np.nextafter(c.w, np.float32(np.inf), dtype=np.float32), c.ids
    return c.w, c.ids


def _streaming_topk(c: Call, padded: bool = False):
    """Top-K ties to the higher index (aiter's copy of the Triton streaming top-k) over the
    row, or over the row padded with -inf lanes up to a power of two."""
    T, E = c.x.shape
    key = np.full((T, 1 << (E - 1).bit_length() if padded else E), -np.inf, np.float32)
    key[:, :E] = selection_key(c.x)
    ids = select(key, c.K, ties="higher")
    return _weights_at(c.x, ids, c.renormalize), ids


@gating_bug("ROCm/aiter#4530 (padding tokens' inf/NaN logits made streaming_topk return ids >= E); "
            "triton-lang/triton#10814 (padded -inf lanes ranked above valid experts)", fixed=_streaming_topk,
            ties="higher")
def gating_padded_lane_wins_tie(c: Call):
    """aiter's copy of the Triton streaming top-k (ties to the HIGHER index: declared) pads E up
    to a power of two with -inf lanes. A padded lane ties with a real -inf (or NaN) logit and,
    its index being higher, wins: ids >= E. Knob off, the pads are masked out."""
    return _streaming_topk(c, padded=True)


@gating_bug("tenstorrent/tt-metal#56626 (NaN lanes ordered by their raw bits: a -NaN ranks below -inf)",
            examples=600)
def gating_negative_nan_key(c: Call):
    """Sortable-bits keys sanitized only where a NaN's key lies above +inf's: a NaN with the sign
    bit set keeps its raw key, below -inf's, so it ranks under -inf instead of tying with it
    (by index). Needs a -NaN at a lower index than a tying -inf or NaN: the gating strategy
    draws one within 10 examples, the route strategy (mask, M, moe_buf drawn too) within 75 to
    550 over four seeds, hence its CI budget of 600."""
    key = selection_key(c.x)
    below = (np.isnan(c.x) & np.signbit(c.x)).astype(np.int8)
    index = np.broadcast_to(np.arange(c.x.shape[1]), c.x.shape)
    ids = np.stack([np.lexsort((index[t], below[t], -key[t]))[:c.K] for t in range(c.x.shape[0])]) \
        if c.x.shape[0] else c.ids
    return _weights_at(c.x, ids, c.renormalize), ids.astype(np.int32)


@gating_bug("the issue names ROCm/aiter#3292, which could not be read here; " + SEEN +
            "; SPEC section 5 (tl.sort / tl.topk are bitonic: power-of-two sizes only)")
def gating_bitonic_nonpow2_k(c: Call):
    """K rounded down to a power of two K' for the bitonic network; the K - K' slots left take
    the lowest-index experts not yet selected (in network order, not by value): real top-K
    experts are dropped whenever K is not a power of two."""
    Kp = 1 << (c.K.bit_length() - 1)
    if Kp == c.K:
        return c.w, c.ids
    ids = c.ids.copy()
    for t in range(ids.shape[0]):
        rest = [e for e in range(c.x.shape[1]) if e not in set(ids[t, :Kp].tolist())]
        ids[t, Kp:] = rest[: c.K - Kp]
    return _weights_at(c.x, ids, c.renormalize), ids


@gating_bug("flashinfer-ai/flashinfer#2822 and vllm-project/vllm#37605 (all-negative router logits "
            "mis-routed by the in-kernel renormalize top-k); vllm-project/vllm#31478 (review: a max "
            "initialised to -1 'is OK because inputs are probabilities')")
def gating_all_negative_init_zero(c: Call):
    """Each slot's running max starts at (0.0, expert 0) -- right for probabilities, but the
    kernel ranks raw logits: a slot whose remaining logits are all <= 0 keeps expert 0."""
    key = selection_key(c.x).astype(np.float64)
    ids = np.zeros_like(c.ids)
    for t in range(key.shape[0]):
        for j in range(c.K):
            e = int(np.argmax(key[t])) if key[t].max() > 0.0 else 0
            ids[t, j] = e
            key[t, e] = -np.inf
    return _weights_at(c.x, ids, c.renormalize), ids


@gating_bug("flagos-ai/FlagGems#5123 (topk_softmax stored the raw weights, then loaded the output back "
            "to renormalize: corrupted, nondeterministic weights with renormalize=True)", ("gating",),
            takes_out=True)
def gating_reads_own_output(c: Call):
    """Stores the raw top-K probabilities, then re-reads the output buffer for the renormalizing
    sum before those stores are visible: the sum comes from whatever the buffer held (the
    harness's canary when it passes ``out=``; a fresh zeroed buffer otherwise)."""
    if not c.renormalize:
        return c.w, c.ids
    raw = oracles.topk_gating_softmax(c.x, c.K, renormalize=False).topk_weights
    held = c.out[0].detach().cpu().float().numpy() if c.out is not None else np.zeros_like(raw)
    with np.errstate(all="ignore"):
        return (raw / held.sum(axis=1, keepdims=True)).astype(np.float32), c.ids


@gating_bug("flashinfer-ai/flashinfer#3224 (topk < MaxNumTopExperts left shared-memory candidate slots "
            "uninitialized; the merge selected invalid experts)")
def gating_unwritten_candidate_slots(c: Call):
    """Two-stage top-k: each 32-expert chunk writes its top-K into MAX_TOPK (8) candidate slots;
    slots K..7 are never written (zero-filled memory: score 0.0, expert 0) but the merge reads
    all of them, ties to the lower expert id. Only K < 8 is affected."""
    if c.K >= MAX_TOPK:
        return c.w, c.ids
    key = selection_key(c.x)
    T, E = key.shape
    ids = c.ids.copy()
    for t in range(T):
        cand = []
        for start in range(0, E, 32):
            chunk = key[t, start:start + 32]
            top = np.argsort(-chunk, kind="stable")[: c.K]
            cand += [(float(chunk[i]), start + int(i)) for i in top] + [(0.0, 0)] * (MAX_TOPK - len(top))
        ids[t] = [e for _, e in sorted(cand, key=lambda s: (-s[0], s[1]))[: c.K]]
    return _weights_at(c.x, ids, c.renormalize), ids


@gating_bug("vllm-project/vllm#39391 (the fix clamps NaN/Inf gating values to 0 before the top-k)")
def gating_nan_clamped_to_zero(c: Call):
    """NaN and +-inf logits clamped to 0 before the top-k: a NaN then outranks every negative
    logit, and a row with +inf loses its 1/count(+inf) limit."""
    xc = np.where(np.isfinite(c.x), c.x, np.float32(0))
    r = oracles.topk_gating_softmax(xc, c.K, renormalize=c.renormalize)
    return r.topk_weights, r.topk_ids


@gating_bug("vllm-project/vllm#32058 (review: padding entries carry index 0 and win the lower-index "
            "tie when the valid scores are -inf)")
def gating_padding_lane_index_zero(c: Call):
    """Experts scanned in steps of 4 lanes; lanes past E carry (-inf, index 0) instead of their
    own index. When a slot's best remaining score is -inf, a padding lane's index 0 wins the
    lower-index tie and expert 0 is picked (again)."""
    key = selection_key(c.x)
    T, E = key.shape
    P = -(-E // LANES) * LANES
    ids = c.ids.copy()
    for t in range(T):
        lanes = [(float(key[t, e]), e) for e in range(E)] + [(-np.inf, 0)] * (P - E)
        for j in range(c.K):
            lane = min(range(len(lanes)), key=lambda i: (-lanes[i][0], lanes[i][1], i))
            ids[t, j] = lanes.pop(lane)[1]
    return _weights_at(c.x, ids, c.renormalize), ids


@gating_bug("vllm-project/vllm#42608 (review: selected scores overwritten with -1.f, experts picked again); "
            "vllm-project/vllm#31478 (review: -1.f 'OK because inputs are probabilities')")
def gating_finite_mask_sentinel(c: Call):
    """A selected expert is masked by overwriting its score with -1.0 -- below every probability,
    but the kernel ranks raw logits: once the remaining logits are all < -1 (or equal, the tie
    going to the lower index) an already selected expert is picked again."""
    key = selection_key(c.x).astype(np.float64)
    ids = c.ids.copy()
    for t in range(key.shape[0]):
        for j in range(c.K):
            ids[t, j] = e = int(np.argmax(key[t]))
            key[t, e] = -1.0
    return _weights_at(c.x, ids, c.renormalize), ids


@gating_bug("flashinfer-ai/flashinfer#2889 (bug B: the score dtype was fixed, bf16 logits read as float32)")
def gating_16bit_dtype_misread(c: Call):
    """The kernel's score dtype is fixed at compile time and the caller's ignored: float16
    logits are read as bfloat16 bits and bfloat16 as float16 (the report's bf16-as-fp32, narrowed
    to same-width types so the read stays inside the tensor)."""
    torch = _torch()
    other = {torch.float16: torch.bfloat16, torch.bfloat16: torch.float16}.get(c.logits.dtype)
    if other is None:
        return c.w, c.ids
    x = c.logits.contiguous().view(other).float().cpu().numpy()
    r = oracles.topk_gating_softmax(x, c.K, renormalize=c.renormalize)
    return r.topk_weights, r.topk_ids


@gating_bug("flashinfer-ai/flashinfer#4713 (routing rows indexed tokenIdx * numExperts: strided logits "
            "silently misrouted); ROCm/aiter#2124 (strided gating scores)")
def gating_row_stride_ignored(c: Call):
    """Row t is read at ``t * E`` from the start of the logits (the row stride assumed to be E):
    a column slice of a wider tensor is read across its row boundaries."""
    torch = _torch()
    T, E = c.x.shape
    if T == 0 or c.logits.stride(0) == E:
        return c.w, c.ids
    x = torch.as_strided(c.logits, (T, E), (E, 1)).float().cpu().numpy()
    r = oracles.topk_gating_softmax(x, c.K, renormalize=c.renormalize)
    return r.topk_weights, r.topk_ids


# --------------------------------------------------------------------------- sorting bugs


@dataclass(frozen=True)
class Layout:
    """Knobs of :func:`buggy_layout` and :func:`_sorting_target`; the defaults are the contract."""

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
    moe_buf_all_rows: bool = False  # zeroing runs to T, not M: rows >= M zeroed too
    negative_id_offset: bool = False  # e < 0 passes an `e < E` check: a store at offset e * T + t
    mask_wraps_negative: bool = False  # under a mask, e in [-E, 0) indexes the table from its end
    mask_as_expert_map: bool = False  # sorted_expert_ids = mask[e] (the 0/1 mask read as a local-id map)
    overread_input: bool = False  # the assignment loop runs to M*K inclusive: one element past
    short_grid_past: int = 0  # T > this: cdiv(T - 1, this) programs of this many tokens (0: off)
    fill_whole_blocks: bool = False  # the tail fill runs over whole U-row blocks of the capacity
    weights_ftz: bool = False  # weights copied through float math: denormals flushed, sNaN quieted
    invalid_bucket: bool = False  # ids outside [0, E) kept in an extra bucket with block id -1
    vllm_tail_block: int = -1  # the expert_ids value past the valid blocks (vLLM layout)
    vllm_flat_transposed: bool = False  # vLLM flat index j * T + t instead of t * K + j


def _load_at(t, index: int):
    """One load of element ``index`` counted from the start of ``t`` (a flat view), wherever that
    lands in its allocation; outside the allocation it raises, as a GPU faults."""
    torch = _torch()
    off = t.storage_offset() + index
    if not 0 <= off < t.untyped_storage().nbytes() // t.element_size():
        raise RuntimeError(f"illegal memory access: load of element {index} of a {t.numel()}-element buffer")
    return torch.as_strided(t, (1,), (1,), off).item()


def _store_at(t, index: int, value) -> None:
    """One store to element ``index`` counted from the start of ``t`` (see :func:`_load_at`)."""
    torch = _torch()
    off = t.storage_offset() + index
    if not 0 <= off < t.untyped_storage().nbytes() // t.element_size():
        raise RuntimeError(f"illegal memory access: store to element {index} of a {t.numel()}-element buffer")
    torch.as_strided(t, (1,), (1,), off).fill_(value)


def _ftz_bits(bits: np.ndarray) -> np.ndarray:
    """float32 bits after a pass through flush-to-zero float math: denormals keep their sign
    only, signalling NaNs come out quiet."""
    exp, mant = (bits >> 23) & 0xFF, bits & 0x7FFFFF
    bits = np.where((exp == 0) & (mant != 0), bits & 0x80000000, bits)
    return np.where((exp == 0xFF) & (mant != 0), bits | 0x400000, bits).astype(np.uint32)


def buggy_layout(ids, w, E, U, mask, M, bug: Layout, extra=None):
    """Sorting layout with ``bug`` applied: (prefix SortingResult, mask of written slots).
    ``extra`` = (id, weight bits) of one more assignment read past the input (overread_input)."""
    T, K = ids.shape
    flat = ids[:M].reshape(-1).astype(np.int64)
    wbits = np.ascontiguousarray(w[:M], dtype=np.float32).view(np.uint32).reshape(-1)
    if extra is not None:
        flat, wbits = np.append(flat, extra[0]), np.append(wbits, np.uint32(extra[1]))
    if bug.weights_ftz:
        wbits = _ftz_bits(wbits)
    f = np.arange(flat.size)
    if bug.mask_wraps_negative and mask is not None:
        flat = np.where((flat < 0) & (flat >= -E), flat + E, flat)
    keep = (flat >= 0) & (flat < E)
    if mask is not None:
        keep[keep] = mask[flat[keep]] != 0
    if bug.drop_past_tile:
        keep &= f // K < TILE
    if bug.short_grid_past and T > bug.short_grid_past:
        keep &= f // K < -(-(T - 1) // bug.short_grid_past) * bug.short_grid_past
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
    segments = [(e, f[keep & (flat == e)]) for e in range(E)]
    if bug.invalid_bucket:
        segments.append((-1, f[~((flat >= 0) & (flat < E))]))
    for e, fe in segments:
        if bug.slot_major_order:
            fe = fe[np.lexsort((fe // K, fe % K))]
        c = fe.size
        padded = -(-c // U) * U
        if bug.pad_extra_block_when_full and c and c % U == 0:
            padded += U
        if bug.empty_expert_gets_block and c == 0 and e >= 0 and kept[e]:
            padded = U
        if padded == 0:
            continue
        tokens += [((g % K) << 24) | (g // K) for g in fe] + [(K << 24) | M_pad] * (padded - c)
        weights += [int(wbits[g]) for g in fe] + [0] * (padded - c)
        written += [True] * (padded - 1) + [not (bug.last_pad_unwritten and padded > c)]
        if e < 0:
            block = -1
        elif bug.mask_as_expert_map and mask is not None:
            block = int(mask[e])
        else:
            block = e if bug.global_block_ids or mask is None else int(local[e])
        blocks += [block] * (padded // U)
    P = len(tokens)
    prefix = oracles.SortingResult(np.array(tokens, np.int64).astype(np.int32),
                                   np.array(weights, np.uint32).view(np.float32),
                                   np.array(blocks, np.int32), np.array([P, M], np.int32))
    return prefix, np.array(written, bool)


def _zero_moe_buf(moe_buf, M: int, bug: Layout) -> None:
    if moe_buf is None:
        return
    torch = _torch()
    rows = moe_buf.view(torch.uint8).reshape(moe_buf.shape[0], -1) if moe_buf.numel() else moe_buf
    stop = moe_buf.shape[0] if bug.moe_buf_all_rows else M - 1 if bug.moe_buf_rows_short else M
    width = rows.shape[1] // VECTOR_BYTES * VECTOR_BYTES if bug.moe_buf_tail_bytes else rows.shape[1]
    rows[:max(stop, 0), :width] = 0


def _sorting_target(bug: Layout, layout: str, capacity: str) -> Callable:
    def target(topk_ids, topk_weights, num_experts, *, unit_size=32, expert_mask=None, num_local_tokens=None,
               moe_buf=None, out=None):
        T, K = topk_ids.shape
        M = _m_value(num_local_tokens, T)
        mask = None if expert_mask is None else _host(expert_mask)
        extra = None
        if bug.overread_input:  # the loop's last trip reads element M*K of both inputs
            extra = (_load_at(topk_ids.reshape(-1), M * K),
                     int(_load_at(topk_weights.reshape(-1).view(_torch().int32), M * K)) & 0xFFFFFFFF)
        prefix, written = buggy_layout(_host(topk_ids), _host(topk_weights), num_experts, unit_size, mask, M, bug,
                                       extra)
        _zero_moe_buf(moe_buf, M, bug)
        res = write_sorting(prefix, T, K, num_experts, unit_size, topk_ids.device, out, written=written,
                            layout=layout, capacity=capacity)
        _stray_stores(res, prefix, _host(topk_ids), M, unit_size, bug, layout)
        return res
    return target


def _stray_stores(res, prefix, ids, M: int, U: int, bug: Layout, layout: str) -> None:
    """The stores a kernel with ``bug`` issues outside the prefix writer's reach."""
    T, K = ids.shape
    tok = res[0]
    if bug.negative_id_offset:  # p_mesh[e * stride + t] with e < 0: before the buffer
        for g in np.flatnonzero(ids[:M].reshape(-1) < 0):
            t, j = divmod(int(g), K)
            _store_at(tok, int(ids[t, j]) * T + t, j + 1)
    P = int(prefix.num_valid_ids[0])
    if bug.fill_whole_blocks:  # the tail fill loops over whole blocks: past a capacity that is no multiple of U
        for i in range(P, -(-tok.numel() // U) * U):
            _store_at(tok, i, (K << 24) | M)
            _store_at(res[1].view(_torch().int32), i, 0)
    if layout == "vllm":
        nb = P // U
        if bug.vllm_tail_block != -1:
            res[1][nb:] = bug.vllm_tail_block
        if bug.vllm_flat_transposed:
            flat = tok[:P].clone()
            real = flat < T * K
            t, j = flat // max(K, 1), flat % max(K, 1)
            tok[:P] = _torch().where(real, j * T + t, flat)


def _fill_tail_fixed(target: Callable) -> Callable:
    """The knob-off control of fill_whole_blocks: the same tail fill, stopping at the capacity."""
    def fixed(topk_ids, topk_weights, num_experts, *, unit_size=32, expert_mask=None, num_local_tokens=None,
              moe_buf=None, out=None):
        res = target(topk_ids, topk_weights, num_experts, unit_size=unit_size, expert_mask=expert_mask,
                     num_local_tokens=num_local_tokens, moe_buf=moe_buf, out=out)
        T, K = topk_ids.shape
        M = _m_value(num_local_tokens, T)
        P = int(res[3][0])
        res[0][P:] = (K << 24) | M
        res[1].view(_torch().int32)[P:] = 0
        return res
    return fixed


class SortingBug(NamedTuple):
    """A row of :data:`SORTING_BUGS`."""

    name: str
    knobs: dict
    doc: str
    source: str
    properties: tuple[str, ...] = ("sorting", "route")
    layout: str = "ck"
    convention: dict = {}
    token_boundaries: tuple[int, ...] = (TILE,)
    examples: int | None = None


#: The sorting bugs: one Layout knob each.
SORTING_BUGS = (
    SortingBug("sorting_pad_extra_block", dict(pad_extra_block_when_full=True),
               "Padding off by one: ceil((c + 1) / U) * U slots, an extra block when c % U == 0.", SEEN),
    SortingBug("sorting_empty_expert_block", dict(empty_expert_gets_block=True),
               "An expert with no assignment still gets one block of padding.", SEEN),
    SortingBug("sorting_global_block_ids", dict(global_block_ids=True),
               "Under an expert mask, sorted_expert_ids holds the global id, not the local one.",
               "ROCm/aiter#2478 (under EP, sorted_expert_ids were not local expert indices); "
               "ROCm/aiter#3208 (global expert ids used to index local tensors)"),
    SortingBug("sorting_sentinel_T", dict(sentinel_uses_T=True),
               "The padding sentinel uses T instead of M: (K << 24) | T.", SEEN),
    SortingBug("sorting_slot_major", dict(slot_major_order=True),
               "Unstable order inside an expert: (slot, token) order instead of (token, slot).", SEEN),
    SortingBug("sorting_drop_past_tile", dict(drop_past_tile=True),
               f"Tokens past one program's tile (t >= {TILE}) are dropped.", SEEN),
    SortingBug("sorting_collapse_duplicates", dict(collapse_duplicates=True),
               "A repeated expert id in one row is counted once (a per-row set / bitmask).",
               "vllm-project/vllm#39391 (duplicate expert ids in a row reached FlashInfer's MoE sort and crashed it)",
               ("sorting",)),
    SortingBug("sorting_drop_last_chunk", dict(drop_last_chunk=True),
               f"The runtime loop over assignments (chunks of {CHUNK}) skips its last, partial trip.", SEEN),
    SortingBug("sorting_last_pad_unwritten", dict(last_pad_unwritten=True),
               "The padding loop of each expert stops one slot short (last slot never written).", SEEN),
    SortingBug("sorting_moe_buf_rows_short", dict(moe_buf_rows_short=True),
               "The moe_buf zeroing loop skips its last trip: rows [0, M-1) only.", SEEN),
    SortingBug("sorting_moe_buf_tail", dict(moe_buf_tail_bytes=True),
               f"moe_buf zeroed with {VECTOR_BYTES}-byte stores only: the last bytes of each row (row size not "
               "a multiple of 16) stay.", SEEN),
    SortingBug("sorting_moe_buf_all_rows", dict(moe_buf_all_rows=True),
               "The moe_buf zeroing runs over all T rows: rows >= M (another rank's tokens) are zeroed too.",
               SEEN),
    SortingBug("sorting_negative_id_before_buffer", dict(negative_id_offset=True),
               "A negative expert id (expert parallelism's -1 for a padded or foreign token) passes an "
               "upper-bound-only check (e < E) and is stored at offset e * T + t: before the buffer.",
               "ROCm/aiter#4827, ROCm/aiter#4839 (MoeSortingMultiPhaseKernel_P0_v1 wrote before p_expert_mesh); "
               "ROCm/aiter#5295 (the remaining Opus / FlyDSL paths); ROCm/rocm-libraries#6242", ("sorting",)),
    SortingBug("sorting_negative_id_wraps_mask", dict(mask_wraps_negative=True),
               "Under an expert mask the raw id indexes the mask / local-id table: a negative id wraps to "
               "the table's end (Python / torch indexing) and its slot is routed to the last expert.",
               "ROCm/aiter#4636 (expert_mask[topk_ids] maps a negative id onto the trailing element); "
               "sgl-project/sglang#40498 (local_expert_mapping[topk_ids] maps -1 through the final entry); "
               "vllm-project/vllm#46408 (expert_map[topk_ids] wraps -1); the issue's ROCm/ATOM#887 could "
               "not be read here", ("sorting",)),
    SortingBug("sorting_mask_as_expert_map", dict(mask_as_expert_map=True),
               "The 0/1 expert mask read as a global-to-local expert map: every block's id is 0 or 1.",
               "vllm-project/vllm#49758 (kernels misread the 0/1 AITER mask as slot indices: every token "
               "collapsed onto local slot 0/1)"),
    SortingBug("sorting_overread_input", dict(overread_input=True),
               "The assignment loop runs to M*K inclusive: one element past topk_ids / topk_weights is read "
               "and counted (token M, slot 0). Unguarded it faults; the harness cuts its inputs from "
               "larger allocations whose guard holds expert 0, so the read value changes the output.",
               "NVIDIA/TensorRT-LLM#17951 (trtllm-gen MoE read one element past the route map); "
               "flashinfer-ai/flashinfer#4237 (the same over-read, padded by one element)", ("sorting",)),
    SortingBug("sorting_path_threshold_grid", dict(short_grid_past=PATH_THRESHOLD),
               f"Past a dispatch threshold (T > {PATH_THRESHOLD}, declared in the convention's "
               f"token_boundaries) the multi-program path launches cdiv(T - 1, {PATH_THRESHOLD}) programs: "
               f"at T = {PATH_THRESHOLD} + 1 the last token is dropped, at every other T it is right. One exact "
               "T, all its rows in use, the last token's expert kept: about 1 case in 70, so its CI budget is "
               "1000 examples (found within 200 for 3 seeds of 6).",
               "NVIDIA/TensorRT-LLM#13294 (revert of a routing refactor; its review found the token-count dispatch, "
               "single-cluster path for <= 1024 tokens, writing through a pointer nulled for that path); "
               "ROCm/aiter#2359 (a failure only past a token-count dispatch threshold)", ("sorting",),
               token_boundaries=(TILE, PATH_THRESHOLD), examples=1000),
    SortingBug("sorting_capacity_not_block_multiple", dict(fill_whole_blocks=True),
               "Declares aiter's capacity (T*K + E*U - K rows, not a multiple of U) and fills the tail, "
               "but the fill loops over whole U-row blocks: it stores past the end of the buffer.",
               "ROCm/aiter#5573 (max_num_tokens_padded not a block_size multiple: whole-block accesses "
               "ran past the sort buffer)", convention=dict(capacity="aiter", tail="filled")),
    SortingBug("sorting_weights_ftz", dict(weights_ftz=True),
               "Weights copied through float math instead of as bits: denormals flushed to zero and "
               "signalling NaNs quieted (SPEC: sorted_weights bit-exact).", SEEN, ("sorting",)),
    SortingBug("vllm_tail_blocks_zero", dict(vllm_tail_block=0),
               "vLLM layout: expert_ids past the valid blocks hold 0 (older vLLM) while the target declares "
               "the current convention (-1, which the GEMM skips).",
               "vllm-project/vllm#19590 (expert ids not on this rank marked -1 so the GEMM skips them); "
               "SPEC section 6", layout="vllm"),
    SortingBug("vllm_invalid_ids_bucket", dict(invalid_bucket=True),
               "vLLM layout: ids outside [0, E) are not skipped but gathered in an extra bucket after the "
               "experts (block id -1).",
               "sgl-project/sglang#12701 (the E + 1 bucket for invalid expert ids); vllm-project/vllm#29642 "
               "(ignore_invalid_experts, off by default)", ("sorting",), layout="vllm"),
    SortingBug("vllm_flat_index_transposed", dict(vllm_flat_transposed=True),
               "vLLM layout: sorted_token_ids hold j * T + t instead of the flat index t * K + j.", SEEN,
               layout="vllm"),
)


def _sorting_planted(b: SortingBug) -> Planted:
    capacity = b.convention.get("capacity", "vllm" if b.layout == "vllm" else "tight")

    def make(on: bool) -> Callable:
        fn = _sorting_target(Layout(**b.knobs) if on else Layout(), b.layout, capacity)
        if not on and b.knobs.get("fill_whole_blocks"):
            fn = _fill_tail_fixed(fn)
        return _documented(fn, b.name if on else f"{b.name}_fixed", b.doc, b.source)
    return Planted(b.name, "sorting", make, b.properties, b.doc, b.source, b.layout, b.convention,
                   b.token_boundaries, b.examples)


# --------------------------------------------------------------------------- route bugs


def _plan_cache_route(key_of: Callable) -> Callable:
    """A route target with a plan cache: the first call of a key captures the expert mask and
    num_local_tokens into the plan, later calls of that key reuse them."""
    plans: dict = {}

    def target(logits, topk, **kwargs):
        stale = plans.setdefault(key_of(logits, topk, kwargs),
                                 {k: kwargs.get(k) for k in ("expert_mask", "num_local_tokens")})
        return oracle_route(logits, topk, **{**kwargs, **stale})
    target.reset_plans = plans.clear
    return target


def _bytes(t) -> bytes | None:
    return None if t is None else _host(t).tobytes()


def _full_key(logits, topk, kw):
    return (tuple(logits.shape), str(logits.dtype), topk, _bytes(kw.get("expert_mask")),
            _bytes(kw.get("num_local_tokens")) if hasattr(kw.get("num_local_tokens"), "shape")
            else kw.get("num_local_tokens"))


def _route_bug(name: str, doc: str, source: str, properties: tuple[str, ...], buggy: Callable,
               fixed: Callable) -> Planted:
    def make(on: bool) -> Callable:
        return _documented(buggy() if on else fixed(), name if on else f"{name}_fixed", doc, source)
    return Planted(name, "route", make, properties, doc, source)


def _same(fn: Callable) -> Callable:
    def route(logits, topk, **kwargs):
        return fn(logits, topk, **kwargs)
    return route


def _weights_one_ulp_up():
    def fused(logits, topk, **kwargs):
        r = oracle_route(logits, topk, **kwargs)
        r[0].copy_(_torch().nextafter(r[0], _torch().full_like(r[0], np.inf)))
        return r
    return fused


ROUTE_BUGS = (
    _route_bug("route_plan_keyed_by_shape",
               "A plan cache keyed by the logits' shape and dtype only: a later call of the same shape runs "
               "with the expert mask and num_local_tokens of the call that built the plan.",
               "ROCm/aiter#2478 (a cache keyed by (data_ptr, numel) to avoid stale entries from memory reuse)",
               ("reuse",),
               lambda: _plan_cache_route(lambda lg, k, kw: (tuple(lg.shape), str(lg.dtype), k)),
               lambda: _plan_cache_route(_full_key)),
    _route_bug("route_m_captured_at_plan",
               "A plan cache keyed by everything but num_local_tokens: M is read once, when the plan is "
               "built (as a graph capture would freeze it), and reused by later calls with another M.",
               "sgl-project/sglang#35113 (review: num_token_non_padded changes across replays of one "
               "captured bucket); SPEC section 2 (M read on the device, replayable with another value)",
               ("reuse",),
               lambda: _plan_cache_route(lambda lg, k, kw: (tuple(lg.shape), str(lg.dtype), k,
                                                            _bytes(kw.get("expert_mask")))),
               lambda: _plan_cache_route(_full_key)),
    _route_bug("paths_fused_weights_ulp",
               "The fused path sums the softmax denominator in another order than the unfused path: its "
               "weights differ by one ulp. Each path alone is within tolerance; SPEC section 3 wants every "
               "path bit-identical, which only the paths property checks.", SEEN, ("paths",),
               _weights_one_ulp_up, lambda: _same(oracle_route)),
)


# --------------------------------------------------------------------------- the catalogue

PLANTED: tuple[Planted, ...] = tuple(_CATALOGUE) + tuple(_sorting_planted(b) for b in SORTING_BUGS) + ROUTE_BUGS
BY_NAME = {p.name: p for p in PLANTED}
_VARIANTS = ("", "route", "fixed", "route/fixed")


def target(spec: str) -> Target:
    """``NAME`` (the bug alone, as its op), ``NAME/route`` (inside a route target whose other
    half is the oracle), and either with ``/fixed`` (the knob off: the control) as a Target
    named ``planted:SPEC``."""
    name, _, variant = spec.partition("/")
    if name not in BY_NAME or variant not in _VARIANTS:
        raise ValueError(f"unknown planted bug {spec!r}: expected NAME, NAME/route, NAME/fixed or NAME/route/fixed, "
                         f"NAME one of {', '.join(BY_NAME)}")
    p = BY_NAME[name]
    on = not variant.endswith("fixed")
    as_route = variant.startswith("route")
    op = "route" if as_route else p.op
    fn = p.as_route(on) if as_route else p.fn(on)
    return Target.of(f"planted:{spec}", fn, p.convention_for(op), spec=f"planted:{spec}",
                     reset=getattr(fn, "reset_plans", None))


def target_for(p: Planted, prop: str, *, on: bool = True):
    """What property ``prop`` judges for planted bug ``p`` (knob ``on``, or off: its control):
    a Target, or for ``paths`` the TargetGroup of the reference path (knob off) and this one."""
    fixed = "" if on else "/fixed"
    if prop == "paths":  # the reference path first; names are specs, so a bundle rebuilds the pair
        return TargetGroup((f"planted:{spec}", target(spec)) for spec in (f"{p.name}/fixed", f"{p.name}{fixed}"))
    return target(f"{p.name}/route{fixed}" if prop == "route" and p.op != "route" else f"{p.name}{fixed}")
