"""Checkers: compare kernel outputs with the oracles and explain every difference.

Each ``check_*`` returns a :class:`CheckReport`; ``bool(report)`` is ``report.ok``
and ``str(report)`` is a readable, capped, multi-line diff naming the place of
each difference ("expert 3, block 2 (sorted_token_ids[70]): expected token 5
slot 1 (0x01000005), found sentinel (K<<24|M) (0x03000008)").

Inputs may be NumPy arrays or anything with ``__array__`` (CPU torch tensors;
device tensors are copied with their own ``.detach().cpu()``). Float buffers
are compared bit by bit through a uint32 view wherever the contract is exact.
"""
from __future__ import annotations

import numpy as np

from ._common import as_logits, as_num_experts, as_num_local_tokens, as_numpy, as_topk, as_unit_size
from .gating import probabilities_of, select, selection_key
from .sorting import _plan, capacity

__all__ = ["CheckReport", "check_gating", "check_sorting", "check_sorting_vllm", "check_route", "check_moe_buf"]

#: At most this many messages per kind of difference; the rest are counted.
MAX_PER_KIND = 20

_SORT_FIELDS = ("sorted_token_ids", "sorted_weights", "sorted_expert_ids", "num_valid_ids")
_ROUTE_FIELDS = ("topk_weights", "topk_ids") + _SORT_FIELDS


class CheckReport:
    """Result of a check: ``ok``, ``problems`` (capped list of messages), readable ``str``."""

    __slots__ = ("problems", "kinds")

    def __init__(self, problems=None, kinds=None):
        self.problems: list[str] = list(problems or [])
        #: The kinds of difference found, in order ("wrong ids", "sorted_token_ids differences", ...).
        self.kinds: list[str] = list(kinds or [])

    @property
    def ok(self) -> bool:
        return not self.problems

    def __bool__(self) -> bool:
        return self.ok

    def __str__(self) -> str:
        if self.ok:
            return "OK"
        return "\n".join([f"FAILED ({len(self.problems)} problem lines):"] + [f"  {p}" for p in self.problems])

    def __repr__(self) -> str:
        return f"CheckReport(ok={self.ok}, problems={self.problems!r})"

    def merged(self, other: "CheckReport", prefix: str = "") -> "CheckReport":
        label = prefix.strip()  # an indent prefixes the lines, not the kinds
        kinds = [f"{label} {k}" if label else k for k in other.kinds]
        return CheckReport(self.problems + [prefix + p for p in other.problems],
                           self.kinds + [k for k in kinds if k not in self.kinds])


def _add(report: CheckReport, indices, describe, kind: str) -> None:
    """Append ``describe(i)`` for the first MAX_PER_KIND indices, then a count of the rest."""
    n = len(indices)
    if n and kind not in report.kinds:
        report.kinds.append(kind)
    for i in indices[:MAX_PER_KIND]:
        report.problems.append(describe(i))
    if n > MAX_PER_KIND:
        report.problems.append(f"... and {n - MAX_PER_KIND} more {kind} (of {n})")


def _f32(bits) -> str:
    bits = int(bits) & 0xFFFFFFFF
    return f"0x{bits:08x} ({float(np.array(bits, dtype=np.uint32).view(np.float32))!r})"


def _fields(obj, names, what):
    """Fields of a NamedTuple-like / dict / plain sequence, by name or position."""
    if all(hasattr(obj, n) for n in names):
        return [getattr(obj, n) for n in names]
    if isinstance(obj, dict):
        return [obj[n] for n in names]
    seq = tuple(obj)
    if len(seq) == len(names):
        return list(seq)
    if len(seq) == len(_ROUTE_FIELDS) and names == _SORT_FIELDS:
        return list(seq[2:])
    raise TypeError(f"{what} must have fields {names}, got {type(obj).__name__} of length {len(seq)}")


def _bits(a: np.ndarray) -> np.ndarray:
    """Element bits as unsigned integers of the same size (any dtype), or bytes rows as a fallback."""
    a = np.ascontiguousarray(a).reshape(-1)
    if a.dtype.itemsize in (1, 2, 4, 8):
        return a.view(f"u{a.dtype.itemsize}")
    return a.view(np.uint8).reshape(a.size, a.dtype.itemsize)


# --------------------------------------------------------------------------- gating


#: What a gating target's weights are (``none``: ids only).
WEIGHT_KINDS = ("softmax", "logits", "none")


def _topk_violations(key: np.ndarray, ids: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, list[str]]:
    """Rows (of ``rows``) whose ``ids`` are not a valid top-k of ``key`` under ANY tie rule:
    slot keys must not increase, and no unselected expert may beat a selected one."""
    bad_rows, messages = [], []
    for r in rows:
        sel = key[r, ids[r]]
        rising = np.flatnonzero(sel[1:] > sel[:-1])
        others = np.ones(key.shape[1], bool)
        others[ids[r]] = False
        best_other = key[r, others].max() if others.any() else -np.inf
        if rising.size:
            j = int(rising[0])
            messages.append(f"row {r}: slot {j + 1} (expert {ids[r, j + 1]}, key {sel[j + 1]!r}) ranks above "
                            f"slot {j} (expert {ids[r, j]}, key {sel[j]!r})")
        elif sel.size and sel.min() < best_other:
            e = int(np.flatnonzero(others & (key[r] == best_other))[0])
            messages.append(f"row {r}: expert {e} (key {best_other!r}) is not selected but beats slot "
                            f"{int(sel.argmin())} (expert {ids[r, sel.argmin()]}, key {sel.min()!r})")
        else:
            continue
        bad_rows.append(r)
    return np.asarray(bad_rows, dtype=np.int64), messages


def check_gating(actual_weights, actual_ids, logits, topk, *, renormalize=True, rtol=1e-5, atol=1e-6,
                 ties="lower", selection="logits", weights="softmax", specials="spec") -> CheckReport:
    """Compare top-k gating outputs with the float64 oracle (SPEC section 1).

    Ids exact (ties to the lower index, NaN as -inf, see
    :func:`oracles.topk_gating_softmax`); weights within ``atol + rtol * |oracle|``
    of the unrounded float64 oracle at the same row and slot. Invariants are
    reported separately so a broken kernel is diagnosed, not just rejected:
    ids in ``[0, E)``, no id repeated in a row, no NaN weight.

    Other conventions (SPEC section 6): ``ties="higher"``, or ``"any"`` (any valid
    top-k: the weights are then judged at the ids found); ``selection="probabilities"``
    (values whose float32 probabilities are equal tie); ``weights="logits"`` (the raw
    selected logits) or ``"none"`` (ids only; ``actual_weights`` may be None);
    ``specials="bits"`` (NaN and -0.0 ordered by their bits, see :func:`oracles.gating.selection_key`).
    """
    x = as_logits(logits)
    T, E = x.shape
    K = as_topk(topk, E)
    if weights not in WEIGHT_KINDS:
        raise ValueError(f"weights must be one of {', '.join(WEIGHT_KINDS)}, got {weights!r}")
    key = selection_key(x, selection=selection, specials=specials)
    ids = select(key, K, ties="lower" if ties == "any" else ties)
    rep = CheckReport()
    ai = as_numpy(actual_ids, "actual_ids")
    aw = None if weights == "none" else as_numpy(actual_weights, "actual_weights")
    for name, arr in (("topk_ids", ai), ("topk_weights", aw)):
        if arr is not None and arr.shape != (T, K):
            rep.problems.append(f"{name}: expected shape ({T}, {K}), found {arr.shape}")
    if not rep.ok:
        return rep
    if not np.issubdtype(ai.dtype, np.integer):
        rep.problems.append(f"topk_ids: expected an integer dtype (int32), found {ai.dtype}")
        return rep
    if ai.dtype != np.int32:
        rep.problems.append(f"topk_ids: expected dtype int32, found {ai.dtype}")
    if aw is not None and aw.dtype != np.float32:
        rep.problems.append(f"topk_weights: expected dtype float32, found {aw.dtype}")
    ai64 = ai.astype(np.int64)

    def logit(r, e):
        return repr(float(x[r, e])) if 0 <= e < E else "out of range"

    out_of_range = (ai64 < 0) | (ai64 >= E)
    bad = np.argwhere(out_of_range)
    _add(rep, bad, lambda rj: f"row {rj[0]} slot {rj[1]}: id {ai64[rj[0], rj[1]]} out of range [0, E={E})",
         "out-of-range ids")
    srt = np.sort(ai64, axis=1)
    dup = (srt[:, 1:] == srt[:, :-1]).any(axis=1) if K > 1 else np.zeros(T, bool)
    dup_rows = np.flatnonzero(dup)

    def dup_row(r):
        vals, cnt = np.unique(ai64[r], return_counts=True)
        v = vals[cnt > 1][0]
        return f"row {r}: id {v} repeated in slots {np.flatnonzero(ai64[r] == v).tolist()}"

    _add(rep, dup_rows, dup_row, "rows with repeated ids")
    if ties == "any":  # the ids found are the expected ones wherever they are a valid top-k
        usable = np.flatnonzero(~out_of_range.any(axis=1) & ~dup)
        invalid, messages = _topk_violations(key, ai64, usable)
        _add(rep, np.arange(len(messages)), lambda i: messages[i], "rows that are no valid top-k")
        valid = np.setdiff1d(usable, invalid)
        ids = ids.copy()
        ids[valid] = ai64[valid]
    wrong = np.argwhere(ai64 != ids)
    _add(rep, wrong, lambda rj: (f"row {rj[0]} slot {rj[1]}: expected id {ids[rj[0], rj[1]]}, found "
                                 f"{ai64[rj[0], rj[1]]} (their logits {logit(rj[0], ids[rj[0], rj[1]])} and "
                                 f"{logit(rj[0], ai64[rj[0], rj[1]])})"), "wrong ids")
    if aw is None or not np.issubdtype(aw.dtype, np.floating):
        return rep
    if weights == "logits":
        probs = np.take_along_axis(x.astype(np.float64), ids.astype(np.intp), axis=1)
    else:
        probs = probabilities_of(x, ids, renormalize=renormalize)
    w64 = aw.astype(np.float64)
    nan = np.argwhere(np.isnan(w64) & ~np.isnan(probs))
    _add(rep, nan, lambda rj: f"row {rj[0]} slot {rj[1]}: weight is NaN (expected {probs[rj[0], rj[1]]:.9g})",
         "NaN weights")
    with np.errstate(invalid="ignore"):
        tol = atol + rtol * np.abs(probs)
        off = np.argwhere(~np.isnan(w64) & ~(np.abs(w64 - probs) <= tol) & ~(w64 == probs))

    def weight(rj):
        r, j = rj
        return (f"row {r} slot {j} (expert {ids[r, j]}): expected weight {probs[r, j]:.9g}, found {w64[r, j]:.9g} "
                f"(|diff| {abs(w64[r, j] - probs[r, j]):.3g} > tol {tol[r, j]:.3g})")

    _add(rep, off, weight, "weights out of tolerance")
    return rep


# --------------------------------------------------------------------------- sorting


#: Orders inside an expert a sorting target may declare.
ORDERS = ("exact", "unordered")


def _unordered_to_exact(tok64: np.ndarray, wts: np.ndarray, plan) -> tuple[np.ndarray, np.ndarray]:
    """Sort each EXPECTED expert segment of the found prefix by (token, slot), padding last,
    carrying the weights along: an order-free layout then compares position by position,
    while a token in another expert's segment, a missing or an extra one still differs."""
    tok64, wts = tok64.copy(), wts.copy()
    K = plan.K
    for start, length in zip(plan.seg_start, plan.padded):
        stop = min(int(start + length), tok64.size)
        if length == 0 or start >= stop:
            continue
        seg = tok64[start:stop]
        j, t = seg >> 24, seg & 0xFFFFFF
        real = (seg >= 0) & (j < K) & (t < plan.M)
        rank = np.where(real, t * 128 + j, np.int64(2**40) + (seg & 0xFFFFFFFF))
        order = np.argsort(rank, kind="stable")
        tok64[start:stop] = seg[order]
        wts[start:stop] = wts[start:stop][order]
    return tok64, wts


def check_sorting(actual, topk_ids, topk_weights, num_experts, *, unit_size=32, expert_mask=None,
                  num_local_tokens=None, before=None, order="exact", capacity_rows=None) -> CheckReport:
    """Compare capacity-sized sorting buffers with :func:`oracles.moe_sorting` (SPEC section 2).

    ``actual`` is SortingResult-like (or RouteResult-like): sorted_token_ids,
    sorted_weights, sorted_expert_ids, num_valid_ids, each of any length >=
    the capacity. Checked, all exactly:

    * buffer lengths >= :func:`oracles.capacity` and dtypes int32 / float32 / int32 / int32;
    * ``num_valid_ids`` == ``[P, M]``;
    * per-expert assignment counts and the set of assignments in the found
      prefix (missing / duplicated / dropped-but-present), so a wrong length
      still gets a useful diagnosis;
    * the valid prefix position by position, each difference named by
      expert, block, token and slot; weights bit-exact (uint32 view);
    * with ``before`` (a copy of the buffers taken just before the kernel
      ran): every element past the valid prefix bit-identical to it.

    ``order="unordered"`` accepts any order inside an expert's segment (atomics-based
    producers); ``capacity_rows`` = (slots, blocks) overrides the tight capacity as the
    least buffer length (a producer's own sizing rule).
    """
    if order not in ORDERS:
        raise ValueError(f"order must be one of {', '.join(ORDERS)}, got {order!r}")
    plan = _plan(topk_ids, topk_weights, num_experts, unit_size=unit_size, expert_mask=expert_mask,
                 num_local_tokens=num_local_tokens)
    exp = plan.result
    T, K, E, U, M = plan.T, plan.K, plan.E, plan.U, plan.M
    P = int(exp.num_valid_ids[0])
    sent = (K << 24) | M
    ids_in = np.asarray(as_numpy(topk_ids, "topk_ids"), dtype=np.int64)
    rep = CheckReport()
    tok, wts, eid, nv = [as_numpy(a, n).reshape(-1) for a, n in zip(_fields(actual, _SORT_FIELDS, "actual"),
                                                                      _SORT_FIELDS)]
    cap_rows, cap_blocks = capacity(T, K, E, U) if capacity_rows is None else capacity_rows
    for name, arr, need in (("sorted_token_ids", tok, cap_rows), ("sorted_weights", wts, cap_rows),
                            ("sorted_expert_ids", eid, cap_blocks), ("num_valid_ids", nv, 2)):
        if arr.size < need:
            rep.problems.append(f"{name}: length {arr.size} is below the capacity {need} "
                                f"(T={T}, K={K}, E={E}, U={U})")
    for name, arr, dt in (("sorted_token_ids", tok, np.int32), ("sorted_weights", wts, np.float32),
                          ("sorted_expert_ids", eid, np.int32), ("num_valid_ids", nv, np.int32)):
        if arr.dtype != dt:
            rep.problems.append(f"{name}: expected dtype {np.dtype(dt)}, found {arr.dtype}")
    ints_ok = all(np.issubdtype(a.dtype, np.integer) for a in (tok, eid, nv))
    if not ints_ok or nv.size < 2:
        return rep
    tok64, eid64, nv64 = tok.astype(np.int64), eid.astype(np.int64), nv.astype(np.int64)
    if order == "unordered":
        tok64, wts = _unordered_to_exact(tok64, wts, plan)

    # num_valid_ids (its kind goes last: a wrong count or position is the more precise symptom)
    nv_wrong = False
    for i, want in ((0, P), (1, M)):
        if nv64[i] != want:
            what = "padded total P" if i == 0 else "M"
            rep.problems.append(f"num_valid_ids[{i}] ({what}): expected {want}, found {nv64[i]}")
            nv_wrong = True

    def describe(v) -> str:
        v = int(v)
        if v == sent:
            return f"sentinel (K<<24|M) (0x{v & 0xFFFFFFFF:08x})"
        t, j = v & 0xFFFFFF, v >> 24
        if v >= 0 and j < K and t < M:
            return f"token {t} slot {j} (0x{v:08x})"
        return f"0x{v & 0xFFFFFFFF:08x} (neither an assignment nor the sentinel)"

    def where(p) -> str:
        e = int(plan.block_expert[p // U])
        return f"expert {e}, block {(p - int(plan.seg_start[e])) // U}"

    # What the found prefix holds, whatever its length: counts per expert, then the assignment set.
    found_P = int(nv64[0]) if 0 <= nv64[0] <= tok64.size else min(P, tok64.size)
    prefix = tok64[:found_P]
    j, t = prefix >> 24, prefix & 0xFFFFFF
    is_asg = (prefix >= 0) & (j < K) & (t < M)
    f_found = (t * K + j)[is_asg]
    occ = np.bincount(f_found, minlength=M * K)
    flat_ids = ids_in[:M].reshape(-1)
    kept = np.zeros(M * K, dtype=np.int64)
    exp_pos = exp.sorted_token_ids[exp.sorted_token_ids != sent].astype(np.int64)
    kept[(exp_pos & 0xFFFFFF) * K + (exp_pos >> 24)] = 1
    e_found = flat_ids[f_found]
    in_range = (e_found >= 0) & (e_found < E)
    cnt_found = np.bincount(e_found[in_range], minlength=E)
    cnt_bad = np.flatnonzero(cnt_found != plan.counts)
    _add(rep, cnt_bad, lambda e: (f"expert {e}: expected {plan.counts[e]} assignments, found {cnt_found[e]} "
                                  f"in the prefix of {found_P}"), "experts with wrong counts")
    set_bad = np.flatnonzero(occ != kept)

    def asg(f):
        tt, jj = divmod(int(f), K)
        e = int(flat_ids[f])
        why = "" if kept[f] else (" (dropped: id out of range or masked)")
        return (f"token {tt} slot {jj} (expert {e}{why}): expected {kept[f]} time(s) in the prefix, "
                f"found {occ[f]}")

    _add(rep, set_bad, asg, "assignments present the wrong number of times")

    # Position by position over the expected prefix.
    n = min(P, tok64.size)
    diff = np.flatnonzero(tok64[:n] != exp.sorted_token_ids[:n])
    _add(rep, diff, lambda p: (f"{where(p)} (sorted_token_ids[{p}]): expected "
                               f"{describe(exp.sorted_token_ids[p])}, found {describe(tok64[p])}"),
         "sorted_token_ids differences")
    if wts.dtype.itemsize == 4:
        wbits = _bits(wts)
        ebits = exp.sorted_weights.view(np.uint32)
        n = min(P, wbits.size)
        diff = np.flatnonzero(wbits[:n] != ebits[:n])
        _add(rep, diff, lambda p: (f"sorted_weights[{p}]: expected {_f32(ebits[p])}, found {_f32(wbits[p])} "
                                   f"({where(p)}, {describe(exp.sorted_token_ids[p])})"),
             "sorted_weights differences")
    nb = P // U
    n = min(nb, eid64.size)
    diff = np.flatnonzero(eid64[:n] != exp.sorted_expert_ids[:n])
    _add(rep, diff, lambda b: (f"sorted_expert_ids[{b}] ({where(b * U)}): expected local id "
                               f"{exp.sorted_expert_ids[b]}, found {eid64[b]}"), "sorted_expert_ids differences")

    # Canaries past the valid prefix.
    if before is not None:
        olds = [as_numpy(a, n).reshape(-1) for a, n in zip(_fields(before, _SORT_FIELDS, "before"), _SORT_FIELDS)]
        for name, new, old, valid in (("sorted_token_ids", tok, olds[0], P), ("sorted_weights", wts, olds[1], P),
                                      ("sorted_expert_ids", eid, olds[2], nb)):
            if old.shape != new.shape or old.dtype != new.dtype:
                rep.problems.append(f"{name}: `before` has shape {old.shape} {old.dtype}, the buffer "
                                    f"{new.shape} {new.dtype}; canaries not checked")
                continue
            ob, nbits = _bits(old[valid:]), _bits(new[valid:])
            changed = ob != nbits
            if changed.ndim == 2:
                changed = changed.any(axis=1)
            idx = np.flatnonzero(changed)

            def show(a, i):
                v = a[i]
                if np.ndim(v) == 0:
                    return f"0x{int(v):0{2 * a.dtype.itemsize}x}"
                return "0x" + bytes(v.tolist()).hex()

            _add(rep, idx, lambda i, name=name, ob=ob, nbits=nbits, valid=valid: (
                f"{name}[{valid + i}] past the valid prefix was overwritten: before {show(ob, i)}, "
                f"after {show(nbits, i)}"), f"{name} canaries overwritten")
    if nv_wrong:
        rep.kinds.append("num_valid_ids wrong")
    return rep


_VLLM_FIELDS = ("sorted_token_ids", "expert_ids", "num_tokens_post_pad")


def check_sorting_vllm(actual, topk_ids, topk_weights, num_experts, *, unit_size=32, expert_mask=None,
                       num_local_tokens=None, order="unordered", tail="filled", before=None,
                       capacity_rows=None) -> CheckReport:
    """Check vLLM-layout sorting buffers (:mod:`oracles.layouts`).

    ``actual``: sorted_token_ids, expert_ids, num_tokens_post_pad (by name or position).
    Past the valid prefix, ``tail="filled"`` requires the pad value ``T*K`` and ``-1``
    blocks up to each buffer's end; ``"untouched"`` compares with ``before``. The prefix
    is converted to the CK layout (flat index ``t*K + j`` -> token t slot j, pad -> the CK
    sentinel) and judged by :func:`check_sorting`, so every difference is still named by
    expert, block, token and slot.
    """
    tok, eid, ntp = [as_numpy(a, n).reshape(-1) for a, n in zip(_fields(actual, _VLLM_FIELDS, "actual"),
                                                                 _VLLM_FIELDS)]
    ids_in = as_numpy(topk_ids, "topk_ids")
    T, K = ids_in.shape
    U = as_unit_size(unit_size)
    M = as_num_local_tokens(num_local_tokens, T)
    E = as_num_experts(num_experts)
    rep = CheckReport()
    cap_rows, cap_blocks = capacity(T, K, E, U) if capacity_rows is None else capacity_rows
    for name, arr, need in (("sorted_token_ids", tok, cap_rows), ("expert_ids", eid, cap_blocks),
                            ("num_tokens_post_pad", ntp, 1)):
        if arr.size < need:
            rep.problems.append(f"{name}: length {arr.size} is below the capacity {need} (T={T}, K={K}, E={E}, U={U})")
        if arr.dtype != np.int32:
            rep.problems.append(f"{name}: expected dtype int32, found {arr.dtype}")
    if not rep.ok:
        return rep
    P = int(ntp[0])
    if not 0 <= P <= tok.size:
        rep.problems.append(f"num_tokens_post_pad[0] = {P} is outside [0, {tok.size}] (the buffer length)")
        P = min(max(P, 0), tok.size)
    pad = T * K
    nb = P // U
    if tail == "filled":
        _add(rep, np.flatnonzero(tok[P:] != pad) + P,
             lambda p: f"sorted_token_ids[{p}] past the valid prefix ({P}): expected the pad {pad}, found {tok[p]}",
             "tail slots not padded")
        _add(rep, np.flatnonzero(eid[nb:] != -1) + nb,
             lambda b: f"expert_ids[{b}] past the valid blocks ({nb}): expected -1, found {eid[b]}",
             "tail blocks not -1")
    elif before is not None:
        olds = [as_numpy(a, n).reshape(-1) for a, n in zip(_fields(before, _VLLM_FIELDS, "before"), _VLLM_FIELDS)]
        for name, new, old, valid in (("sorted_token_ids", tok, olds[0], P), ("expert_ids", eid, olds[1], nb)):
            _add(rep, np.flatnonzero(_bits(new[valid:]) != _bits(old[valid:])) + valid,
                 lambda i, name=name, new=new, old=old: (f"{name}[{i}] past the valid prefix was overwritten: "
                                                         f"before {old[i]}, after {new[i]}"),
                 f"{name} canaries overwritten")
    flat = tok[:P].astype(np.int64)
    real = (flat >= 0) & (flat < pad)
    t, j = np.divmod(np.where(real, flat, 0), max(K, 1))
    ck_tok = np.where(real, (j << 24) | t, np.where(flat == pad, (K << 24) | M, -1)).astype(np.int32)
    w_bits = np.ascontiguousarray(as_numpy(topk_weights, "topk_weights"), dtype=np.float32).view(np.uint32)
    ck_w = np.where(real, w_bits.reshape(-1)[np.where(real, flat, 0)] if w_bits.size else 0, 0).astype(np.uint32)
    converted = (ck_tok, ck_w.view(np.float32), eid[:nb].copy(), np.array([P, M], dtype=np.int32))
    inner = check_sorting(converted, topk_ids, topk_weights, E, unit_size=U, expert_mask=expert_mask,
                          num_local_tokens=M, order=order, capacity_rows=(0, 0))
    if not inner.ok:
        rep.problems.append("prefix (shown in the CK form: token t slot j is the flat index t*K + j, the "
                            "sentinel is the pad T*K):")
    return rep.merged(inner, "  ")


# --------------------------------------------------------------------------- route


def check_route(actual, logits, topk, *, unit_size=32, renormalize=True, expert_mask=None, num_local_tokens=None,
                before=None) -> CheckReport:
    """Check a RouteResult-like output (SPEC section 3).

    Gating part: :func:`check_gating` against the float64 oracle. Sorting part:
    :func:`check_sorting` with the ACTUAL topk_ids / topk_weights as input, so
    the sorting must be bit-exact relative to the implementation's own gating
    output. Messages are prefixed ``gating:`` / ``sorting:``.
    """
    fields = _fields(actual, _ROUTE_FIELDS, "actual")
    x = as_logits(logits)
    E = x.shape[1]
    gating = check_gating(fields[0], fields[1], x, topk, renormalize=renormalize)
    rep = CheckReport().merged(gating, "gating: ")
    aw, ai = as_numpy(fields[0], "topk_weights"), as_numpy(fields[1], "topk_ids")
    if (ai.ndim != 2 or ai.shape != aw.shape or not np.issubdtype(ai.dtype, np.integer)
            or aw.dtype != np.float32 or ai.shape[0] != x.shape[0]):
        rep.problems.append(f"sorting: not checked, the gating output is unusable as its input "
                            f"(topk_ids {ai.shape} {ai.dtype}, topk_weights {aw.shape} {aw.dtype})")
        return rep
    sorting = check_sorting(fields[2:], ai, aw, E, unit_size=unit_size, expert_mask=expert_mask,
                            num_local_tokens=num_local_tokens, before=before)
    return rep.merged(sorting, "sorting: ")


# --------------------------------------------------------------------------- moe_buf


def check_moe_buf(before, after, num_local_tokens) -> CheckReport:
    """Byte-level check of the ``moe_buf`` zeroing (SPEC section 2).

    Rows ``[0, M)`` must be all zero bytes; rows ``>= M`` bit-identical to
    ``before``. Any dtype (bfloat16 torch tensors are read as raw bytes); the
    first dimension is tokens.
    """
    b, a = as_numpy(before, "before"), as_numpy(after, "after")
    if b.ndim == 0:
        raise ValueError("before must have a first (token) dimension, got a 0-d array")
    rep = CheckReport()
    if b.shape != a.shape or b.dtype != a.dtype:
        rep.problems.append(f"moe_buf: before is {b.shape} {b.dtype}, after is {a.shape} {a.dtype}")
        return rep
    T = b.shape[0]
    M = as_num_local_tokens(num_local_tokens, T)
    row = b.nbytes // T if T else 0
    b8 = np.ascontiguousarray(b).view(np.uint8).reshape(T, row)
    a8 = np.ascontiguousarray(a).view(np.uint8).reshape(T, row)

    def not_zeroed(r):
        nz = np.flatnonzero(a8[r])
        return (f"moe_buf row {r} (< M={M}) not zeroed: {nz.size} of {row} bytes nonzero, "
                f"first at byte {nz[0]} (0x{a8[r, nz[0]]:02x})")

    _add(rep, np.flatnonzero(a8[:M].any(axis=1)), not_zeroed, "rows not zeroed")

    def touched(i):
        r = M + i
        d = np.flatnonzero(a8[r] != b8[r])
        return (f"moe_buf row {r} (>= M={M}) was touched: {d.size} of {row} bytes differ, first at byte {d[0]} "
                f"(before 0x{b8[r, d[0]]:02x}, after 0x{a8[r, d[0]]:02x})")

    _add(rep, np.flatnonzero((a8[M:] != b8[M:]).any(axis=1)), touched, "rows >= M touched")
    return rep
