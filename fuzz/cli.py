"""``python -m fuzz run``: fuzz one or more targets against the oracle for a bounded time.
(``python -m fuzz power``, the fuzzers measured on planted bugs, is :mod:`fuzz.power`.)

Exit codes: 0 clean, 1 a target failed (a repro is written for each finding), 2 a usage
error, a harness error, or a target that ran no example.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import threading
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
}
SUITES["all"] = [e for name in ("gating", "sorting", "route-fused", "route-unfused", "route-auto", "paths",
                                "batch", "reuse") for e in SUITES[name]]
PROGRESS_SECONDS = 10


class UsageError(Exception):
    """A bad option: one line on stderr, exit 2."""


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m fuzz run", description=__doc__.splitlines()[0])
    p.add_argument("--target", action="append", metavar="NAME",
                   help=f"repeatable: {', '.join(SUITES)}; oracle-*/torch-* references; planted:NAME[/route]; "
                        "or package.module:function (default: all)")
    p.add_argument("--convention", default=None, metavar="ck|vllm|FILE",
                   help="what a module:function target declares (a built-in name or a TOML/JSON file)")
    p.add_argument("--time", type=float, default=300.0, metavar="SECONDS",
                   help="bound on the whole run, shrinking included (default 300)")
    p.add_argument("--max-examples", type=int, default=10**9, metavar="N", help="per target and property")
    p.add_argument("--seed", type=int, default=None, help="derive every run's seed from this (reproducible)")
    p.add_argument("--device", choices=("cpu", "cuda"), default=None,
                   help="cpu: the Triton interpreter; cuda: a CUDA or ROCm GPU (default: cuda when present)")
    p.add_argument("--workers", type=int, default=1, help="worker processes (1 for now)")
    p.add_argument("--out", default="fuzz-out", help="repros, summary and the example database (default fuzz-out)")
    p.add_argument("--db", default=None, metavar="DIR", help="example database directory (default OUT/db)")
    return p


def _select_device(requested: str | None) -> str:
    """Choose the lane BEFORE anything imports fused_moe (TRITON_INTERPRET is read at import)."""
    import torch
    if requested == "cuda" and not torch.cuda.is_available():
        raise UsageError("--device cuda: no CUDA or ROCm device is visible to torch")
    device = requested or ("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cpu":
        os.environ["TRITON_INTERPRET"] = "1"
    return device


def entries_for(names: list[str], convention) -> list:
    """Campaign entries for the ``--target`` values."""
    from fuzz import properties as fp
    from fuzz import targets
    from fuzz.campaign import Entry
    entries = []
    for name in names:
        if name in SUITES:
            for label, prop, target_names in SUITES[name]:
                ts = {t: targets.get(t) for t in target_names}
                entries.append(Entry(label, prop, ts if prop == "paths" else ts[target_names[0]]))
            continue
        try:
            target = targets.get(name, convention=convention)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
        entries += [Entry(f"{name}" if len(fp.properties_for(target)) == 1 else f"{prop}[{name}]", prop, target)
                    for prop in fp.properties_for(target)]
    return entries


def _progress(entries, started: float) -> str:
    parts = [f"{e.label} {e.examples} ({e.examples / max(e.seconds or time.monotonic() - started, 1e-9):.1f}/s)"
             + (" FAILED" if e.failure is not None else "") for e in entries if e.examples or e.failure]
    return f"[{time.monotonic() - started:6.0f}s] " + ", ".join(parts)


def _write_findings(entries, out: Path, device: str) -> None:
    from fuzz import repro
    for e in entries:
        if e.failure is None or e.case is None or isinstance(e.target, dict):
            continue
        folder = out / "repros" / f"{e.one.name.replace(':', '_').replace('/', '_')}-{e.failure.signature}"
        e.repro, _ = repro.write_repro(e.prop, e.target, e.case, str(e.failure.report), folder, name="repro",
                                       device=device)


def _summary(entries, out: Path, seconds: float) -> str:
    rows = [f"{'target':32s} {'property':8s} {'examples':>9s} {'ex/s':>7s}  status"]
    for e in entries:
        rate = e.examples / e.seconds if e.seconds else 0.0
        rows.append(f"{e.label:32s} {e.prop:8s} {e.examples:9d} {rate:7.1f}  {e.status}"
                    + (f": {e.failure.kind}" if e.failure is not None else "")
                    + (f" -> {e.repro}" if e.repro else "") + (f": {e.harness_error}" if e.harness_error else ""))
    data = [{"target": e.label, "property": e.prop, "examples": e.examples, "seconds": round(e.seconds, 2),
             "status": e.status, "kind": None if e.failure is None else e.failure.kind,
             "repro": None if e.repro is None else str(e.repro), "harness_error": e.harness_error,
             "regimes": dict(sorted(e.regimes.items()))} for e in entries]
    out.mkdir(parents=True, exist_ok=True)
    (out / "summary.json").write_text(json.dumps({"seconds": round(seconds, 1), "entries": data}, indent=1))
    return "\n".join(rows)


def run(argv=None) -> int:
    args = _parser().parse_args(argv)
    if args.time <= 0 or args.max_examples < 1 or args.workers != 1:
        raise UsageError("--time must be > 0, --max-examples >= 1, and --workers 1 (several workers: not yet)")
    device = _select_device(args.device)
    from hypothesis.database import DirectoryBasedExampleDatabase

    from fuzz import campaign
    from fuzz import settings as fs
    from fuzz.strategies import CAMPAIGN_LIMITS
    fs.load("campaign")
    out = Path(args.out)
    entries = entries_for(args.target or ["all"], args.convention)
    database = DirectoryBasedExampleDatabase(str(Path(args.db) if args.db else out / "db"))
    print(f"fuzz run: {len(entries)} target/property runs, {args.time:g} s, device {device}, seed {args.seed}, "
          f"out {out}", flush=True)
    started = time.monotonic()
    stop = threading.Event()

    def report():
        while not stop.wait(PROGRESS_SECONDS):
            print(_progress(entries, started), flush=True)

    threading.Thread(target=report, daemon=True).start()
    try:
        for i, entry in enumerate(entries):
            remaining = args.time - (time.monotonic() - started)
            share = remaining / (len(entries) - i)
            campaign.run_entry(entry, seconds=share, max_examples=args.max_examples, seed=args.seed,
                               database=database, device=device, limits=CAMPAIGN_LIMITS)
    finally:
        stop.set()
    _write_findings(entries, out, device)
    print(_summary(entries, out, time.monotonic() - started), flush=True)
    if any(e.harness_error or not e.examples for e in entries if e.failure is None):
        return 2
    return 1 if any(e.failure is not None for e in entries) else 0


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in ("run", "power"):
        print("usage: python -m fuzz run|power [options]   (python -m fuzz run --help, python -m fuzz power --help)",
              file=sys.stderr)
        return 2
    if argv[0] == "power":
        from fuzz import power as command
    else:
        command = sys.modules[__name__]
    try:
        return command.run(argv[1:])
    except UsageError as exc:
        print(f"python -m fuzz {argv[0]}: error: {exc}", file=sys.stderr)
        return 2
