"""Benchmark of ``fused_moe.route``: unfused vs fused vs auto vs a plain PyTorch pipeline.

    python benchmarks/bench_route.py                        # full table on a CUDA / ROCm GPU (< ~6 min)
    python benchmarks/bench_route.py --quick --tokens 1,16   # fewer reps, fewer rows
    python benchmarks/bench_route.py --out-dir "$OUT"        # write <card>.md / <card>.json there
    python benchmarks/bench_route.py --dry-run               # no GPU: CPU interpreter, plumbing only

The rules (what each column measures, inputs, medians) are in benchmarks/README.md.
Phases, in this order, so that no phase perturbs another's numbers:

1. launch floor (empty @triton.jit kernel) and device copy bandwidth;
2. per model and T: correctness guard (fused == unfused == auto bit for bit, torch
   pipeline agrees on tie-free logits), then eager and graph timings of all four paths;
3. kernel times with torch.profiler, last, so CUPTI never runs during phase 1 or 2;
4. tables, "auto within X%" lines and the issue's targets; Markdown + JSON files.
"""
from __future__ import annotations

import argparse
import datetime
import gc
import json
import math
import os
import pathlib
import platform
import re
import shlex
import statistics
import sys
import time
from typing import NamedTuple

import torch

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

fused_moe = None  # imported by _load() once TRITON_INTERPRET is decided
triton = None
_empty_kernel = None


class Model(NamedTuple):
    name: str
    E: int  # experts
    K: int  # top-k
    D: int  # model_dim: moe_buf is bf16 [T, D], zeroed by every call


MODELS = {
    "deepseek-r1": Model("DeepSeek-R1", 256, 8, 7168),
    "gpt-oss-120b": Model("GPT-OSS-120B", 128, 4, 2880),
}
TOKENS = (1, 2, 4, 8, 12, 16, 64, 256, 1024, 4096, 16384)
DRY_RUN_TOKENS = (1, 17)  # 17: two gating tiles for E=256 -> the fused path's arrival counter
U = 32
PATHS = ("unfused", "fused", "auto", "torch")
KERNEL_PATHS = PATHS  # the table shows unfused and fused; the JSON keeps all four

GRAPH_CALLS = 10  # R: route calls captured in one graph
AUTO_TOLERANCE = 0.05  # "auto within X%": flag when auto's graph time is > 5% above the faster path
TIE_TOLERANCE = 0.03  # "fused wins/ties": fused <= unfused * 1.03
MAX_SETS = GRAPH_CALLS  # a graph of R calls touches at most R input sets
COPY_BYTES = 1 << 30


class Reps(NamedTuple):
    eager_batches: int  # batches of N back-to-back calls; median over batches
    eager_batch_s: float  # N is chosen so one batch takes about this long
    eager_max_calls: int
    graph_replays: int  # replays of the R-call graph; median over replays
    kernel_calls: int  # eager calls under torch.profiler; median over calls


FULL = Reps(eager_batches=7, eager_batch_s=0.01, eager_max_calls=400, graph_replays=15, kernel_calls=9)
QUICK = Reps(eager_batches=3, eager_batch_s=0.003, eager_max_calls=100, graph_replays=5, kernel_calls=5)
LARGE_T = 4096  # from here on a call is device bound: fewer batches / replays


def _load(interpret: bool) -> None:
    """Import triton and fused_moe; TRITON_INTERPRET must be set before fused_moe's kernels
    are decorated, so this runs after the device is known, never at import time."""
    global fused_moe, triton, _empty_kernel
    if interpret:
        os.environ["TRITON_INTERPRET"] = "1"
    import triton as _triton  # noqa: PLC0415

    import fused_moe as _fused_moe  # noqa: PLC0415

    @_triton.jit
    def empty_kernel():
        """Grid (1,): one program that does nothing: the launch floor."""
        pass

    fused_moe, triton, _empty_kernel = _fused_moe, _triton, empty_kernel


# ---------------------------------------------------------------------------------------------
# The PyTorch baseline
# ---------------------------------------------------------------------------------------------

def torch_route(logits, K, U, moe_buf, out):
    """Gating softmax + MoE sorting + moe_buf zeroing in plain PyTorch, the same layout as
    ``fused_moe.route`` (SPEC sections 1-2), with no host sync and no data-dependent shape
    (so it is CUDA-graph capturable). ``out=None`` allocates capacity-sized outputs per call,
    as ``route`` does. Ties in top-k follow torch.topk, not the kernel's lower-index rule.

    Counts use ``scatter_add_`` where one would write ``torch.bincount(minlength=E)``:
    on CUDA bincount copies min() and max() of its input to the host (a sync, and it cannot
    be captured); scatter_add_ computes the same E counts on the device.
    """
    T, E = logits.shape
    device = logits.device
    if out is None:
        out = fused_moe.allocate_route_outputs(T, K, E, U, device)
    probs = torch.softmax(logits.float(), dim=-1)
    weights, ids = torch.topk(probs, K, dim=-1)  # slot 0 = largest
    weights = weights / weights.sum(dim=-1, keepdim=True)  # renormalize=True
    out.topk_weights.copy_(weights)
    out.topk_ids.copy_(ids)

    flat_e = ids.reshape(-1)  # assignment f = t * K + j
    sorted_e, f = torch.sort(flat_e, stable=True)  # stable: (t asc, j asc) inside each expert
    counts = torch.zeros(E, dtype=torch.int64, device=device).scatter_add_(0, flat_e, torch.ones_like(flat_e))
    padded = (counts + (U - 1)) // U * U
    seg_end = torch.cumsum(padded, 0)
    seg_start = seg_end - padded
    cnt_start = torch.cumsum(counts, 0) - counts
    rank = torch.arange(f.numel(), device=device) - cnt_start.index_select(0, sorted_e)
    pos = seg_start.index_select(0, sorted_e) + rank  # slot of each sorted assignment

    packed = ((f % K) << 24) | (f // K)  # (j << 24) | t
    out.sorted_token_ids.fill_((K << 24) | T).scatter_(0, pos, packed.to(torch.int32))  # pad (K<<24)|M
    out.sorted_weights.zero_().scatter_(0, pos, weights.reshape(-1).index_select(0, f))  # pad 0.0
    # Every block of an expert holds at least one real assignment (padding < U), so
    # scattering each assignment's expert to its block writes every valid block.
    out.sorted_expert_ids.scatter_(0, pos // U, sorted_e.to(torch.int32))
    out.num_valid_ids[:1].copy_(seg_end[-1:])
    out.num_valid_ids[1:].fill_(T)
    moe_buf.zero_()
    return out


# ---------------------------------------------------------------------------------------------
# Inputs and calls
# ---------------------------------------------------------------------------------------------

class Inputs(NamedTuple):
    logits: torch.Tensor  # (T, E) bf16, torch.randn
    moe_buf: torch.Tensor  # (T, D) bf16, random before the first call
    out: tuple  # RouteResult from allocate_route_outputs, used by graph captures only


def n_input_sets(model, T, device):
    """Enough sets that together they are about twice the L2, at least 2, at most R."""
    set_bytes = T * (model.E + model.D) * 2
    l2 = getattr(torch.cuda.get_device_properties(device), "L2_cache_size", 50 << 20) \
        if device.type == "cuda" else 50 << 20
    return max(2, min(MAX_SETS, math.ceil(2 * l2 / max(1, set_bytes))))


def make_inputs(model, T, n_sets, device, seed):
    gen = torch.Generator(device=device).manual_seed(seed)
    sets = []
    for _ in range(n_sets):
        logits = torch.randn(T, model.E, generator=gen, device=device, dtype=torch.bfloat16)
        moe_buf = torch.randn(T, model.D, generator=gen, device=device, dtype=torch.bfloat16)
        sets.append(Inputs(logits, moe_buf, fused_moe.allocate_route_outputs(T, model.K, model.E, U, device)))
    return sets


def make_call(path, model, inp, *, graph):
    """Zero-argument callable for one route call. Eager (graph=False) is the call as users
    write it: no out=, moe_buf passed. Graph calls write the set's preallocated out=."""
    out = inp.out if graph else None
    x, buf, K = inp.logits, inp.moe_buf, model.K
    if path == "torch":
        return lambda: torch_route(x, K, U, buf, out)
    return lambda: fused_moe.route(x, K, unit_size=U, moe_buf=buf, path=path, out=out)


def _cycle(calls, n):
    return [calls[i % len(calls)] for i in range(n)]


# ---------------------------------------------------------------------------------------------
# Correctness guards (outside every timed region)
# ---------------------------------------------------------------------------------------------

def _poisoned_out(model, T, device):
    out = fused_moe.allocate_route_outputs(T, model.K, model.E, U, device)
    out.topk_weights.fill_(float("nan"))
    for x in (out.topk_ids, out.sorted_token_ids, out.sorted_expert_ids, out.num_valid_ids):
        x.fill_(-0x2152411)  # sentinel: never a valid id, count or packed token
    out.sorted_weights.fill_(float("nan"))
    return out


def _int_view(x):
    return x.view(torch.int32) if x.dtype == torch.float32 else x


def _prefixes(res):
    """Valid prefixes of a RouteResult as int32 tensors (floats by their bits)."""
    P = int(res.num_valid_ids[0])
    return {
        "topk_weights": _int_view(res.topk_weights), "topk_ids": res.topk_ids,
        "num_valid_ids": res.num_valid_ids, "sorted_token_ids": res.sorted_token_ids[:P],
        "sorted_weights": _int_view(res.sorted_weights[:P]), "sorted_expert_ids": res.sorted_expert_ids[:P // U],
    }


def _check_zeroed(moe_buf, what):
    if not bool(moe_buf.view(torch.int16).eq(0).all()):
        raise AssertionError(f"{what}: moe_buf rows were not zeroed")


def guard(model, T, inp, device):
    """fused, unfused and auto must agree bit for bit on the valid prefixes (and zero moe_buf);
    returns P = num_valid_ids[0]. Raises before a broken kernel is ever timed."""
    label = f"{model.name} T={T}"
    results = {}
    for path in ("unfused", "fused", "auto"):
        inp.moe_buf.normal_()
        out = fused_moe.route(inp.logits, model.K, unit_size=U, moe_buf=inp.moe_buf, path=path,
                              out=_poisoned_out(model, T, device))
        _check_zeroed(inp.moe_buf, f"{label} {path}")
        results[path] = _prefixes(out)
    ref = results["unfused"]
    P, M = (int(v) for v in ref["num_valid_ids"])
    slots, _ = fused_moe.capacity(T, model.K, model.E, U)
    if M != T or not 0 <= P <= slots or P % U:
        raise AssertionError(f"{label}: num_valid_ids = [{P}, {M}] is not a valid [P, M] (capacity {slots})")
    for path in ("fused", "auto"):
        for name, want in ref.items():
            got = results[path][name]
            if got.shape != want.shape or not torch.equal(got, want):
                bad = (got != want).nonzero()[:3].tolist() if got.shape == want.shape else "shape"
                raise AssertionError(f"{label}: {path} differs from unfused in {name} (first at {bad})")
    inp.moe_buf.normal_()  # timings start from random data again
    return P


def check_torch_route(model, T, device, seed):
    """torch_route against fused_moe on tie-free logits (distinct values per row, so both
    tie rules pick the same experts): num_valid_ids, ids and layout must be equal, the
    weights close. On CUDA it runs under sync-debug "error": a host sync raises here."""
    gen = torch.Generator(device="cpu").manual_seed(seed)
    perm = torch.argsort(torch.rand(T, model.E, generator=gen), dim=1)
    logits = ((perm - model.E // 2).float() / 8).to(torch.bfloat16).to(device)  # k/8 exact in bf16
    buf = torch.randn(T, model.D, generator=gen).to(torch.bfloat16).to(device)
    want = fused_moe.route(logits, model.K, unit_size=U, moe_buf=torch.empty_like(buf), path="fused")
    out = _poisoned_out(model, T, device)
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.set_sync_debug_mode("error")
    try:
        got = torch_route(logits, model.K, U, buf, out)
    finally:
        if device.type == "cuda":
            torch.cuda.set_sync_debug_mode("default")
    label = f"{model.name} T={T} torch_route"
    _check_zeroed(buf, label)
    if not torch.equal(got.num_valid_ids, want.num_valid_ids):
        raise AssertionError(f"{label}: num_valid_ids {got.num_valid_ids.tolist()} != fused_moe's "
                             f"{want.num_valid_ids.tolist()}")
    g, w = _prefixes(got), _prefixes(want)
    for name in ("topk_ids", "sorted_token_ids", "sorted_expert_ids"):
        if not torch.equal(g[name], w[name]):
            raise AssertionError(f"{label}: {name} differs from fused_moe's")
    P = int(want.num_valid_ids[0])
    diff = max(float((got.topk_weights - want.topk_weights).abs().max()),
               float((got.sorted_weights[:P] - want.sorted_weights[:P]).abs().max()))
    if not diff <= 1e-4:
        raise AssertionError(f"{label}: weights differ from fused_moe's by {diff:.3g}")
    return diff


# ---------------------------------------------------------------------------------------------
# Timing
# ---------------------------------------------------------------------------------------------

def _median(xs):
    return statistics.median(xs) if xs else float("nan")


def time_eager(calls, reps, batches):
    """Host wall time per call: N back-to-back calls, perf_counter, one synchronize at the end,
    divided by N; median over batches. N is sized so one batch takes ~reps.eager_batch_s."""
    sync = torch.cuda.synchronize
    for c in _cycle(calls, 3 * len(calls)):
        c()
    sync()
    probe = _cycle(calls, 5)
    t0 = time.perf_counter()
    for c in probe:
        c()
    sync()
    per_call = (time.perf_counter() - t0) / len(probe)
    n = max(5, min(reps.eager_max_calls, int(reps.eager_batch_s / max(per_call, 1e-7))))
    seq = _cycle(calls, n)
    for c in seq:  # warm-up batch
        c()
    sync()
    gc.collect()
    samples = []
    for _ in range(batches):
        t0 = time.perf_counter()
        for c in seq:
            c()
        sync()
        samples.append((time.perf_counter() - t0) / n * 1e6)
    return {"median_us": _median(samples), "samples_us": samples, "calls_per_batch": n}


def _hide_host_submission():
    """Queue ~100 us of GPU spin ahead of the start event, so the replay is enqueued before
    the GPU reaches the event and the host's graph-launch latency is not in the elapsed time."""
    sleep = getattr(torch.cuda, "_sleep", None)
    if sleep is not None:
        sleep(200_000)  # cycles


def time_graph(calls, stream, replays, R=GRAPH_CALLS):
    """Device time per call: one CUDA graph holding R calls that cycle over the input sets,
    replayed and timed with CUDA events; elapsed / R, median over replays."""
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):  # warm up on the capture stream (JIT, per-stream counters)
        for c in _cycle(calls, max(3, len(calls))):
            c()
    torch.cuda.current_stream().wait_stream(stream)
    torch.cuda.synchronize()
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph, stream=stream):
        for c in _cycle(calls, R):
            c()
    graph.replay()
    graph.replay()
    torch.cuda.synchronize()
    samples = []
    for _ in range(replays):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        _hide_host_submission()
        start.record()
        graph.replay()
        end.record()
        end.synchronize()
        samples.append(start.elapsed_time(end) * 1e3 / R)
    del graph
    return {"median_us": _median(samples), "samples_us": samples, "calls_per_graph": R}


def _device_events(prof):
    """Kernels, memsets and copies recorded on the device, in start order."""
    from torch.autograd import DeviceType  # noqa: PLC0415

    evs = [e for e in prof.events()
           if e.device_type != DeviceType.CPU and not getattr(e, "is_user_annotation", False)]
    return sorted(evs, key=lambda e: e.time_range.start)


def time_kernels(calls, n_calls):
    """Device time of the kernels alone: torch.profiler over n_calls eager calls, each followed
    by a synchronize; the device events are split into n_calls equal consecutive groups
    (a path launches the same kernels every call) and summed per call; median per call."""
    from torch.profiler import ProfilerActivity, profile  # noqa: PLC0415

    for c in calls:
        c()
    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        for c in _cycle(calls, n_calls):
            c()
            torch.cuda.synchronize()
    evs = _device_events(prof)
    durations = [e.time_range.elapsed_us() for e in evs]
    if not evs:
        return {"median_us": float("nan"), "samples_us": [], "events_per_call": 0, "names": [],
                "note": "no device events recorded"}
    if len(evs) % n_calls:
        return {"median_us": sum(durations) / n_calls, "samples_us": [], "events_per_call": len(evs) / n_calls,
                "names": sorted({e.name for e in evs}),
                "note": f"{len(evs)} events over {n_calls} calls: reporting the mean"}
    k = len(evs) // n_calls
    samples = [sum(durations[i * k:(i + 1) * k]) for i in range(n_calls)]
    return {"median_us": _median(samples), "samples_us": samples, "events_per_call": k,
            "names": [e.name for e in evs[:k]]}


def launch_floor(stream, reps):
    """The empty kernel launched the usual way, ``kernel[(1,)]()``: eager host time per launch
    and graph time per launch, measured like the routes."""
    calls = [lambda: _empty_kernel[(1,)]()]
    return {"eager": time_eager(calls, reps, reps.eager_batches),
            "graph": time_graph(calls, stream, reps.graph_replays)}


def copy_bandwidth(device):
    """Device-to-device copy of 1 GiB through torch: (read + write bytes) / time, median of 9."""
    src = torch.empty(COPY_BYTES, dtype=torch.uint8, device=device).fill_(1)
    dst = torch.empty_like(src)
    for _ in range(2):
        dst.copy_(src)
    torch.cuda.synchronize()
    samples = []
    for _ in range(9):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        dst.copy_(src)
        end.record()
        end.synchronize()
        samples.append(start.elapsed_time(end) * 1e3)
    del src, dst
    torch.cuda.empty_cache()
    t_us = _median(samples)
    return {"bytes": COPY_BYTES, "samples_us": samples, "median_us": t_us, "GBps": 2 * COPY_BYTES / t_us / 1e3}


def floor_bytes(model, T, P):
    """Bytes a route must move at least: logits read once, topk outputs and the valid sorted
    prefixes written once, moe_buf zeroed."""
    return (T * model.E * 2  # logits, bf16
            + T * model.K * (4 + 4)  # topk_weights f32 + topk_ids i32
            + P * (4 + 4) + (P // U) * 4 + 2 * 4  # sorted ids + weights, expert ids, num_valid_ids
            + T * model.D * 2)  # moe_buf, bf16


# ---------------------------------------------------------------------------------------------
# The run
# ---------------------------------------------------------------------------------------------

def _seed(model, T):
    return 1000 * model.E + T


def _fmt(x, digits=1):
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{digits}f}"


def _progress(t_start, msg):
    print(f"[{time.perf_counter() - t_start:6.1f}s] {msg}", flush=True)


def measure_shape(model, T, device, stream, reps, t_start):
    n_sets = n_input_sets(model, T, device)
    sets = make_inputs(model, T, n_sets, device, _seed(model, T))
    P = guard(model, T, sets[0], device)
    diff = check_torch_route(model, T, device, _seed(model, T) + 1)
    _progress(t_start, f"{model.name} T={T}: guard ok (P={P}, {n_sets} input sets, torch_route weights "
                       f"within {diff:.1e})")
    large = T >= LARGE_T
    batches = max(3, reps.eager_batches // 2) if large else reps.eager_batches
    replays = max(5, reps.graph_replays // 2) if large else reps.graph_replays
    row = {"T": T, "P": P, "capacity": fused_moe.capacity(T, model.K, model.E, U)[0], "n_sets": n_sets,
           "auto_path": fused_moe.choose_path("auto", T, model.E, model.K, device),
           "eager": {}, "graph": {}, "kernel": {}}
    for path in PATHS:
        row["eager"][path] = time_eager([make_call(path, model, s, graph=False) for s in sets], reps, batches)
    for path in PATHS:
        for s in sets:
            s.moe_buf.normal_()  # the eager calls zeroed it
        row["graph"][path] = time_graph([make_call(path, model, s, graph=True) for s in sets], stream, replays)
    _progress(t_start, f"{model.name} T={T}: eager " + " ".join(
        f"{p} {_fmt(row['eager'][p]['median_us'])}" for p in PATHS) + " | graph " + " ".join(
        f"{p} {_fmt(row['graph'][p]['median_us'])}" for p in PATHS) + " (us)")
    del sets
    gc.collect()
    torch.cuda.empty_cache()
    return row


def measure_kernels(model, T, device, reps, t_start):
    sets = make_inputs(model, T, n_input_sets(model, T, device), device, _seed(model, T))
    out = {path: time_kernels([make_call(path, model, s, graph=False) for s in sets], reps.kernel_calls)
           for path in KERNEL_PATHS}
    _progress(t_start, f"{model.name} T={T}: kernel " + " ".join(
        f"{p} {_fmt(out[p]['median_us'], 2)}" for p in KERNEL_PATHS) + " (us)")
    del sets
    torch.cuda.empty_cache()
    return out


def run(args, device):
    reps = QUICK if args.quick else FULL
    t_start = time.perf_counter()
    stream = torch.cuda.Stream(device=device)
    results = {"meta": _meta(device, args), "models": {}}
    _progress(t_start, f"{results['meta']['card']}: torch {torch.__version__}, triton {triton.__version__}")

    floor = launch_floor(stream, reps)
    results["launch_floor"] = floor
    bw = copy_bandwidth(device)
    results["copy_bandwidth"] = bw
    _progress(t_start, f"launch floor: eager {_fmt(floor['eager']['median_us'], 2)} us, graph "
                       f"{_fmt(floor['graph']['median_us'], 2)} us; copy bandwidth {bw['GBps']:.0f} GB/s")

    for key in args.models:
        model = MODELS[key]
        rows = {}
        for T in args.tokens:
            row = measure_shape(model, T, device, stream, reps, t_start)
            row["floor_bytes"] = floor_bytes(model, T, row["P"])
            row["floor_us"] = row["floor_bytes"] / bw["GBps"] / 1e3
            rows[str(T)] = row
        results["models"][key] = {"name": model.name, "E": model.E, "K": model.K, "model_dim": model.D,
                                  "unit_size": U, "rows": rows}

    _progress(t_start, "kernel times (torch.profiler), after all eager and graph timings")
    _profiler_warmup()
    for key in args.models:
        model = MODELS[key]
        for T in args.tokens:
            results["models"][key]["rows"][str(T)]["kernel"] = measure_kernels(model, T, device, reps, t_start)
    results["meta"]["elapsed_s"] = time.perf_counter() - t_start
    return results


def _profiler_warmup():
    """The first profiler session pays CUPTI's start-up; keep it out of the measured ones."""
    from torch.profiler import ProfilerActivity, profile  # noqa: PLC0415

    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]):
        for _ in range(3):
            _empty_kernel[(1,)]()
        torch.cuda.synchronize()


def _slug(name):
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "unknown-device"


def _meta(device, args):
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        card = torch.cuda.get_device_name(device)
        extra = {"sm_count": props.multi_processor_count,
                 "l2_bytes": getattr(props, "L2_cache_size", None),
                 "cuda": torch.version.cuda, "hip": torch.version.hip}
    else:
        card, extra = "CPU (TRITON_INTERPRET=1)", {}
    return {"card": card, "slug": _slug(card), "torch": torch.__version__, "triton": triton.__version__,
            "python": platform.python_version(),
            "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "command": shlex.join(["python", *sys.argv]), "quick": bool(args.quick),
            "graph_calls": GRAPH_CALLS, "unit_size": U, **extra}


# ---------------------------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------------------------

COLUMNS = ("T", "unfused eager", "fused eager", "auto eager", "torch eager", "unfused graph", "fused graph",
           "auto graph", "torch graph", "unfused kernel", "fused kernel", "eager speedup", "graph speedup",
           "kernel speedup", "floor us")


def _m(row, mode, path):
    return row[mode].get(path, {}).get("median_us", float("nan"))


def _ratio(a, b):
    return a / b if b and not math.isnan(a) and not math.isnan(b) else float("nan")


def table(model_res):
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for row in model_res["rows"].values():
        cells = [str(row["T"])]
        cells += [_fmt(_m(row, mode, p)) for mode, paths in (("eager", PATHS), ("graph", PATHS),
                                                             ("kernel", ("unfused", "fused"))) for p in paths]
        cells += [_fmt(_ratio(_m(row, mode, "unfused"), _m(row, mode, "fused")), 2)
                  for mode in ("eager", "graph", "kernel")]
        cells.append(_fmt(row["floor_us"], 2))
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def auto_lines(model_res):
    lines, misses = [], 0
    for row in model_res["rows"].values():
        fused, unfused, auto = (_m(row, "graph", p) for p in ("fused", "unfused", "auto"))
        best_path = "fused" if fused <= unfused else "unfused"
        best = min(fused, unfused)
        pct = (auto / best - 1) * 100
        miss = not pct <= AUTO_TOLERANCE * 100
        misses += miss
        lines.append(f"- T={row['T']}: auto ({row['auto_path']}) graph {_fmt(auto)} us, faster path {best_path} "
                     f"{_fmt(best)} us: auto within {pct:+.1f}% of the faster path"
                     + (f"  **MISS** (> {AUTO_TOLERANCE:.0%})" if miss else ""))
    return lines, misses


def _verdict(ok, numbers=()):
    """PASS / MISS, or n/a when a number behind the verdict is missing (NaN)."""
    if ok is None or any(math.isnan(x) for x in numbers):
        return "n/a"
    return "PASS" if ok else "MISS"


def targets(model_res, floor):
    """The issue's targets, each (name, PASS/MISS/n/a, the numbers behind it)."""
    rows = {row["T"]: row for row in model_res["rows"].values()}
    small = [T for T in sorted(rows) if T <= 16]
    upto256 = [T for T in sorted(rows) if T <= 256]
    out = []

    def worst_ratio(name, mode, limit, Ts):
        if not Ts:
            return out.append((name, "n/a", "no T <= 16 in this run"))
        ratios = {T: _ratio(_m(rows[T], mode, "fused"), _m(rows[T], mode, "unfused")) for T in Ts}
        T_worst = max(ratios, key=lambda T: -1 if math.isnan(ratios[T]) else ratios[T])
        ok = all(r <= limit for r in ratios.values())
        detail = f"worst fused/unfused {ratios[T_worst]:.2f} at T={T_worst}; " + ", ".join(
            f"T={T}: {r:.2f}" for T, r in ratios.items())
        out.append((name, _verdict(ok, ratios.values()), detail))

    worst_ratio("T<=16: fused kernel <= 0.65x unfused kernel", "kernel", 0.65, small)
    worst_ratio("T<=16: fused graph <= 0.8x unfused graph", "graph", 0.8, small)
    worst_ratio("T<=16: fused eager <= 0.45x unfused eager", "eager", 0.45, small)

    if upto256:
        losses = [f"T={T} {mode} {_m(rows[T], mode, 'fused'):.1f} vs {_m(rows[T], mode, 'unfused'):.1f}"
                  for T in upto256 for mode in ("kernel", "graph")
                  if not _m(rows[T], mode, "fused") <= _m(rows[T], mode, "unfused") * (1 + TIE_TOLERANCE)]
        out.append((f"fused wins/ties (<= {1 + TIE_TOLERANCE:.2f}x unfused, kernel and graph) up to T=256",
                    _verdict(not losses, [_m(rows[T], mode, p) for T in upto256 for mode in ("kernel", "graph")
                                          for p in ("fused", "unfused")]), "; ".join(losses) or f"all of T={upto256}"))
    else:
        out.append(("fused wins/ties up to T=256", "n/a", "no T <= 256 in this run"))

    empty = floor["eager"]["median_us"]
    if 1 in rows:
        auto1 = _m(rows[1], "eager", "auto")
        out.append(("route eager at T=1 <= 1.5x empty-kernel eager launch",
                    _verdict(auto1 <= 1.5 * empty, [auto1, empty]),
                    f"auto {auto1:.1f} us (fused {_m(rows[1], 'eager', 'fused'):.1f}) vs empty kernel {empty:.1f} us "
                    f"= {_ratio(auto1, empty):.2f}x"))
    else:
        out.append(("route eager at T=1 <= 1.5x empty-kernel eager launch", "n/a", "T=1 not in this run"))

    if small:
        ratios = {T: _ratio(_m(rows[T], "graph", "torch"), _m(rows[T], "graph", "auto")) for T in small}
        T_worst = min(ratios, key=lambda T: math.inf if math.isnan(ratios[T]) else ratios[T])
        out.append(("T<=16: route graph >= 10x faster than torch graph",
                    _verdict(all(r >= 10 for r in ratios.values()), ratios.values()),
                    f"worst torch/auto {ratios[T_worst]:.1f}x at T={T_worst}"))
    else:
        out.append(("T<=16: route graph >= 10x faster than torch graph", "n/a", "no T <= 16 in this run"))

    if 16384 in rows:
        row = rows[16384]
        k, g = _m(row, "kernel", "auto"), _m(row, "graph", "auto")
        out.append(("T=16384 within 5x of the memory floor (auto path, kernel time)",
                    _verdict(k <= 5 * row["floor_us"], [k, row["floor_us"]]),
                    f"auto ({row['auto_path']}) kernel {k:.1f} us, graph {g:.1f} us, floor {row['floor_us']:.1f} us "
                    f"= {_ratio(k, row['floor_us']):.2f}x kernel, {_ratio(g, row['floor_us']):.2f}x graph"))
    else:
        out.append(("T=16384 within 5x of the memory floor", "n/a", "T=16384 not in this run"))
    return out


def report(results):
    meta, floor, bw = results["meta"], results["launch_floor"], results["copy_bandwidth"]
    lines = [f"# fused_moe.route benchmark: {meta['card']}", ""]
    if meta.get("placeholder"):
        lines += ["**DRY RUN: placeholder numbers, not measurements.**", ""]
    lines += [f"- card: {meta['card']}" + (f" ({meta['sm_count']} SMs)" if meta.get("sm_count") else ""),
              f"- torch {meta['torch']}, triton {meta['triton']}, Python {meta['python']}"
              + (f", CUDA {meta['cuda']}" if meta.get("cuda") else "")
              + (f", HIP {meta['hip']}" if meta.get("hip") else ""),
              f"- date: {meta['date']}",
              f"- command: `{meta['command']}`" + (" (quick reps)" if meta.get("quick") else ""),
              "- method: benchmarks/README.md. All times in us, medians; speedup = unfused / fused;"
              f" graph = one CUDA graph of {meta['graph_calls']} calls, per call; unit_size {meta['unit_size']},"
              " bf16 logits, moe_buf bf16 [T, model_dim] zeroed by every call.",
              "", f"Launch floor (empty @triton.jit kernel, grid (1,), `kernel[(1,)]()`): eager "
              f"{_fmt(floor['eager']['median_us'], 2)} us per launch, graph {_fmt(floor['graph']['median_us'], 2)} us "
              "per launch.",
              f"Device copy bandwidth: {bw['GBps']:.0f} GB/s ({bw['bytes'] / 2**30:g} GiB device-to-device copy, "
              "(read + write bytes) / time); floor us = the route's minimum bytes / this bandwidth.", ""]
    summary = []
    for key, mres in results["models"].items():
        lines += [f"## {mres['name']}: E={mres['E']}, topk={mres['K']}, model_dim={mres['model_dim']}, bf16", ""]
        lines += table(mres)
        auto, misses = auto_lines(mres)
        lines += ["", f"auto (graph time, tolerance {AUTO_TOLERANCE:.0%}): "
                  + ("all within" if not misses else f"{misses} MISS"), *auto, ""]
        checks = targets(mres, floor)
        lines += ["Targets:", *(f"- {status}: {name}: {detail}" for name, status, detail in checks), ""]
        summary += [(mres["name"], name, status) for name, status, _ in checks]
    counts = {s: sum(1 for *_, st in summary if st == s) for s in ("PASS", "MISS", "n/a")}
    lines += [f"Summary: {counts['PASS']} PASS, {counts['MISS']} MISS, {counts['n/a']} n/a"]
    results["targets"] = [{"model": m, "target": n, "status": s} for m, n, s in summary]
    return "\n".join(lines) + "\n"


def _json(results):
    """Strict JSON: NaN (a missing number) becomes null."""
    def clean(x):
        if isinstance(x, float) and not math.isfinite(x):
            return None
        if isinstance(x, dict):
            return {k: clean(v) for k, v in x.items()}
        if isinstance(x, (list, tuple)):
            return [clean(v) for v in x]
        return x
    return json.dumps(clean(results), indent=1, allow_nan=False) + "\n"


def write_outputs(results, text, out_dir):
    out_dir = pathlib.Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    slug = results["meta"]["slug"]
    (out_dir / f"{slug}.md").write_text(text)
    (out_dir / f"{slug}.json").write_text(_json(results))
    return out_dir / f"{slug}.md", out_dir / f"{slug}.json"


# ---------------------------------------------------------------------------------------------
# Dry run (no timing)
# ---------------------------------------------------------------------------------------------

def dry_run(args, device):
    """Every path once per shape at tiny T, the guards, and the report code on placeholder numbers."""
    t_start = time.perf_counter()
    for key in args.models:
        model = MODELS[key]
        for T in args.tokens:
            inp = make_inputs(model, T, 1, device, _seed(model, T))[0]
            P = guard(model, T, inp, device)
            diff = check_torch_route(model, T, device, _seed(model, T) + 1)
            torch_route(inp.logits, model.K, U, inp.moe_buf, None)
            _check_zeroed(inp.moe_buf, "torch_route")
            _progress(t_start, f"{model.name} T={T}: unfused/fused/auto bitwise equal, P={P}; torch_route "
                               f"num_valid_ids equal on tie-free logits (weights within {diff:.1e})")
    results = _placeholder_results(args, device)
    text = report(results)
    print("\n" + text, flush=True)
    if args.out_dir:
        for path in write_outputs(results, text, args.out_dir):
            print(f"wrote {path}")
    print("dry run ok: plumbing checked, nothing timed", flush=True)


def _placeholder_results(args, device):
    """Numbers shaped like a real run (JSON layout included), to exercise the report code."""
    def stat(v):
        return {"median_us": v, "samples_us": [v]}
    results = {"meta": {**_meta(device, args), "placeholder": True},
               "launch_floor": {"eager": stat(10.0), "graph": stat(2.0)},
               "copy_bandwidth": {"bytes": COPY_BYTES, "samples_us": [700.0], "median_us": 700.0, "GBps": 3000.0},
               "models": {}}
    for key in args.models:
        model = MODELS[key]
        rows = {}
        for T in args.tokens:
            scale = 1 + T / 256
            base = {"unfused": 30.0, "fused": 14.0, "torch": 150.0}
            base["auto"] = base[fused_moe.choose_path("auto", T, model.E, model.K, device)]
            P = min(fused_moe.capacity(T, model.K, model.E, U)[0], T * model.K * U)
            rows[str(T)] = {"T": T, "P": P, "capacity": fused_moe.capacity(T, model.K, model.E, U)[0], "n_sets": 2,
                            "auto_path": fused_moe.choose_path("auto", T, model.E, model.K, device),
                            "eager": {p: stat(v * scale) for p, v in base.items()},
                            "graph": {p: stat(v * scale / 2) for p, v in base.items()},
                            "kernel": {p: stat(v * scale / 3) for p, v in base.items()},
                            "floor_bytes": floor_bytes(model, T, P)}
            rows[str(T)]["floor_us"] = rows[str(T)]["floor_bytes"] / 3000.0 / 1e3
        results["models"][key] = {"name": model.name, "E": model.E, "K": model.K, "model_dim": model.D,
                                  "unit_size": U, "rows": rows}
    return results


# ---------------------------------------------------------------------------------------------

def _csv(kind, choices=None):
    def parse(text):
        items = [s.strip() for s in text.split(",") if s.strip()]
        if kind is int:
            try:
                values = [int(s) for s in items]
            except ValueError:
                raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None
            if not values or min(values) < 1:
                raise argparse.ArgumentTypeError(f"token counts must be >= 1, got {text!r}")
            return values
        bad = [s for s in items if s not in choices]
        if bad or not items:
            raise argparse.ArgumentTypeError(f"unknown model(s) {bad}; choose from {', '.join(choices)}")
        return items
    return parse


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", type=_csv(str, tuple(MODELS)), default=list(MODELS),
                    help=f"comma-separated, from {', '.join(MODELS)} (default: both)")
    ap.add_argument("--tokens", type=_csv(int), default=None,
                    help=f"comma-separated T values (default: {','.join(map(str, TOKENS))}; dry run: "
                         f"{','.join(map(str, DRY_RUN_TOKENS))})")
    ap.add_argument("--quick", action="store_true", help="fewer repetitions")
    ap.add_argument("--out-dir", default=None,
                    help="where <card>.md and <card>.json go (default: benchmarks/results; dry run: not written)")
    ap.add_argument("--dry-run", action="store_true",
                    help="run every path once at tiny T and the report code, no timing (CPU interpreter without a GPU)")
    args = ap.parse_args(argv)

    has_gpu = torch.cuda.is_available()
    if not has_gpu and not args.dry_run:
        ap.error("no CUDA / ROCm device: timing needs a GPU (use --dry-run to check the plumbing on the CPU)")
    _load(interpret=not has_gpu)
    device = torch.device("cuda", torch.cuda.current_device()) if has_gpu else torch.device("cpu")
    if args.tokens is None:
        args.tokens = list(DRY_RUN_TOKENS if args.dry_run else TOKENS)
    if args.dry_run:
        return dry_run(args, device)

    results = run(args, device)
    out_dir = pathlib.Path(args.out_dir) if args.out_dir else REPO / "benchmarks" / "results"
    out_dir.mkdir(parents=True, exist_ok=True)
    raw = out_dir / f"{results['meta']['slug']}.json"
    raw.write_text(_json(results))  # raw numbers first: the report cannot lose them
    text = report(results)
    print("\n" + text, flush=True)
    md, js = write_outputs(results, text, out_dir)
    print(f"wrote {md} and {js} ({results['meta']['elapsed_s']:.0f} s)", flush=True)


if __name__ == "__main__":
    main()
