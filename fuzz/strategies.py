"""Regime-first Hypothesis strategies for gating, sorting and route inputs.

Every composite strategy draws its regimes FIRST (``st.sampled_from`` with the
simplest regime first, each labelled with ``hypothesis.event``), then sizes with
integer strategies whose minimum is the simple case, then the structure that makes
a case nasty -- a special row, a tie, an out-of-range id, a NaN-payload weight -- as
list entries the shrinker can drop, and the bulk values LAST. Bulk values are a
drawn head of up to SMALL_ARRAY elements (shrinks toward 0: ties, identity
permutations) plus, for bigger arrays, a NumPy generator seeded by a drawn integer.
Drawing the bulk last keeps the shrinker's choices aligned when it lowers T or E.

Regimes (each label is also recorded in ``case.labels``, which the statistics
test uses to prove that CI generates every one of them):

=============  ===========================================================================
dimension      regimes (simplest first)
=============  ===========================================================================
``logits``     distinct, ties, specials
``special``    nan_entry, all_nan, all_neg_inf, pos_inf, underflow, neg_zero   (specials only)
``dtype``      float32, float16, bfloat16   (+ ``layout``: contiguous, strided)
``ids``        uniform, skewed, empty_experts, unit_edges, duplicates, out_of_range
``weights``    plain, bit_patterns
``tokens``     small, edge (0 / 1), threshold (t-1, t, t+1 of each dispatch threshold), wide,
               derived (ids ``unit_edges``: T follows from the per-expert counts)
``topk``       small, all (K == min(E, 127))
``mask``       none, all_ones, sparse (at least one expert off), all_zeros
``m``          none, int, tensor   (rows >= M hold garbage)
``moe_buf``    none, float32, bfloat16, uint8, int64 (row sizes not multiples of 16 bytes)
``out``        poisoned (canary-filled out= buffers), allocated
=============  ===========================================================================
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
from hypothesis import event
from hypothesis import strategies as st

from fuzz.cases import (WEIGHT_BITS, BatchCase, GatingCase, Logits, Options, ReuseCase, RouteCase,  # noqa: F401
                        SortingCase, round_to)

LOGIT_REGIMES = ("distinct", "ties", "specials")
#: Kinds of special rows in the ``specials`` logits regime.
SPECIAL_KINDS = ("nan_entry", "all_nan", "all_neg_inf", "pos_inf", "underflow", "neg_zero")
DTYPES = ("float32", "float16", "bfloat16")
LAYOUTS = ("contiguous", "strided")
ID_REGIMES = ("uniform", "skewed", "empty_experts", "unit_edges", "duplicates", "out_of_range")
WEIGHT_REGIMES = ("plain", "bit_patterns")
TOKEN_REGIMES = ("small", "edge", "threshold", "wide")
TOPK_REGIMES = ("small", "all")
MASK_REGIMES = ("none", "all_ones", "sparse", "all_zeros")
M_REGIMES = ("none", "int", "tensor")
MOE_BUF_REGIMES = ("none", "float32", "bfloat16", "uint8", "int64")
MASK_DTYPES = ("int32", "bool")
MOE_BUF_ROWS = range(1, 25)  # moe_buf row lengths (elements) drawn
OUT_REGIMES = ("poisoned", "allocated")

#: Every label a strategy can emit, per dimension (the statistics test checks them all).
DIMENSIONS = {
    "logits": LOGIT_REGIMES, "special": SPECIAL_KINDS, "dtype": DTYPES, "layout": LAYOUTS, "ids": ID_REGIMES,
    "weights": WEIGHT_REGIMES, "tokens": TOKEN_REGIMES + ("derived",), "topk": TOPK_REGIMES,
    "mask": MASK_REGIMES, "m": M_REGIMES, "moe_buf": MOE_BUF_REGIMES, "out": OUT_REGIMES,
}

#: Expert counts: powers of two and not (Limits.large_experts adds 257 and beyond).
E_CHOICES = (1, 2, 3, 5, 8, 16, 60, 64, 128)
U_CHOICES = (1, 2, 3, 4, 16, 32, 64)
#: Special logits (NaN ranks as -inf; -0.0 ties +0.0). The last is a NaN with the sign bit
#: set: a kernel ranking raw float bits puts it below -inf (fuzz.planted.gating_negative_nan_key).
SPECIAL_LOGITS = (float("nan"), float("-inf"), float("inf"), -0.0, 0.0, -200.0, -float("nan"))

#: Out-of-range ids (``E`` and ``E + 1`` are added per case).
BAD_IDS = (-1, 2**20, -(2**20), -(2**31), 2**31 - 1)
#: Optional arguments a target may support (as in :data:`fuzz.conventions.OPTIONAL_ARGS`).
ALL_OPTIONAL = ("expert_mask", "num_local_tokens", "num_local_tokens_tensor", "moe_buf", "out")


@dataclass(frozen=True)
class Limits:
    """What the strategies may draw: sizes (CI keeps kernel calls cheap under the
    interpreter) and the target's domain (:meth:`fuzz.conventions.Convention.limits`)."""

    max_tokens: int = 40
    #: Expert counts beyond E_CHOICES (257: more than one 256-wide tile).
    large_experts: tuple[int, ...] = (257,)
    #: Threshold-adjacent token counts above this are not drawn.
    max_threshold_tokens: int = 300
    #: T * K above this lowers K (sorting cost under the interpreter grows with it).
    max_assignments: int = 512
    # ---- the target's domain
    #: E values the target accepts (None: E_CHOICES + large_experts).
    experts: tuple[int, ...] | None = None
    max_topk: int = 127
    #: K kept inside [lo, hi] (a campaign's shape class, fuzz/shapes.py); None: any K.
    topk_range: tuple[int, int] | None = None
    unit_sizes: tuple[int, ...] = U_CHOICES
    dtypes: tuple[str, ...] = DTYPES
    layouts: tuple[str, ...] = LAYOUTS
    renormalize: tuple[bool, ...] = (True, False)
    m_regimes: tuple[str, ...] = M_REGIMES
    mask_regimes: tuple[str, ...] = MASK_REGIMES
    mask_dtypes: tuple[str, ...] = MASK_DTYPES
    moe_buf_regimes: tuple[str, ...] = MOE_BUF_REGIMES
    #: moe_buf row lengths (elements) drawn; None: every one of MOE_BUF_ROWS
    moe_buf_rows: tuple[int, ...] | None = None
    nan: bool = True  # NaN logits
    infinities: bool = True  # +-inf logits
    invalid_ids: bool = True  # ids outside [0, E)
    duplicates: bool = True  # a repeated id in one row
    supports: tuple[str, ...] = ALL_OPTIONAL
    #: T values where the target changes path: the "threshold" regime draws t-1, t, t+1.
    token_boundaries: tuple[int, ...] = ()
    #: T*K values where the target changes path (drawn as T = b // K for K in 1, 2, 4, 8).
    assignment_boundaries: tuple[int, ...] = ()

    def expert_choices(self) -> tuple[int, ...]:
        return self.experts if self.experts is not None else E_CHOICES + self.large_experts

    def within(self, **domain) -> "Limits":
        """These sizes with a target's domain (keyword fields of this class)."""
        return dataclasses.replace(self, **domain)


CI_LIMITS = Limits()
# 16384 assignments: past moe_sorting's column-scan boundary (8192) with a large K; threshold
# tokens up to 600: past the unfused route's self-scan boundary (512), too costly on the CPU.
CAMPAIGN_LIMITS = Limits(max_tokens=300, large_experts=(256, 257, 384), max_assignments=16384,
                         max_threshold_tokens=600)


def limits_for(convention, base: Limits = CI_LIMITS) -> Limits:
    """``base``'s sizes inside the domain a :class:`fuzz.conventions.Convention` declares."""
    d = convention.domain
    experts = tuple(E for E in base.expert_choices() if d.allows_experts(E)) or d.experts or (1,)
    max_tokens = base.max_tokens if d.max_tokens is None else min(base.max_tokens, d.max_tokens)
    return base.within(
        experts=experts, max_tokens=max_tokens,
        max_assignments=min(base.max_assignments, d.max_assignments or base.max_assignments), max_topk=min(base.max_topk, d.max_topk or base.max_topk),
        max_threshold_tokens=min(base.max_threshold_tokens, d.max_tokens or base.max_threshold_tokens),
        unit_sizes=d.unit_sizes or base.unit_sizes, dtypes=tuple(d.dtypes),
        nan=convention.nan == "spec", infinities=convention.infinities == "spec", invalid_ids=convention.invalid_ids == "drop",
        duplicates=convention.duplicates == "keep", supports=tuple(d.supports),
        token_boundaries=tuple(d.token_boundaries), assignment_boundaries=tuple(d.assignment_boundaries))


def threshold_tokens(limits: Limits = CI_LIMITS) -> tuple[int, ...]:
    """T on both sides of every boundary the target declares (1 and 2 when it declares none,
    so the regime always has something to draw): first t+1 of every boundary (ascending),
    then every t, then every t-1. Just past a boundary comes first, for each boundary alike:
    that is where a new path's off-by-one shows, and Hypothesis's generation favours the
    first entries of a list (ordered t-1, t, t+1 per boundary, t+1 of the second of two
    boundaries was drawn 3 times in 400 examples). T*K boundaries count as T = b // K for the
    common K (K is drawn after T)."""
    cap = min(limits.max_threshold_tokens, 2**24 - 1)
    edges = sorted(set(limits.token_boundaries) | {b // k for b in limits.assignment_boundaries for k in (1, 2, 4, 8)})
    out = dict.fromkeys(t + d for d in (1, 0, -1) for t in edges if 0 <= t + d <= cap)
    return tuple(out) or (1, 2)


# --------------------------------------------------------------------------- helpers


def _label(labels: list, dimension: str, name: str) -> None:
    label = f"{dimension}: {name}"
    event(label)
    labels.append(label)


#: The first min(size, SMALL_ARRAY) elements of every bulk array are drawn (the
#: shrinker can zero each one), the rest come from the seeded generator. Bulk values
#: are drawn last in every composite, and shrinking only lowers sizes, so a shrunk
#: case never needs more choices than its parent had.
SMALL_ARRAY = 64


def _ints(draw, rng, shape, lo: int, hi: int) -> np.ndarray:
    """Integers in [lo, hi] of ``shape``; the drawn head shrinks toward 0 (clipped into range)."""
    n = int(np.prod(shape))
    k = min(n, SMALL_ARRAY)
    head = np.clip(draw(st.lists(st.integers(-128, 127), min_size=k, max_size=k)), lo, hi)
    if n == k:
        return head.astype(np.int64).reshape(shape)
    flat = rng.integers(lo, hi + 1, size=n)
    flat[:k] = head
    return flat.reshape(shape)


def _perm_rows(draw, rng, T: int, E: int, K: int) -> np.ndarray:
    """(T, K): the first K of a permutation of range(E) per row, ordered by drawn keys
    (ties by index), so all-zero keys shrink to 0, 1, ..., K-1 in every row."""
    keys = _ints(draw, rng, (T, E), 0, 127)
    return np.argsort(keys, axis=1, kind="stable")[:, :K]


class _LazyRng:
    """A NumPy generator whose seed is drawn on first use only: a case that needs no
    bulk randomness draws no seed, so Hypothesis does not spend examples on copies of
    it that differ only in an unused seed."""

    def __init__(self, draw):
        self._draw, self._rng = draw, None

    def __getattr__(self, name):
        if self._rng is None:
            self._rng = np.random.default_rng(self._draw(st.integers(0, 2**32 - 1)))
        return getattr(self._rng, name)


def _rng(draw) -> _LazyRng:
    return _LazyRng(draw)




def _tokens(draw, labels, limits: Limits) -> int:
    regime = draw(st.sampled_from(TOKEN_REGIMES))
    _label(labels, "tokens", regime)
    if regime == "small":
        return draw(st.integers(1, min(8, limits.max_tokens)))
    if regime == "edge":
        return draw(st.sampled_from((1, 0)))
    if regime == "threshold":
        return draw(st.sampled_from(threshold_tokens(limits)))
    return draw(st.integers(1, limits.max_tokens))


def _experts(draw, limits: Limits) -> int:
    # One index over the sorted choices (the large count last) so that the shrinker only
    # ever lowers it; a separate "rare" flag would strand shrunk cases at the large E.
    return draw(st.sampled_from(limits.expert_choices()))


def _topk(draw, labels, E: int, T: int, limits: Limits, cap: int = 8) -> int:
    """K: small (1..8) or all (K == min(E, 127)); capped so that T*K <= limits.max_assignments."""
    regime = draw(st.sampled_from(TOPK_REGIMES))
    _label(labels, "topk", regime)
    k = draw(st.integers(1, cap))  # drawn in both regimes: switching regime keeps later choices aligned
    K = min(E, 127, limits.max_topk) if regime == "all" else min(k, E, limits.max_topk)
    if limits.topk_range is not None:
        lo, hi = limits.topk_range
        K = min(max(K, lo), hi, E)
    return max(1, min(K, limits.max_assignments // max(T, 1)))


# --------------------------------------------------------------------------- logits
#
# The *_plan helpers draw the structure (regime, tie rows, special rows and entries,
# out-of-range entries) and return a ``finish(draw)`` that draws the bulk values.
# Composites call ``finish`` LAST, so when the shrinker changes a size, only the
# trailing bulk draws are misaligned, never the structure that makes a case fail.


def _logit_plan(draw, labels, T: int, E: int, K: int, rng, limits: Limits):
    """Draw the regime now; everything else in ``finish`` (drawn last, see above)."""
    regime = draw(st.sampled_from(LOGIT_REGIMES))
    _label(labels, "logits", regime)
    rows = st.integers(0, max(T - 1, 0))
    if regime == "distinct":
        def distinct(draw):
            # Integers scaled by a power of two: exact (and still distinct) in bf16 / fp16 up to E = 257.
            scale = draw(st.sampled_from((1.0, 0.25, 0.0625, 4.0)))
            return ((E - 1 - _perm_rows(draw, rng, T, E, E) - E // 2) * scale).astype(np.float32)
        return distinct
    if regime == "ties":
        def ties(draw):
            x = (_ints(draw, rng, (T, E), -2, 2) * 0.5).astype(np.float32)
            for r, kind in draw(st.lists(st.tuples(rows, st.sampled_from(("kth_tie", "all_equal", "round_dup"))),
                                         max_size=4 if T else 0)):
                if kind == "all_equal":
                    x[r] = np.float32(rng.integers(-3, 4))
                elif kind == "round_dup":  # distinct in float32, equal after bf16 / fp16 rounding
                    x[r] = 1 + rng.integers(0, 8, size=E) * 2.0**-14
                elif E > K:  # the K-th largest (slot K-1) ties with the next one
                    order = np.argsort(-x[r], kind="stable")
                    x[r, order[K]] = x[r, order[K - 1]]
            return x
        return ties
    # One guaranteed special row (its kind is labelled now), then optional extra rows and entries.
    kinds = tuple(k for k in SPECIAL_KINDS if (limits.nan or "nan" not in k) and (limits.infinities or "inf" not in k))
    specials_values = tuple(v for v in SPECIAL_LOGITS if (limits.nan or v == v)
                            and (limits.infinities or abs(v) != float("inf")))
    kind = draw(st.sampled_from(kinds))
    _label(labels, "special", kind)

    def specials(draw):
        row_patches = draw(st.lists(st.tuples(rows, st.sampled_from(kinds)), min_size=1 if T else 0,
                                    max_size=3 if T else 0))
        if row_patches:
            row_patches[0] = (row_patches[0][0], kind)
        for k in sorted({k for _, k in row_patches[1:]} - {kind}):  # the extra rows' kinds are present too
            _label(labels, "special", k)
        entries = draw(st.lists(st.tuples(rows, st.integers(0, E - 1), st.sampled_from(specials_values)),
                                max_size=6 if T else 0))
        x = (_ints(draw, rng, (T, E), -8, 8) * 0.375).astype(np.float32)
        for r, k in row_patches:
            # NaNs of both signs: x86's default NaN (0 * inf, inf - inf) has the sign bit set,
            # and a kernel ranking raw float bits puts -NaN below -inf.
            if k == "nan_entry":
                x[r, rng.integers(0, E)] = np.copysign(np.nan, rng.choice((1.0, -1.0)))
            elif k == "all_nan":
                x[r] = np.copysign(np.nan, rng.choice((1.0, -1.0), size=E))
            elif k == "all_neg_inf":
                x[r] = -np.inf
            elif k == "pos_inf":  # one or more +inf: probability 1/count(+inf)
                x[r, rng.integers(0, E, size=2)] = np.inf
            elif k == "underflow":  # exp(-200) underflows in float32
                x[r] = np.where(rng.random(E) < 0.5, 0.0, -200.0)
            else:
                x[r] = np.where(rng.random(E) < 0.5, -0.0, 0.0)
        for r, c, v in entries:
            x[r, c] = v
        return x
    return specials


def _logits_plan(draw, labels, T, E, K, rng, limits: Limits):
    values = _logit_plan(draw, labels, T, E, K, rng, limits)
    dtype = draw(st.sampled_from(limits.dtypes))
    _label(labels, "dtype", dtype)
    layout = draw(st.sampled_from(limits.layouts))
    _label(labels, "layout", layout)
    pad = off = 0
    if layout == "strided":
        pad = draw(st.integers(1, 5))
        off = draw(st.integers(0, pad))
    return lambda draw: Logits(round_to(values(draw), dtype), dtype, pad, off)


def _gating_plan(draw, labels, limits: Limits):
    """The draws gating and route cases share, in one order: -> (rng, T, E, K, finish, renormalize)."""
    rng = _rng(draw)
    T = _tokens(draw, labels, limits)
    E = _experts(draw, limits)
    K = _topk(draw, labels, E, T, limits)
    finish = _logits_plan(draw, labels, T, E, K, rng, limits)
    renormalize = draw(st.sampled_from(limits.renormalize))
    return rng, T, E, K, finish, renormalize


@st.composite
def gating_cases(draw, limits: Limits = CI_LIMITS) -> GatingCase:
    labels: list[str] = []
    _, _, _, K, finish, renormalize = _gating_plan(draw, labels, limits)
    return GatingCase(finish(draw), K, renormalize, tuple(labels))


@st.composite
def batch_cases(draw, limits: Limits = CI_LIMITS) -> BatchCase:
    case = draw(gating_cases(limits).filter(lambda c: c.size()["T"] >= 1))
    T, E = case.logits.values.shape
    rows = draw(st.lists(st.integers(0, T - 1), min_size=1, max_size=8))
    n_filler = draw(st.integers(0, limits.max_tokens))
    rng = _rng(draw)
    filler = round_to(rng.standard_normal((n_filler, E)) * 3, case.logits.dtype)
    return BatchCase(case, tuple(rows), filler)


# --------------------------------------------------------------------------- sorting


def id_regimes(limits: Limits) -> tuple[str, ...]:
    """The id regimes inside the target's domain (uniform is always there)."""
    dropped = set()
    if not limits.invalid_ids:
        dropped |= {"out_of_range", "unit_edges"}  # unit_edges fills the unused slots with -1
    if not limits.duplicates:
        dropped |= {"skewed", "empty_experts", "duplicates"}
    return tuple(r for r in ID_REGIMES if r not in dropped)


def _ids_plan(draw, labels, T: int, K: int, E: int, U: int, rng, limits: Limits):
    """(T', finish) with ``finish(draw)`` -> (T', K) int64 ids; T' == T except in
    ``unit_edges`` (T derived from the per-expert counts)."""
    regime = draw(st.sampled_from(id_regimes(limits)))
    _label(labels, "ids", regime)
    some_ids = (lambda draw: _perm_rows(draw, rng, T, E, K)) if K <= E else \
        (lambda draw: _ints(draw, rng, (T, K), 0, E - 1))
    if regime == "uniform":
        return T, some_ids
    if regime == "skewed":
        hot = draw(st.integers(0, E - 1))
        p = draw(st.sampled_from((1.0, 0.8, 0.5)))  # 1.0: every token on one expert
        return T, lambda draw: np.where(rng.random((T, K)) < p, hot, rng.integers(0, E, size=(T, K)))
    if regime == "empty_experts":
        used = rng.choice(E, size=draw(st.integers(1, max(1, E // 4))), replace=False)
        return T, lambda draw: used[rng.integers(0, used.size, size=(T, K))]
    if regime == "unit_edges":
        # per-expert counts 0, 1, U-1, U, U+1 (mod U); the rest of the T*K slots dropped (-1)
        picks = draw(st.lists(st.tuples(st.integers(0, E - 1), st.sampled_from(("1", "U", "U+1", "U-1", "2U+1"))),
                              min_size=1, max_size=4, unique_by=lambda p: p[0]))
        counts = {"1": 1, "U": U, "U+1": U + 1, "U-1": U - 1, "2U+1": 2 * U + 1}
        flat = np.concatenate([np.full(counts[c], e) for e, c in picks] + [np.zeros(0, np.int64)])
        flat = flat[: min(limits.max_tokens * K, limits.max_assignments // K * K)]
        T2 = -(-flat.size // K)
        labels[:] = [lab for lab in labels if not lab.startswith("tokens:")]
        _label(labels, "tokens", "derived")
        flat = np.concatenate([flat, np.full(T2 * K - flat.size, -1)])
        return T2, lambda draw: rng.permutation(flat).reshape(T2, K)
    if regime == "duplicates":
        r = draw(st.integers(0, max(T - 1, 0)))

        def duplicates(draw):
            ids = _ints(draw, rng, (T, K), 0, min(E, 3) - 1)
            if T and K >= 2:
                ids[r, 1] = ids[r, 0]
            return ids
        return T, duplicates
    # -1 drawn half the time: it is THE invalid id in the field (vLLM's padded rows, expert
    # parallelism's foreign experts), and the one a signed-index bug turns into a wrap-around.
    bad_id = st.one_of(st.just(-1), st.sampled_from(BAD_IDS + (E, E + 1)))
    bad = draw(st.lists(st.tuples(st.integers(0, max(T - 1, 0)), st.integers(0, K - 1), bad_id),
                        min_size=1 if T else 0, max_size=4 if T else 0))

    def out_of_range(draw):
        ids = some_ids(draw)
        for r, c, v in bad:
            ids[r, c] = v
        return ids
    return T, out_of_range


def _weights(draw, labels, T: int, K: int, rng) -> np.ndarray:
    regime = draw(st.sampled_from(WEIGHT_REGIMES))
    _label(labels, "weights", regime)
    w = rng.random((T, K), dtype=np.float32)
    if regime == "bit_patterns" and T:
        bits = w.view(np.uint32)
        for r, c, b in draw(st.lists(st.tuples(st.integers(0, T - 1), st.integers(0, K - 1),
                                               st.sampled_from(WEIGHT_BITS)), min_size=1, max_size=4)):
            bits[r, c] = b
    return w


def _supported(regimes: tuple[str, ...], limits: Limits, *needs: tuple[str, str]) -> tuple[str, ...]:
    """``regimes`` without those whose argument the target does not support: ``needs`` pairs
    a regime with the argument it passes; "none" is always kept."""
    need = dict(needs)
    return tuple(r for r in regimes if r not in need or need[r] in limits.supports)


def _options(draw, labels, T: int, E: int, rng, limits: Limits, U: int | None = None) -> tuple[Options, int | None]:
    """Options plus M (None: all rows in use), inside the target's domain."""
    if U is None:
        U = draw(st.sampled_from(limits.unit_sizes))
    mask_regimes = _supported(limits.mask_regimes, limits, *((r, "expert_mask") for r in MASK_REGIMES[1:]))
    mask_regime = draw(st.sampled_from(mask_regimes))
    _label(labels, "mask", mask_regime)
    mask = None
    if mask_regime != "none":
        dt = {"int32": np.int32, "bool": np.bool_}[draw(st.sampled_from(limits.mask_dtypes))]
        bits = {"all_ones": np.ones(E), "all_zeros": np.zeros(E), "sparse": rng.random(E) < 0.5}[mask_regime]
        if mask_regime == "sparse":  # at least one expert off (shrinks toward expert 0: every local id shifts)
            bits[draw(st.integers(0, E - 1))] = False
        mask = bits.astype(dt)
    m_regime = draw(st.sampled_from(_supported(limits.m_regimes, limits, ("int", "num_local_tokens"),
                                               ("tensor", "num_local_tokens_tensor"))))
    _label(labels, "m", m_regime)
    # M == T half the time (every row in use, M passed anyway: the common case under CUDA
    # graphs, and the one where a bug in the last rows shows); shrinks toward M == T.
    M = None if m_regime == "none" else T - draw(st.integers(0, T))
    buf_regime = draw(st.sampled_from(_supported(limits.moe_buf_regimes, limits,
                                                 *((r, "moe_buf") for r in MOE_BUF_REGIMES[1:]))))
    _label(labels, "moe_buf", buf_regime)
    row = (st.integers(MOE_BUF_ROWS[0], MOE_BUF_ROWS[-1]) if limits.moe_buf_rows is None
           else st.sampled_from(limits.moe_buf_rows))
    buf = None if buf_regime == "none" else (buf_regime, draw(row))
    out = draw(st.sampled_from(_supported(OUT_REGIMES, limits, ("poisoned", "out"))))
    _label(labels, "out", out)
    opts = Options(unit_size=U, expert_mask=mask, num_local_tokens=M, m_on_device=m_regime == "tensor",
                   moe_buf=buf, poisoned=out == "poisoned")
    return opts, M


@st.composite
def sorting_cases(draw, limits: Limits = CI_LIMITS) -> SortingCase:
    labels: list[str] = []
    rng = _rng(draw)
    T = _tokens(draw, labels, limits)
    E = _experts(draw, limits)
    K = _topk(draw, labels, E, T, limits)
    U = draw(st.sampled_from(limits.unit_sizes))
    T, finish = _ids_plan(draw, labels, T, K, E, U, rng, limits)
    weights = _weights(draw, labels, T, K, rng)
    opts, M = _options(draw, labels, T, E, rng, limits, U)
    ids = finish(draw)
    if M is not None and M < T:  # rows >= M are garbage (out of range too, where the domain allows)
        bad = 2 if limits.invalid_ids else 0
        ids[M:] = rng.integers(-bad, E + bad, size=(T - M, K))
    return SortingCase(ids.astype(np.int32), weights, E, opts, tuple(labels))


@st.composite
def route_cases(draw, limits: Limits = CI_LIMITS) -> RouteCase:
    labels: list[str] = []
    rng, T, E, K, finish, renormalize = _gating_plan(draw, labels, limits)
    opts, M = _options(draw, labels, T, E, rng, limits)
    return RouteCase(_garbage_past(finish(draw), M, rng, limits), K, renormalize, opts, tuple(labels))


def _garbage_past(logits: Logits, M: int | None, rng, limits: Limits) -> Logits:
    """Rows >= M replaced by garbage (large values, and NaN where the domain allows): never routed."""
    T, E = logits.values.shape
    if M is None or M >= T:
        return logits
    junk = rng.standard_normal((T - M, E)) * 100
    if limits.nan:
        junk[rng.random(junk.shape) < 0.1] = np.nan
    values = logits.values.copy()
    values[M:] = round_to(junk, logits.dtype)
    return Logits(values, logits.dtype, logits.col_pad, logits.col_offset)


@st.composite
def reuse_cases(draw, limits: Limits = CI_LIMITS) -> ReuseCase:
    first = draw(route_cases(limits))
    T, E = first.logits.values.shape
    calls = [first]
    for _ in range(draw(st.integers(1, 2))):
        labels: list[str] = []
        rng = _rng(draw)
        if draw(st.booleans()):  # the first call's options: the same plan key unless the offset moves
            opts, M = first.options, first.options.num_local_tokens
        else:
            opts, M = _options(draw, labels, T, E, rng, limits, first.options.unit_size)
        offset = draw(st.integers(0, first.logits.col_pad))
        values = round_to(rng.standard_normal((T, E)) * 3, first.logits.dtype)
        logits = _garbage_past(Logits(values, first.logits.dtype, first.logits.col_pad, offset), M, rng, limits)
        calls.append(RouteCase(logits, first.topk, first.renormalize, opts, tuple(labels)))
    return ReuseCase((*calls, first))


#: The strategy feeding each property of :data:`fuzz.properties.PROPERTIES`.
STRATEGIES = {"gating": gating_cases, "sorting": sorting_cases, "route": route_cases, "batch": batch_cases,
              "reuse": reuse_cases, "paths": route_cases}


#: With shape classes, one example in about this many is drawn from the whole domain.
FREE_ODDS = 256


def cases_for(prop: str, target=None, base: Limits = CI_LIMITS, classes=()):
    """The cases of property ``prop`` inside ``target``'s declared domain (a Target, or None
    for the contract's whole domain), at ``base``'s sizes; with ``classes`` (fuzz/shapes.py),
    shapes of those classes, and one in about FREE_ODDS from the whole domain."""
    limits = base if target is None else limits_for(target.convention, base)
    free = STRATEGIES[prop](limits)
    if not classes:
        return free
    # The whole domain is choice 0, drawn once in FREE_ODDS examples: rare enough to keep the
    # compiled variants few, and where the shrinker goes first, so a failure found inside a
    # class can still shrink past the class's E, K and U.
    branches = [free] + [STRATEGIES[prop](c.limits(limits)) for c in classes] * max(1, FREE_ODDS // len(classes))
    return st.sampled_from(range(len(branches))).flatmap(branches.__getitem__)


#: The regime dimensions each property's cases are drawn over (``case.labels``).
_DIMENSIONS_OF = {
    "gating": ("tokens", "topk", "logits", "special", "dtype", "layout"),
    "sorting": ("tokens", "topk", "ids", "weights", "mask", "m", "moe_buf", "out"),
    "route": ("tokens", "topk", "logits", "special", "dtype", "layout", "mask", "m", "moe_buf", "out"),
}
_DIMENSIONS_OF.update(batch=_DIMENSIONS_OF["gating"], reuse=_DIMENSIONS_OF["route"], paths=_DIMENSIONS_OF["route"])


def declared_regimes(prop: str) -> set[str]:
    """Every regime label the strategy of ``prop`` declares (in the contract's whole domain)."""
    labels = {f"{d}: {r}" for d in _DIMENSIONS_OF[prop] for r in DIMENSIONS[d]}
    if "ids" not in _DIMENSIONS_OF[prop]:
        labels.discard("tokens: derived")  # only the unit_edges id regime derives T
    return labels
