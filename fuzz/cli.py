"""``python -m fuzz run``: fuzz one or more targets against the oracle for a bounded time.
(``python -m fuzz power``, the fuzzers measured on planted bugs, is :mod:`fuzz.power`.)

Exit codes: 0 clean, 1 a target failed (a repro is written for each finding), 2 a usage
error, a harness error, or a target that ran no example.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

#: Suites of built-in targets: name -> [(label, property, target names)].
SUITES = {
    "gating": [("gating", "gating", ("gating",))],
    "sorting": [("sorting", "sorting", ("sorting",))],
    "route-fused": [("route-fused", "route", ("route-fused",))],
    "route-unfused": [("route-unfused", "route", ("route-unfused",))],
    "route-auto": [("route-auto", "route", ("route-auto",))],
    "paths": [("paths", "paths", ("route-fused", "route-unfused", "route-auto"))],
    "batch": [(f"batch[{t}]", "batch", (t,)) for t in ("gating", "route-fused", "route-unfused")],
    "reuse": [(f"reuse[{t}]", "reuse", (t,)) for t in ("route-fused", "route-unfused")],
    "vllm": [("sorting-vllm", "sorting", ("sorting-vllm",)),
             *((f"route-{p}-vllm", "route", (f"route-{p}-vllm",)) for p in ("fused", "unfused", "auto")),
             ("paths-vllm", "paths", tuple(f"route-{p}-vllm" for p in ("fused", "unfused", "auto")))],
}
SUITES["all"] = [e for name in ("gating", "sorting", "route-fused", "route-unfused", "route-auto", "paths",
                                "batch", "reuse", "vllm") for e in SUITES[name]]


#: Shape classes per run on a GPU: few enough that a run compiles its variants in its first
#: seconds (about 10 a class), enough that one run still sees several E, dtypes and K buckets.
GPU_SHAPE_CLASSES = 6


class UsageError(Exception):
    """A bad option: one line on stderr, exit 2."""


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m fuzz run", description=__doc__.splitlines()[0])
    p.add_argument("--target", action="append", metavar="NAME",
                   help=f"repeatable: {', '.join(SUITES)}; oracle-*/torch-* references; planted:NAME[/route]; "
                        "external (every fuzz.adapters target that runs here) or one of them; "
                        "or package.module:function (default: all)")
    p.add_argument("--convention", default=None, metavar="ck|vllm|FILE",
                   help="what a module:function target declares (a built-in name or a TOML/JSON file)")
    p.add_argument("--time", type=float, default=300.0, metavar="SECONDS",
                   help="bound on the whole run, shrinking included (default 300)")
    p.add_argument("--max-examples", type=int, default=10**9, metavar="N", help="per target and property")
    p.add_argument("--seed", type=int, default=None, help="derive every run's seed from this (reproducible)")
    p.add_argument("--device", choices=("cpu", "cuda"), default=None,
                   help="cpu: the Triton interpreter; cuda: a CUDA or ROCm GPU (default: cuda when present)")
    p.add_argument("--workers", type=int, default=1, help="worker processes sharing the example database")
    p.add_argument("--devices", default=None, metavar="0,1,...", help="one worker per GPU (sets --device cuda)")
    p.add_argument("--out", default="fuzz-out", help="repros, summary and the example database (default fuzz-out)")
    p.add_argument("--db", default=None, metavar="DIR|redis://HOST:PORT/N",
                   help="example database: a directory (default OUT/db) or a Redis URL shared across machines")
    p.add_argument("--ledger", default=None, metavar="FILE",
                   help="known findings (TOML, fuzz/ledger.py): matching failures are reported as known; "
                        "default fuzz/known_findings.toml")
    p.add_argument("--sizes", choices=("ci", "campaign"), default=None,
                   help="shape limits: ci (T <= 40, T*K <= 512) or campaign (T <= 300, T*K <= 8192); default "
                        "ci on the CPU interpreter, campaign on a GPU")
    p.add_argument("--shape-classes", type=int, default=None, metavar="N",
                   help="each run draws its shapes from N classes picked from its seed (fuzz/shapes.py), so "
                        "every kernel variant compiles once; 0: every shape freely (default: "
                        f"{GPU_SHAPE_CLASSES} on a GPU, 0 on the CPU interpreter, which compiles nothing)")
    p.add_argument("--quiet", action="store_true",
                   help="no progress while it runs (default: a refreshing table on a terminal when rich is "
                        "installed and CI is unset, else a plain line every 10 s)")
    return p


def _select_device(requested: str | None) -> str:
    """Choose the lane BEFORE anything imports fused_moe (TRITON_INTERPRET is read at import)."""
    import torch
    if requested == "cuda" and not torch.cuda.is_available():
        raise UsageError("--device cuda: no CUDA or ROCm device is visible to torch")
    device = requested or ("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cpu":
        from fuzz import interpreter
        interpreter.select()
    return device


def _expand(names: list[str]) -> list[str]:
    """``external``: every external target that can run here."""
    from fuzz import adapters
    out = []
    for name in names:
        out += sorted(adapters.available_targets()) if name == "external" else [name]
    return out


def entries_for(names: list[str], convention) -> list:
    """Campaign entries for the ``--target`` values."""
    from fuzz import properties as fp
    from fuzz import targets
    from fuzz.campaign import Entry
    entries = []
    for name in _expand(names):
        if name in SUITES:
            for label, prop, target_names in SUITES[name]:
                entries.append(Entry(label, prop, targets.get("+".join(target_names))))
            continue
        try:
            target = targets.get(name, convention=convention)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
        entries += [Entry(f"{name}" if len(fp.properties_for(target)) == 1 else f"{prop}[{name}]", prop, target)
                    for prop in fp.properties_for(target)]
    return entries


def _write_bundles(entries, out: Path, device: str, seed) -> None:
    """One bundle per distinct failure (target, property, kind), after shrinking."""
    from fuzz import bundles
    for e in entries:
        if e.failure is None or e.case is None:
            continue
        e.repro, written = bundles.write_bundle(out / "repros", e.prop, e.target, e.case, e.failure,
                                                device=device, seed=seed)
        if not written:
            e.note = "known: the bundle from an earlier run still reproduces"


def _summary(entries, out: Path, seconds: float) -> str:
    """The closing table; summary.json and summary.md (with every regime's count) in ``out``."""
    from fuzz.strategies import declared_regimes
    rows = [f"{'target':36s} {'property':8s} {'examples':>9s} {'ex/s':>7s} {'regimes':>7s}  status"]
    data = []
    for e in entries:
        rate = e.examples / e.seconds if e.seconds else 0.0
        declared = declared_regimes(e.prop)
        hit = len(declared & set(e.regimes))
        rows.append(f"{e.label:36s} {e.prop:8s} {e.examples:9d} {rate:7.1f} {hit:3d}/{len(declared):<3d}  {e.status}"
                    + (f": {e.failure.kind}" if e.failure is not None else "")
                    + (f" -> {e.repro}" if e.repro else "") + (f": {e.harness_error}" if e.harness_error else "")
                    + (f" ({e.note})" if e.note else ""))
        data.append({"target": e.label, "property": e.prop, "examples": e.examples, "seconds": round(e.seconds, 2),
                     "status": e.status, "kind": None if e.failure is None else e.failure.kind,
                     "bundle": None if e.repro is None else str(e.repro), "harness_error": e.harness_error,
                     "regimes_hit": hit, "regimes_declared": len(declared), "regimes": dict(sorted(e.regimes.items())),
                     "shape_classes": list(map(str, e.classes)),
                     "regimes_missed": sorted(declared - set(e.regimes))})
    out.mkdir(parents=True, exist_ok=True)
    (out / "summary.json").write_text(json.dumps({"seconds": round(seconds, 1), "entries": data}, indent=1))
    md = ["# Fuzz campaign summary", "", "```", *rows, "```", ""]
    for d in data:
        md += [f"## {d['target']} ({d['property']})", ""]
        md += [f"Shape classes: {'; '.join(d['shape_classes'])}", ""] if d["shape_classes"] else []
        md += ["| regime | examples |", "|---|---|"]
        md += [f"| {label} | {n} |" for label, n in d["regimes"].items()]
        md += [f"| {label} | 0 |" for label in d["regimes_missed"]] + [""]
    (out / "summary.md").write_text("\n".join(md))
    return "\n".join(rows)


def _options(args) -> dict:
    """Validated options, as the workers take them (picklable)."""
    if args.time <= 0 or args.max_examples < 1 or args.workers < 1:
        raise UsageError("--time must be > 0, --max-examples >= 1 and --workers >= 1")
    if args.shape_classes is not None and args.shape_classes < 0:
        raise UsageError(f"--shape-classes must be >= 0 (0: every shape freely), got {args.shape_classes}")
    devices = [d.strip() for d in args.devices.split(",")] if args.devices else []
    if args.devices is not None and (not devices or not all(d.isdigit() for d in devices)):
        raise UsageError(f"--devices takes GPU indices such as 0,1,2, got {args.devices!r}")
    if devices and args.device == "cpu":
        raise UsageError("--devices is for GPUs: drop --device cpu")
    device = _select_device("cuda" if devices else args.device)
    from fuzz.strategies import CAMPAIGN_LIMITS, CI_LIMITS
    sizes = args.sizes or ("ci" if device == "cpu" else "campaign")
    out = Path(args.out)
    return {"targets": args.target or ["all"], "convention": args.convention, "device": device, "devices": devices,
            "workers": len(devices) or args.workers, "seed": args.seed, "max_examples": args.max_examples,
            "limits": {"ci": CI_LIMITS, "campaign": CAMPAIGN_LIMITS}[sizes], "shrink_seconds": args.time / 5,
            "db": args.db or str(out / "db"), "out": out, "time": args.time, "quiet": args.quiet,
            "shape_classes": (args.shape_classes if args.shape_classes is not None
                              else 0 if device == "cpu" else GPU_SHAPE_CLASSES)}


def _run_workers(options: dict, entries: list, started: float) -> bool:
    """Start the workers, print progress, collect results; -> True when stopped by a signal."""
    import multiprocessing
    import signal

    from fuzz import campaign, live
    ctx = multiprocessing.get_context("spawn")  # fresh interpreters: the lane and devices are set before imports
    stop, queue = ctx.Event(), ctx.Queue()
    options = {**options, "deadline": time.time() + options["time"]}
    progress = live.progress_for(options["quiet"])
    procs = [ctx.Process(target=campaign.worker, args=(i, options, queue, stop), daemon=True)
             for i in range(options["workers"])]
    interrupted = []

    def on_signal(signum, frame):
        interrupted.append(signum)
        stop.set()

    old = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        for p in procs:
            p.start()
        pending = set(campaign.slots(len(entries), options["workers"]))
        with progress:
            _collect(queue, procs, entries, pending, started, progress)
        for p in procs:
            p.join(timeout=30)
    finally:
        for s, handler in old.items():
            signal.signal(s, handler)
    return bool(interrupted)


def _collect(queue, procs, entries, pending: set, started: float, progress, clock=time.monotonic) -> None:
    """Results and progress from the workers until every (entry, replica) slot in ``pending``
    is done or the workers are gone. An entry's examples add up over its replicas."""
    from fuzz import campaign
    began = {}  # entry -> when its first run began (this clock): a slow example in flight lowers its rate
    running = {}  # slot -> examples so far, until its result comes
    finished = {}  # entry -> examples of its finished runs

    def show(i):
        entries[i].examples = finished.get(i, 0) + sum(n for (j, _), n in running.items() if j == i)

    while pending:
        try:
            kind, slot, *rest = queue.get(timeout=1.0)
        except Exception:  # noqa: BLE001 -- queue.Empty: check the workers are alive
            if not any(p.is_alive() for p in procs):
                for i, _ in pending:
                    entries[i].harness_error = "its worker process died"
                break
        else:
            i = slot[0]
            if kind == "done":
                running.pop(slot, None)
                if i not in finished:  # the runs' own times replace the live estimate
                    entries[i].seconds = 0.0
                entries[i].examples = finished.get(i, 0)
                campaign.apply_result(entries[i], rest[0])
                finished[i] = entries[i].examples
                pending.discard(slot)
                entries[i].done = not any(j == i for j, _ in pending)
            else:
                running[slot], seconds, failing = rest
                entries[i].failing |= failing
                began.setdefault(i, clock() - seconds)
            show(i)
        for i in began.keys() & {j for j, _ in pending}:
            entries[i].seconds = clock() - began[i]
        progress.update(entries, clock() - started)


def run(argv=None) -> int:
    args = _parser().parse_args(argv)
    options = _options(args)
    from fuzz import ledger
    try:
        known = ledger.load(args.ledger or ledger.DEFAULT)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    out = options["out"]
    entries = entries_for(options["targets"], options["convention"])
    print(f"fuzz run: {len(entries)} target/property runs, {args.time:g} s, {options['workers']} worker(s), "
          f"device {options['device']}, seed {args.seed}, database {options['db']}, out {out}", flush=True)
    started = time.monotonic()
    interrupted = _run_workers(options, entries, started)
    for e in entries:
        e.stopped = interrupted and not e.examples
    _write_bundles(entries, out, options["device"], args.seed)
    for e in entries:
        e.known = None if e.failure is None else ledger.match(known, e.one.name, e.failure.signature)
    print(_summary(entries, out, time.monotonic() - started), flush=True)
    for line in _unseen(known, entries):
        print(line, flush=True)
    if interrupted:
        print("stopped by a signal: the summary, bundles and database above are complete", flush=True)
    if any(e.failure is not None and e.known is None for e in entries):
        return 1
    return 2 if any(e.harness_error or not (e.examples or e.stopped) for e in entries) else 0


def _unseen(known, entries) -> list[str]:
    """Ledger entries for targets that ran without showing them: fixed, or just not hit this time."""
    ran = {e.one.name for e in entries if e.examples}
    seen = {(e.one.name, e.failure.signature) for e in entries if e.failure is not None}
    return [f"ledger: {k.target} {k.signature} was not seen this run (fixed? then remove it): {k.link}"
            for k in known if k.target in ran and (k.target, k.signature) not in seen]


COMMANDS = ("run", "replay", "power")


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in COMMANDS:
        print("usage: python -m fuzz {run,replay,power} [options]   (python -m fuzz run --help)", file=sys.stderr)
        return 2
    if argv[0] == "replay":
        from fuzz.bundles import replay_main
        return replay_main(argv[1:])
    if argv[0] == "power":
        from fuzz import power as command
    else:
        command = sys.modules[__name__]
    try:
        return command.run(argv[1:])
    except UsageError as exc:
        print(f"python -m fuzz {argv[0]}: error: {exc}", file=sys.stderr)
        return 2
