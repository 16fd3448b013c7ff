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

import functools
from dataclasses import dataclass, field

import numpy as np
from hypothesis import event
from hypothesis import strategies as st

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
#: Special logits (NaN ranks as -inf; -0.0 ties +0.0).
SPECIAL_LOGITS = (float("nan"), float("-inf"), float("inf"), -0.0, 0.0, -200.0)

#: Weight bit patterns sorting must copy exactly: -0.0, NaN payloads (quiet and
#: signalling), infinities, the smallest denormal.
WEIGHT_BITS = (0x80000000, 0x7FC0DEAD, 0xFFC00001, 0x7F800001, 0x7F800000, 0xFF800000, 0x00000001)
#: Out-of-range ids (``E`` and ``E + 1`` are added per case).
BAD_IDS = (-1, 2**20, -(2**20), -(2**31), 2**31 - 1)
FALLBACK_THRESHOLDS = {"fused_single_tile": 16}


@dataclass(frozen=True)
class Limits:
    """Size limits. CI keeps kernel calls cheap under the interpreter."""

    max_tokens: int = 40
    #: Expert counts beyond E_CHOICES (257: more than one 256-wide tile).
    large_experts: tuple[int, ...] = (257,)
    #: Threshold-adjacent token counts above this are not drawn.
    max_threshold_tokens: int = 300
    #: T * K above this lowers K (sorting cost under the interpreter grows with it).
    max_assignments: int = 512


CI_LIMITS = Limits()
CAMPAIGN_LIMITS = Limits(max_tokens=300, large_experts=(256, 257, 384), max_assignments=8192)


@functools.lru_cache(maxsize=None)
def dispatch_thresholds() -> dict[str, int]:
    """``fused_moe.DISPATCH_THRESHOLDS`` (imported lazily: the lane must be chosen
    first), or ``FALLBACK_THRESHOLDS`` while the kernels are not importable."""
    try:
        import fused_moe
    except ImportError:
        return dict(FALLBACK_THRESHOLDS)
    return dict(getattr(fused_moe, "DISPATCH_THRESHOLDS", FALLBACK_THRESHOLDS))


def threshold_tokens(limits: Limits = CI_LIMITS) -> tuple[int, ...]:
    """T on both sides of every dispatch threshold: t-1, t, t+1."""
    out = {t + d for t in dispatch_thresholds().values() for d in (-1, 0, 1)}
    return tuple(sorted(t for t in out if 0 <= t <= limits.max_threshold_tokens))


# --------------------------------------------------------------------------- cases


class _CompactRepr:
    """Hypothesis's pretty printer expands dataclasses field by field; print our repr instead."""

    def _repr_pretty_(self, p, cycle) -> None:
        p.text(repr(self))


def _show(a: np.ndarray | None, limit: int = 48) -> str:
    if a is None:
        return "None"
    if a.size <= limit:
        if a.dtype == np.float32:
            return np.array2string(a, separator=",", threshold=limit).replace("\n", "")
        return str(a.tolist())
    return f"<{a.dtype} {tuple(a.shape)}>"


@dataclass(frozen=True, repr=False, eq=False)
class Logits(_CompactRepr):
    """Logits as the kernel sees them: ``values`` is the exact float32 upcast of the
    ``dtype`` tensor; with ``col_pad > 0`` the tensor is the column slice
    ``[:, col_offset:col_offset + E]`` of a wider parent filled with 1e4 (a kernel
    reading the wrong columns would select them)."""

    values: np.ndarray  # (T, E) float32
    dtype: str = "float32"
    col_pad: int = 0
    col_offset: int = 0

    def tensor(self, device="cpu"):
        import torch
        T, E = self.values.shape
        tdt = getattr(torch, self.dtype)
        src = torch.from_numpy(np.ascontiguousarray(self.values)).to(tdt)
        if not self.col_pad:
            return src.to(device)
        parent = torch.full((T, E + self.col_pad), 1e4, dtype=tdt)
        parent[:, self.col_offset:self.col_offset + E] = src
        return parent.to(device)[:, self.col_offset:self.col_offset + E]

    def __repr__(self) -> str:
        lay = f", strided(pad={self.col_pad}, off={self.col_offset})" if self.col_pad else ""
        return f"{self.dtype}{lay} {_show(self.values)}"


@dataclass(frozen=True, repr=False, eq=False)
class Options(_CompactRepr):
    """Sorting options shared by sorting and route cases."""

    unit_size: int = 32
    expert_mask: np.ndarray | None = None  # (E,) int32 or bool
    num_local_tokens: int | None = None
    m_on_device: bool = False  # pass M as an int32 device tensor of one element
    moe_buf: tuple[str, int] | None = None  # (dtype name, elements per row); T rows
    poisoned: bool = True  # pass canary-filled out= buffers

    def mask_tensor(self, device="cpu"):
        import torch
        return None if self.expert_mask is None else torch.from_numpy(self.expert_mask.copy()).to(device)

    def m_arg(self, device="cpu"):
        if self.num_local_tokens is None or not self.m_on_device:
            return self.num_local_tokens
        import torch
        return torch.tensor([self.num_local_tokens], dtype=torch.int32, device=device)

    def moe_buf_tensor(self, T: int, device="cpu"):
        """A fresh moe_buf of T rows, every byte nonzero (so zeroing is visible)."""
        if self.moe_buf is None:
            return None
        import torch
        name, n = self.moe_buf
        dt = getattr(torch, name)
        row_bytes = n * torch.empty((), dtype=dt).element_size()
        raw = (np.arange(T * row_bytes, dtype=np.int64) * 37 + 0x5B) % 255 + 1
        return torch.from_numpy(raw.astype(np.uint8).reshape(T, row_bytes)).view(dt).to(device)

    def __repr__(self) -> str:
        bits = [f"U={self.unit_size}"]
        if self.expert_mask is not None:
            m = np.asarray(self.expert_mask, dtype=np.int32)
            shown = m.tolist() if m.size <= 16 else f"{int(m.sum())} of {m.size} kept"
            bits.append(f"mask={shown}({self.expert_mask.dtype})")
        if self.num_local_tokens is not None:
            bits.append(f"M={self.num_local_tokens}{'(tensor)' if self.m_on_device else ''}")
        if self.moe_buf is not None:
            bits.append(f"moe_buf={self.moe_buf[0]}x{self.moe_buf[1]}")
        bits.append("out=poisoned" if self.poisoned else "out=allocated")
        return ", ".join(bits)


@dataclass(frozen=True, repr=False, eq=False)
class GatingCase(_CompactRepr):
    logits: Logits
    topk: int
    renormalize: bool = True
    labels: tuple[str, ...] = field(default=(), compare=False)

    def size(self) -> dict[str, int]:
        T, E = self.logits.values.shape
        return {"T": T, "E": E, "K": self.topk}

    def __repr__(self) -> str:
        s = self.size()
        return (f"GatingCase(T={s['T']}, E={s['E']}, K={self.topk}, renormalize={self.renormalize}, "
                f"logits={self.logits!r})")


@dataclass(frozen=True, repr=False, eq=False)
class SortingCase(_CompactRepr):
    topk_ids: np.ndarray  # (T, K) int32
    topk_weights: np.ndarray  # (T, K) float32
    num_experts: int
    options: Options = Options()
    labels: tuple[str, ...] = field(default=(), compare=False)

    def size(self) -> dict[str, int]:
        T, K = self.topk_ids.shape
        return {"T": T, "E": self.num_experts, "K": K, "U": self.options.unit_size}

    def __repr__(self) -> str:
        T, K = self.topk_ids.shape
        w = self.topk_weights.view(np.uint32)
        wtxt = _show(self.topk_weights) if self.topk_weights.size <= 48 else "<float32>"
        odd = [hex(b) for b in sorted(set(w.reshape(-1).tolist()) & set(WEIGHT_BITS))]
        return (f"SortingCase(T={T}, K={K}, E={self.num_experts}, {self.options!r}, ids={_show(self.topk_ids)}, "
                f"weights={wtxt}{', bits ' + ','.join(odd) if odd else ''})")


@dataclass(frozen=True, repr=False, eq=False)
class RouteCase(_CompactRepr):
    logits: Logits
    topk: int
    renormalize: bool = True
    options: Options = Options()
    labels: tuple[str, ...] = field(default=(), compare=False)

    def size(self) -> dict[str, int]:
        T, E = self.logits.values.shape
        return {"T": T, "E": E, "K": self.topk, "U": self.options.unit_size}

    def __repr__(self) -> str:
        T, E = self.logits.values.shape
        return (f"RouteCase(T={T}, E={E}, K={self.topk}, renormalize={self.renormalize}, {self.options!r}, "
                f"logits={self.logits!r})")


@dataclass(frozen=True, repr=False, eq=False)
class ReuseCase(_CompactRepr):
    """Route calls run in order, all with the T, E, K, dtype and row stride of the first:
    later calls often hit the plan the first one cached (fused_moe/plans.py) while their
    values, options (M, mask, moe_buf, out=) or column offset (so address alignment) differ.
    The first call comes back last, after the cache has seen the others."""

    calls: tuple[RouteCase, ...]

    @property
    def labels(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(label for call in self.calls for label in call.labels))

    def size(self) -> dict[str, int]:
        return {**self.calls[0].size(), "calls": len(self.calls)}

    def __repr__(self) -> str:
        return "ReuseCase(" + ", ".join(map(repr, self.calls)) + ")"


@dataclass(frozen=True, repr=False, eq=False)
class BatchCase(_CompactRepr):
    """Batch invariance: ``rows`` of ``case`` recomputed inside another batch made of
    those rows (reordered, repeated) followed by ``filler`` rows of other tokens."""

    case: GatingCase
    rows: tuple[int, ...]
    filler: np.ndarray  # (F, E) float32, exact in case.logits.dtype

    @property
    def labels(self) -> tuple[str, ...]:
        return self.case.labels

    def size(self) -> dict[str, int]:
        return {**self.case.size(), "T_other": len(self.rows) + self.filler.shape[0]}

    def __repr__(self) -> str:
        return f"BatchCase({self.case!r}, rows={list(self.rows)}, filler={_show(self.filler)})"


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


def round_to(x: np.ndarray, dtype: str) -> np.ndarray:
    """``x`` rounded to ``dtype`` (through torch) and upcast back to float32 exactly."""
    if dtype == "float32":
        return x.astype(np.float32)
    import torch
    return torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)).to(getattr(torch, dtype)).float().numpy()


def _tokens(draw, labels, limits: Limits) -> int:
    regime = draw(st.sampled_from(TOKEN_REGIMES))
    _label(labels, "tokens", regime)
    if regime == "small":
        return draw(st.integers(1, 8))
    if regime == "edge":
        return draw(st.sampled_from((1, 0)))
    if regime == "threshold":
        return draw(st.sampled_from(threshold_tokens(limits)))
    return draw(st.integers(1, limits.max_tokens))


def _experts(draw, limits: Limits) -> int:
    # One index over the sorted choices (the large count last) so that the shrinker only
    # ever lowers it; a separate "rare" flag would strand shrunk cases at the large E.
    return draw(st.sampled_from(E_CHOICES + limits.large_experts))


def _topk(draw, labels, E: int, T: int, limits: Limits, cap: int = 8) -> int:
    """K: small (1..8) or all (K == min(E, 127)); capped so that T*K <= limits.max_assignments."""
    regime = draw(st.sampled_from(TOPK_REGIMES))
    _label(labels, "topk", regime)
    k = draw(st.integers(1, cap))  # drawn in both regimes: switching regime keeps later choices aligned
    K = min(E, 127) if regime == "all" else min(k, E)
    return max(1, min(K, limits.max_assignments // max(T, 1)))


# --------------------------------------------------------------------------- logits
#
# The *_plan helpers draw the structure (regime, tie rows, special rows and entries,
# out-of-range entries) and return a ``finish(draw)`` that draws the bulk values.
# Composites call ``finish`` LAST, so when the shrinker changes a size, only the
# trailing bulk draws are misaligned, never the structure that makes a case fail.


def _logit_plan(draw, labels, T: int, E: int, K: int, rng):
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
    kind = draw(st.sampled_from(SPECIAL_KINDS))
    _label(labels, "special", kind)

    def specials(draw):
        row_patches = draw(st.lists(st.tuples(rows, st.sampled_from(SPECIAL_KINDS)), min_size=1 if T else 0,
                                    max_size=3 if T else 0))
        if row_patches:
            row_patches[0] = (row_patches[0][0], kind)
        for k in sorted({k for _, k in row_patches[1:]} - {kind}):  # the extra rows' kinds are present too
            _label(labels, "special", k)
        entries = draw(st.lists(st.tuples(rows, st.integers(0, E - 1), st.sampled_from(SPECIAL_LOGITS)),
                                max_size=6 if T else 0))
        x = (_ints(draw, rng, (T, E), -8, 8) * 0.375).astype(np.float32)
        for r, k in row_patches:
            if k == "nan_entry":
                x[r, rng.integers(0, E)] = np.nan
            elif k == "all_nan":
                x[r] = np.nan
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


def _logits_plan(draw, labels, T, E, K, rng):
    values = _logit_plan(draw, labels, T, E, K, rng)
    dtype = draw(st.sampled_from(DTYPES))
    _label(labels, "dtype", dtype)
    layout = draw(st.sampled_from(LAYOUTS))
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
    finish = _logits_plan(draw, labels, T, E, K, rng)
    renormalize = draw(st.sampled_from((True, False)))
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


def _ids_plan(draw, labels, T: int, K: int, E: int, U: int, rng, limits: Limits):
    """(T', finish) with ``finish(draw)`` -> (T', K) int64 ids; T' == T except in
    ``unit_edges`` (T derived from the per-expert counts)."""
    regime = draw(st.sampled_from(ID_REGIMES))
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
        flat = flat[: min(2 * limits.max_tokens * K, limits.max_assignments)]
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
    bad = draw(st.lists(st.tuples(st.integers(0, max(T - 1, 0)), st.integers(0, K - 1),
                                  st.sampled_from(BAD_IDS + (E, E + 1))), min_size=1 if T else 0,
                        max_size=4 if T else 0))

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


def _options(draw, labels, T: int, E: int, rng, U: int | None = None) -> tuple[Options, int | None]:
    """Options plus M (None: all rows in use)."""
    if U is None:
        U = draw(st.sampled_from(U_CHOICES))
    mask_regime = draw(st.sampled_from(MASK_REGIMES))
    _label(labels, "mask", mask_regime)
    mask = None
    if mask_regime != "none":
        dt = draw(st.sampled_from((np.int32, np.bool_)))
        bits = {"all_ones": np.ones(E), "all_zeros": np.zeros(E), "sparse": rng.random(E) < 0.5}[mask_regime]
        if mask_regime == "sparse":  # at least one expert off (shrinks toward expert 0: every local id shifts)
            bits[draw(st.integers(0, E - 1))] = False
        mask = bits.astype(dt)
    m_regime = draw(st.sampled_from(M_REGIMES))
    _label(labels, "m", m_regime)
    M = None if m_regime == "none" else T - draw(st.integers(0, T))  # shrinks toward M == T
    buf_regime = draw(st.sampled_from(MOE_BUF_REGIMES))
    _label(labels, "moe_buf", buf_regime)
    buf = None if buf_regime == "none" else (buf_regime, draw(st.integers(1, 24)))
    out = draw(st.sampled_from(OUT_REGIMES))
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
    U = draw(st.sampled_from(U_CHOICES))
    T, finish = _ids_plan(draw, labels, T, K, E, U, rng, limits)
    weights = _weights(draw, labels, T, K, rng)
    opts, M = _options(draw, labels, T, E, rng, U)
    ids = finish(draw)
    if M is not None and M < T:  # rows >= M are garbage, in range and out of range
        ids[M:] = rng.integers(-2, E + 2, size=(T - M, K))
    return SortingCase(ids.astype(np.int32), weights, E, opts, tuple(labels))


@st.composite
def route_cases(draw, limits: Limits = CI_LIMITS) -> RouteCase:
    labels: list[str] = []
    rng, T, E, K, finish, renormalize = _gating_plan(draw, labels, limits)
    opts, M = _options(draw, labels, T, E, rng)
    return RouteCase(_garbage_past(finish(draw), M, rng), K, renormalize, opts, tuple(labels))


def _garbage_past(logits: Logits, M: int | None, rng) -> Logits:
    """Rows >= M replaced by garbage (NaN and large values included): never routed."""
    T, E = logits.values.shape
    if M is None or M >= T:
        return logits
    junk = rng.standard_normal((T - M, E)) * 100
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
            opts, M = _options(draw, labels, T, E, rng, first.options.unit_size)
        offset = draw(st.integers(0, first.logits.col_pad))
        values = round_to(rng.standard_normal((T, E)) * 3, first.logits.dtype)
        logits = _garbage_past(Logits(values, first.logits.dtype, first.logits.col_pad, offset), M, rng)
        calls.append(RouteCase(logits, first.topk, first.renormalize, opts, tuple(labels)))
    return ReuseCase((*calls, first))
