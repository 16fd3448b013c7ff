"""Time-boxed fuzzing campaign: the differential properties against the kernels.

    python -m fuzz.campaign [--minutes N] [--target route|gating|sorting|batch|all]
                            [--out fuzz-out] [--planted NAME]

Runs under the ``campaign`` settings profile (random generation, an example database
under ``<out>/db``, one directory per target, so failures found once are replayed
first next time) and the wider ``CAMPAIGN_LIMITS`` shapes. Targets take turns in
rounds of ``--chunk`` examples until the time is up. Prints per-target example
counts and regime counts; writes a standalone repro (fuzz/repro.py) for each failure
into ``<out>`` and exits 1 if anything failed.

Without a GPU the kernels run in the Triton interpreter: ``TRITON_INTERPRET=1`` is set
here, before anything imports ``fused_moe``. ``--planted NAME`` fuzzes a planted bug
instead of the kernels (a quick end-to-end check of the campaign itself).
"""
from __future__ import annotations

import argparse
import collections
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable


def _select_lane() -> str:
    import torch
    if not torch.cuda.is_available():
        os.environ.setdefault("TRITON_INTERPRET", "1")
    return "cpu" if os.environ.get("TRITON_INTERPRET") == "1" or not torch.cuda.is_available() else "cuda"


@dataclass
class Entry:
    """One fuzzing target of the campaign: a property and the implementation(s) it judges."""

    name: str
    prop: str  # key of fuzz.targets.PROPERTIES, or "paths"
    target: Callable  # target, or {path: target} for "paths"
    examples: int = 0
    regimes: collections.Counter = field(default_factory=collections.Counter)
    failure: str | None = None
    repro: Path | None = None


def kernel_entries(which: str) -> list[Entry]:
    from fuzz import targets as tg
    entries = []
    if which in ("gating", "all"):
        entries.append(Entry("gating", "gating", tg.kernel_gating))
    if which in ("sorting", "all"):
        entries.append(Entry("sorting", "sorting", tg.kernel_sorting))
    if which in ("route", "all"):
        entries += [Entry(f"route[{p}]", "route", tg.kernel_route(p)) for p in tg.ROUTE_PATHS]
        entries.append(Entry("route[paths agree]", "paths", {p: tg.kernel_route(p) for p in tg.ROUTE_PATHS}))
        entries += [Entry(f"reuse[route {p}]", "reuse", tg.kernel_route(p)) for p in ("fused", "unfused")]
    if which in ("batch", "all"):
        entries.append(Entry("batch[gating]", "batch", tg.kernel_gating))
        entries += [Entry(f"batch[route {p}]", "batch", tg.route_as_gating(tg.kernel_route(p)))
                    for p in ("fused", "unfused")]
    return entries


def planted_entries(name: str) -> list[Entry]:
    from fuzz import planted
    p = planted.BY_NAME[name]
    return [Entry(f"{name}[{prop}]", prop, p.as_route() if prop == "route" else p.target) for prop in p.properties]


def run_round(entry: Entry, examples: int, db_root: Path, device: str) -> None:
    """``examples`` more examples of ``entry``; on failure record the shrunk case's report."""
    from hypothesis import given, settings
    from hypothesis.database import DirectoryBasedExampleDatabase

    from fuzz import strategies as fst
    from fuzz import targets as tg

    strategy = tg.PROPERTIES["route" if entry.prop == "paths" else entry.prop].strategy(fst.CAMPAIGN_LIMITS)
    check = tg.paths_agree_property if entry.prop == "paths" else tg.PROPERTIES[entry.prop].check
    last = {}
    db_dir = db_root / "".join(c if c.isalnum() else "_" for c in entry.name)

    @settings(settings.default, max_examples=examples, report_multiple_bugs=False,
              database=DirectoryBasedExampleDatabase(str(db_dir)))
    @given(strategy)
    def fuzz_one(case):
        entry.examples += 1
        entry.regimes.update(case.labels)
        try:
            check(entry.target, case, device)
        except Exception as exc:
            last["case"], last["error"] = case, exc
            raise

    try:
        fuzz_one()
    except Exception as exc:  # the final replay is the shrunk example: ``last`` holds it
        case, error = last.get("case"), last.get("error", exc)
        entry.failure = f"{type(error).__name__}: {error}"
        if case is not None and entry.prop != "paths":
            from fuzz import repro
            entry.repro, _ = repro.write_repro(entry.prop, entry.target, case, str(error), db_root.parent,
                                               device=device)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fuzz.campaign", description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=5.0, help="time budget (default 5)")
    parser.add_argument("--target", choices=("route", "gating", "sorting", "batch", "all"), default="all")
    parser.add_argument("--out", default="fuzz-out", help="repros and the example database go here")
    parser.add_argument("--chunk", type=int, default=10,
                        help="examples per target per round (small enough that a 5-minute run reaches every target)")
    parser.add_argument("--planted", metavar="NAME", help="fuzz this planted bug (fuzz.planted) instead")
    args = parser.parse_args(argv)

    device = _select_lane()  # before anything imports fused_moe
    from fuzz import settings as fs
    out = Path(args.out)
    db_root = out / "db"
    fs.load("campaign", database_dir=db_root)

    entries = planted_entries(args.planted) if args.planted else kernel_entries(args.target)
    print(f"campaign: {len(entries)} target(s), {args.minutes:g} min, device {device}, "
          f"TRITON_INTERPRET={os.environ.get('TRITON_INTERPRET', '')}, database {db_root}", flush=True)
    stop = time.monotonic() + 60 * args.minutes
    live = list(entries)
    while live and time.monotonic() < stop:
        for entry in list(live):
            if time.monotonic() >= stop:
                break
            run_round(entry, args.chunk, db_root, device)
            if entry.failure:
                live.remove(entry)
                print(f"FAILED {entry.name} after {entry.examples} examples; repro: {entry.repro}", flush=True)

    failed = [e for e in entries if e.failure]
    print("\nper target:")
    for e in entries:
        status = "FAILED" if e.failure else "ok"
        print(f"  {e.name:24s} {e.examples:6d} examples  {status}")
        for label, n in sorted(e.regimes.items()):
            print(f"      {n:6d}  {label}")
    for e in failed:
        print(f"\n{e.name}: {e.failure[:2000]}\n  repro: {e.repro}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
