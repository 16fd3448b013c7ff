"""Implementations under test ("targets") and the differential properties that judge them.

A target has exactly the signature of the public kernel function of its operation:

=========  =====================================================================================
op         signature (torch tensors in, NamedTuple of tensors out)
=========  =====================================================================================
gating     ``(logits, topk, *, renormalize=True) -> (topk_weights, topk_ids)``
sorting    ``(topk_ids, topk_weights, num_experts, *, unit_size, expert_mask, num_local_tokens,
           moe_buf, out) -> (sorted_token_ids, sorted_weights, sorted_expert_ids, num_valid_ids)``
route      ``(logits, topk, *, unit_size, renormalize, expert_mask, num_local_tokens, moe_buf,
           out) -> (topk_weights, topk_ids, sorted_token_ids, ..., num_valid_ids)``
=========  =====================================================================================

Kernel targets import ``fused_moe`` lazily (the lane -- ``TRITON_INTERPRET`` -- must be
chosen before it is imported). The oracle targets run ``oracles`` behind the same
signature; they must pass every property (a self-test of this harness) and are
what :mod:`fuzz.planted` breaks on purpose.

The ``*_property(target, case, device)`` functions are THE differential properties:
``tests/fuzz`` calls them on kernels under ``@given``, ``tests/quality`` on planted bugs,
``fuzz.campaign`` on kernels for as long as it is given. Each raises ``AssertionError``
with the checkers' readable report when the target is wrong.

Poisoning: with ``case.options.poisoned`` the sorting buffers are passed as ``out=``,
``SLACK`` elements longer than the capacity and filled with canaries (NaN payload
``0x7fc0dead`` for floats, ``0x5a5a5a5a`` / ``0x3c3c3c3c`` for ints), so canaries sit past
every valid prefix; the checkers compare everything past the prefix with the copy
taken before the call. ``moe_buf`` (every byte nonzero) is checked byte by byte.
"""
from __future__ import annotations

import functools
from typing import Callable, NamedTuple

import numpy as np

import oracles
from fuzz.strategies import (BatchCase, GatingCase, Options, ReuseCase, RouteCase, SortingCase, batch_cases,
                             gating_cases, reuse_cases, route_cases, sorting_cases)

CANARY_TOKEN = 0x5A5A5A5A
CANARY_BLOCK = 0x3C3C3C3C
CANARY_WEIGHT_BITS = 0x7FC0DEAD
CANARY_TOPK_ID = -0x5A5A5A5B
#: Canary elements past the capacity of every sorting buffer.
SLACK = 8

ROUTE_PATHS = ("fused", "unfused", "auto")


# --------------------------------------------------------------------------- kernel targets


def kernel_gating(logits, topk, *, renormalize=True):
    import fused_moe
    return fused_moe.topk_gating_softmax(logits, topk, renormalize=renormalize)


def kernel_sorting(topk_ids, topk_weights, num_experts, **kwargs):
    import fused_moe
    return fused_moe.moe_sorting(topk_ids, topk_weights, num_experts, **kwargs)


@functools.lru_cache(maxsize=None)
def kernel_route(path: str) -> Callable:
    """``fused_moe.route`` with ``path`` bound."""
    def target(logits, topk, **kwargs):
        import fused_moe
        return fused_moe.route(logits, topk, path=path, **kwargs)

    def reset_plans():
        from fused_moe.plans import clear_plans
        clear_plans()
    target.__name__ = target.__qualname__ = f"kernel_route_{path}"
    target.reset_plans = reset_plans  # reuse_property starts every case from an empty plan cache
    target.repro_spec = ("import functools\nimport fused_moe", f"functools.partial(fused_moe.route, path={path!r})")
    return target


# (import, expression) rebuilding a target in a standalone repro (fuzz.repro)
kernel_gating.repro_spec = ("import fused_moe", "fused_moe.topk_gating_softmax")
kernel_sorting.repro_spec = ("import fused_moe", "fused_moe.moe_sorting")


def _compose_spec(target, fn_name: str, *inner) -> None:
    """Give a composite target a repro_spec built from its parts' specs."""
    from fuzz.repro import target_spec
    specs = [target_spec(t) for t in inner]
    imports = "\n".join(dict.fromkeys([s[0] for s in specs] + [f"from fuzz.targets import {fn_name}"]))
    target.repro_spec = (imports, f"{fn_name}({', '.join(s[1] for s in specs)})")


def kernels_available() -> bool:
    try:
        import fused_moe
    except ImportError:
        return False
    return all(hasattr(fused_moe, n) for n in ("topk_gating_softmax", "moe_sorting", "route"))


# --------------------------------------------------------------------------- oracle targets


def _torch():
    import torch
    return torch


def _host(x):
    """A torch tensor (any device) or array as NumPy; float16/bfloat16 upcast exactly to float32."""
    torch = _torch()
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu()
        if x.dtype in (torch.float16, torch.bfloat16):
            x = x.float()
        return x.numpy()
    return np.asarray(x)


def _m_value(num_local_tokens, T: int) -> int:
    return T if num_local_tokens is None else int(_host(num_local_tokens).reshape(-1)[0])


def _zero_rows(moe_buf, M: int) -> None:
    if moe_buf is not None:
        moe_buf[:M] = 0


def write_sorting(prefix, T, K, E, U, device, out=None, *, written=None) -> tuple:
    """Write a valid-prefix SortingResult (NumPy) into ``out`` (or fresh capacity-sized
    zeroed buffers), touching nothing past the prefix. ``written`` optionally masks the
    positions of ``sorted_token_ids`` / ``sorted_weights`` actually stored (planted bugs)."""
    torch = _torch()
    if out is None:
        rows, blocks = oracles.capacity(T, K, E, U)
        out = (torch.zeros(rows, dtype=torch.int32, device=device),
               torch.zeros(rows, dtype=torch.float32, device=device),
               torch.zeros(blocks, dtype=torch.int32, device=device),
               torch.zeros(2, dtype=torch.int32, device=device))
    tok, wts, eid, nv = (np.asarray(a) for a in prefix)
    keep = np.ones(tok.size, bool) if written is None else written.copy()
    # a buggy layout may not fit (a kernel would scribble past the buffer): store what fits
    keep[out[0].numel():] = False
    eid = eid[: out[2].numel()]
    idx = torch.from_numpy(np.flatnonzero(keep)).to(device)
    out[0][idx] = torch.from_numpy(tok[keep].astype(np.int32)).to(device)
    out[1].view(torch.int32)[idx] = torch.from_numpy(wts[keep].view(np.int32)).to(device)
    out[2][: eid.size] = torch.from_numpy(eid.astype(np.int32)).to(device)
    out[3][:2] = torch.from_numpy(nv.astype(np.int32)).to(device)
    return tuple(out)


def oracle_gating(logits, topk, *, renormalize=True):
    torch = _torch()
    r = oracles.topk_gating_softmax(_host(logits), topk, renormalize=renormalize)
    return oracles.GatingResult(torch.from_numpy(r.topk_weights).to(logits.device),
                                torch.from_numpy(r.topk_ids).to(logits.device))


def oracle_sorting(topk_ids, topk_weights, num_experts, *, unit_size=32, expert_mask=None, num_local_tokens=None,
                   moe_buf=None, out=None):
    T, K = topk_ids.shape
    M = _m_value(num_local_tokens, T)
    mask = None if expert_mask is None else _host(expert_mask)
    prefix = oracles.moe_sorting(_host(topk_ids), _host(topk_weights), num_experts, unit_size=unit_size,
                                 expert_mask=mask, num_local_tokens=M)
    _zero_rows(moe_buf, M)
    return oracles.SortingResult(*write_sorting(prefix, T, K, num_experts, unit_size, topk_ids.device, out))


def route_from(gating: Callable, sorting: Callable) -> Callable:
    """A route target composed of a gating target and a sorting target."""
    def target(logits, topk, *, unit_size=32, renormalize=True, expert_mask=None, num_local_tokens=None,
               moe_buf=None, out=None):
        g = gating(logits, topk, renormalize=renormalize)
        if out is not None:
            out[0].copy_(g.topk_weights)
            out[1].copy_(g.topk_ids)
            g = oracles.GatingResult(out[0], out[1])
        s = sorting(g.topk_ids, g.topk_weights, logits.shape[1], unit_size=unit_size, expert_mask=expert_mask,
                    num_local_tokens=num_local_tokens, moe_buf=moe_buf, out=None if out is None else out[2:])
        return oracles.RouteResult(g.topk_weights, g.topk_ids, *s)
    target.__name__ = target.__qualname__ = f"route_from({gating.__name__}, {sorting.__name__})"
    _compose_spec(target, "route_from", gating, sorting)
    return target


oracle_route = route_from(oracle_gating, oracle_sorting)


# --------------------------------------------------------------------------- poisoned runs


def poisoned_sorting_out(T, K, E, U, device):
    """Sorting out= buffers, SLACK longer than the capacity, every element a canary."""
    torch = _torch()
    rows, blocks = oracles.capacity(T, K, E, U)
    return oracles.SortingResult(
        torch.full((rows + SLACK,), CANARY_TOKEN, dtype=torch.int32, device=device),
        torch.full((rows + SLACK,), CANARY_WEIGHT_BITS, dtype=torch.int32, device=device).view(torch.float32),
        torch.full((blocks + SLACK,), CANARY_BLOCK, dtype=torch.int32, device=device),
        torch.full((2,), CANARY_TOKEN, dtype=torch.int32, device=device))


def poisoned_route_out(T, K, E, U, device):
    torch = _torch()
    return oracles.RouteResult(
        torch.full((T, K), CANARY_WEIGHT_BITS, dtype=torch.int32, device=device).view(torch.float32),
        torch.full((T, K), CANARY_TOPK_ID, dtype=torch.int32, device=device),
        *poisoned_sorting_out(T, K, E, U, device))


def _snapshot(tensors):
    return type(tensors)(*(t.detach().cpu().clone() for t in tensors))


class Run(NamedTuple):
    """What a target produced for a case: the buffers to judge and their copies from before."""

    result: tuple  # the buffers to judge (out= buffers when poisoned)
    before: tuple | None  # copies of the poisoned buffers before the call
    moe_buf_before: object
    moe_buf_after: object
    M: int


def _call(target, case, args, T, K, E, device, make_out) -> Run:
    o: Options = case.options
    moe_buf = o.moe_buf_tensor(T, device)
    moe_before = None if moe_buf is None else moe_buf.detach().cpu().clone()
    out = make_out(T, K, E, o.unit_size, device) if o.poisoned else None
    before = None if out is None else _snapshot(out)
    kwargs = dict(unit_size=o.unit_size, expert_mask=o.mask_tensor(device), num_local_tokens=o.m_arg(device),
                  moe_buf=moe_buf)
    if isinstance(case, RouteCase):
        kwargs["renormalize"] = case.renormalize
    res = target(*args, **kwargs, out=out)
    judged = out if out is not None else res
    M = T if o.num_local_tokens is None else o.num_local_tokens
    return Run(_snapshot(type(res)(*judged)), before, moe_before,
               None if moe_buf is None else moe_buf.detach().cpu().clone(), M)


def run_sorting(target, case: SortingCase, device="cpu") -> Run:
    torch = _torch()
    T, K = case.topk_ids.shape
    args = (torch.from_numpy(case.topk_ids.copy()).to(device), torch.from_numpy(case.topk_weights.copy()).to(device),
            case.num_experts)
    return _call(target, case, args, T, K, case.num_experts, device, poisoned_sorting_out)


def run_route(target, case: RouteCase, device="cpu") -> Run:
    T, E = case.logits.values.shape
    return _call(target, case, (case.logits.tensor(device), case.topk), T, case.topk, E, device, poisoned_route_out)


def _moe_buf_report(run: Run):
    if run.moe_buf_before is None:
        return oracles.CheckReport()
    return oracles.check_moe_buf(run.moe_buf_before, run.moe_buf_after, run.M)


def judge_sorting(case: SortingCase, run: Run):
    o = case.options
    rep = oracles.check_sorting(run.result, case.topk_ids, case.topk_weights, case.num_experts,
                                unit_size=o.unit_size, expert_mask=o.expert_mask,
                                num_local_tokens=o.num_local_tokens, before=run.before)
    return rep.merged(_moe_buf_report(run))


def judge_route(case: RouteCase, run: Run):
    o = case.options
    before = None if run.before is None else run.before[2:]
    rep = oracles.check_route(run.result, case.logits.values, case.topk, unit_size=o.unit_size,
                              renormalize=case.renormalize, expert_mask=o.expert_mask,
                              num_local_tokens=o.num_local_tokens, before=before)
    return rep.merged(_moe_buf_report(run))


# --------------------------------------------------------------------------- the properties


def _fail(report, case, target) -> None:
    assert report.ok, f"{getattr(target, '__name__', target)} on {case!r}\n{report}"


def gating_property(target, case: GatingCase, device="cpu") -> None:
    """Gating outputs agree with the oracle: ids exact, weights within the contract's tolerance."""
    res = target(case.logits.tensor(device), case.topk, renormalize=case.renormalize)
    rep = oracles.check_gating(res.topk_weights, res.topk_ids, case.logits.values, case.topk,
                               renormalize=case.renormalize)
    _fail(rep, case, target)


def sorting_property(target, case: SortingCase, device="cpu") -> None:
    """Sorting outputs bit-exact against the oracle, canaries past the prefix and moe_buf rows >= M untouched."""
    _fail(judge_sorting(case, run_sorting(target, case, device)), case, target)


def route_property(target, case: RouteCase, device="cpu") -> None:
    """Route outputs: gating against the oracle, sorting bit-exact relative to the target's own gating output."""
    _fail(judge_route(case, run_route(target, case, device)), case, target)


def reuse_property(target, case: ReuseCase, device="cpu") -> None:
    """Every call of the sequence is right, whatever the calls before it left in the
    target's plan cache (emptied first, so a failure depends on the case alone)."""
    reset = getattr(target, "reset_plans", None)
    if reset is not None:
        reset()
    for call in case.calls:
        route_property(target, call, device)


def _bits(t) -> tuple:
    """Shape, dtype and raw bytes: equal iff bit-identical."""
    t = t.detach().cpu().contiguous()
    return tuple(t.shape), str(t.dtype), t.reshape(-1).view(_torch().uint8).numpy().tobytes()


def paths_agree_property(targets: dict, case: RouteCase, device="cpu") -> None:
    """Every route target gives bit-identical outputs (valid prefixes, moe_buf) on the same case."""
    runs = {name: run_route(t, case, device) for name, t in targets.items()}
    (ref_name, ref), *rest = runs.items()
    P = int(ref.result[5][0])
    U = case.options.unit_size
    lengths = (None, None, P, P, P // U, 2)
    for name, run in rest:
        problems = []
        for field, n, a, b in zip(oracles.RouteResult._fields, lengths, ref.result, run.result):
            a, b = (a, b) if n is None else (a[:n], b[:n])
            if _bits(a) != _bits(b):
                problems.append(f"{field}: {ref_name} {_host(a).tolist()} != {name} {_host(b).tolist()}")
        if ref.moe_buf_after is not None and _bits(ref.moe_buf_after) != _bits(run.moe_buf_after):
            problems.append("moe_buf differs")
        _fail(oracles.CheckReport(problems), case, f"paths {ref_name} vs {name}")


def route_as_gating(route_target: Callable) -> Callable:
    """The gating part of a route target, as a gating target."""
    def target(logits, topk, *, renormalize=True):
        r = route_target(logits, topk, renormalize=renormalize)
        return oracles.GatingResult(r.topk_weights, r.topk_ids)
    target.__name__ = target.__qualname__ = f"gating_of({route_target.__name__})"
    _compose_spec(target, "route_as_gating", route_target)
    return target


def batch_invariance_property(target, case: BatchCase, device="cpu") -> None:
    """A row's topk outputs are bit-identical inside another batch (other rows, other T)."""
    torch = _torch()
    c = case.case
    full = target(c.logits.tensor(device), c.topk, renormalize=c.renormalize)
    rows = list(case.rows)
    src = torch.from_numpy(np.concatenate([c.logits.values[rows], case.filler]).astype(np.float32))
    other = target(src.to(getattr(torch, c.logits.dtype)).to(device), c.topk, renormalize=c.renormalize)
    problems = []
    for i, r in enumerate(rows):
        for field, a, b in (("topk_ids", full.topk_ids, other.topk_ids),
                            ("topk_weights", full.topk_weights, other.topk_weights)):
            if _bits(a[r]) != _bits(b[i]):
                problems.append(f"row {r} (row {i} of the other batch of {src.shape[0]}): {field} "
                                f"{_host(a[r]).tolist()} != {_host(b[i]).tolist()}")
    _fail(oracles.CheckReport(problems), case, target)


# --------------------------------------------------------------------------- registry


class Property(NamedTuple):
    """A differential property, the strategy feeding it and its per-test CI example budget."""

    strategy: Callable  # limits -> SearchStrategy of cases
    check: Callable  # (target, case, device) -> None, raises AssertionError
    ci_examples: int


PROPERTIES = {
    "gating": Property(gating_cases, gating_property, 120),
    "sorting": Property(sorting_cases, sorting_property, 150),
    "route": Property(route_cases, route_property, 80),
    "batch": Property(batch_cases, batch_invariance_property, 25),
    "reuse": Property(reuse_cases, reuse_property, 12),
}


#: Examples a planted-bug hunt may use (tests/quality). Larger than one kernel test's
#: budget: Hypothesis's generation is clustered, so a bug class that a single derandomized
#: 60-example run can miss is still one the CI run as a whole should catch.
HUNT_EXAMPLES = 200


def failing_case(prop: str, target, *, max_examples: int = HUNT_EXAMPLES, device="cpu"):
    """The minimal case on which ``target`` fails property ``prop`` (``hypothesis.find`` under the
    loaded profile), or None when none is found in ``max_examples``."""
    from hypothesis import find, settings
    from hypothesis.errors import NoSuchExample

    p = PROPERTIES[prop]

    def fails(case) -> bool:
        try:
            p.check(target, case, device)
        except AssertionError:
            return True
        return False

    s = settings(settings.default, max_examples=max_examples, database=None)
    try:
        return find(p.strategy(), fails, settings=s)
    except NoSuchExample:
        return None
