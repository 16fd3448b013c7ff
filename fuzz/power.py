"""``python -m fuzz power``: how strong are the fuzzers? Measured on the planted-bug corpus.

For every planted bug (:mod:`fuzz.planted`) and every property that must find it, one hunt
(:func:`fuzz.properties.hunt`: the same property the kernel tests run, a pinned seed) under
a budget of ``--examples`` generated cases and ``--seconds``: found or not, the examples and
seconds to the first failure, the symptom, the size of the shrunk case. Then the controls,
targets that must NOT fail, under a smaller budget: the NumPy oracle targets, the
plain-PyTorch reference (``torch-*``), this project's kernels (``gating``, ``sorting``,
``route-fused|unfused|auto`` and the paths agreement, when ``fused_moe`` imports; under the
Triton interpreter they are slow) and every planted target with its knob off.

Reported: recall (bugs found / bugs planted; a bug counts as found when every property that
must find it does), false positives (controls failed / controls run: must be 0) and the
median time and examples to detection. A table on stdout; ``power.json`` and ``power.md``
in ``--out``.

Exit codes: 0 every bug found and no control failed, 1 otherwise, 2 a usage error.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

#: The CI budget (tests/quality) is fuzz.properties.HUNT_EXAMPLES examples per hunt, unless a
#: catalogue entry declares more; a wall-clock bound per hunt on top.
CI_SECONDS = 60.0
#: Controls run a smaller budget: under the Triton interpreter a kernel call takes tens to
#: hundreds of milliseconds.
CONTROL_EXAMPLES = 25
CONTROL_SECONDS = 30.0


@dataclass
class Row:
    """One hunt: a planted bug under one property, or a control under one property."""

    group: str  # "planted", or the control's kind: "oracle", "torch", "kernel", "knob off"
    target: str
    prop: str
    found: bool
    first_examples: int | None
    first_seconds: float | None
    examples: int
    seconds: float
    timed_out: bool
    kind: str | None
    shrunk: dict | None  # case.size() of the shrunk case
    source: str = ""


def _parser() -> argparse.ArgumentParser:
    from fuzz.properties import HUNT_EXAMPLES
    p = argparse.ArgumentParser(prog="python -m fuzz power", description=__doc__.splitlines()[0])
    p.add_argument("--examples", type=int, default=None, metavar="N",
                   help=f"generated cases per planted bug and property (default: each bug's CI budget, "
                        f"{HUNT_EXAMPLES} or the larger one its catalogue entry declares)")
    p.add_argument("--seconds", type=float, default=CI_SECONDS, metavar="S",
                   help=f"wall-clock bound per planted bug and property, shrinking included (default {CI_SECONDS:g})")
    p.add_argument("--control-examples", type=int, default=CONTROL_EXAMPLES, metavar="N",
                   help=f"cases per control target and property (default {CONTROL_EXAMPLES})")
    p.add_argument("--control-seconds", type=float, default=CONTROL_SECONDS, metavar="S",
                   help=f"bound per control target and property (default {CONTROL_SECONDS:g})")
    p.add_argument("--only", action="append", metavar="NAME", help="planted bug(s) to measure (repeatable; "
                   "default: all)")
    p.add_argument("--no-kernels", action="store_true", help="leave this project's kernels out of the controls")
    p.add_argument("--no-controls", action="store_true", help="measure the planted bugs only")
    p.add_argument("--seed", type=int, default=None, help="hunt seed (default: fuzz.properties.HUNT_SEED, the "
                   "one tests/quality pins)")
    p.add_argument("--device", choices=("cpu", "cuda"), default=None,
                   help="cpu: the Triton interpreter; cuda: a GPU (default: cuda when present)")
    p.add_argument("--out", default="fuzz-power", help="where power.json and power.md go (default fuzz-power)")
    return p


def _hunt(group: str, name: str, prop: str, target, examples: int, seconds: float, seed: int, device: str,
          source: str = "") -> Row:
    from fuzz import properties as fp
    h = fp.hunt(prop, target, max_examples=examples, seconds=seconds, seed=seed, device=device)
    return Row(group, name, prop, h.case is not None, h.first_examples,
               None if h.first_seconds is None else round(h.first_seconds, 3), h.examples, round(h.seconds, 3),
               h.timed_out, None if h.failure is None else h.failure.kind,
               None if h.case is None else h.case.size(), source)


def control_targets(kernels: bool) -> list[tuple[str, str, object]]:
    """(group, label, target or {name: Target}) for every control and property it runs."""
    from fuzz import properties as fp
    from fuzz import targets
    from fuzz.targets import ours
    groups = [("oracle", targets.ORACLES), ("torch", targets.REFERENCES)]
    if kernels and ours.available():
        groups.append(("kernel", targets.OURS))
    out = []
    for group, names in groups:
        for name in names:
            t = targets.get(name)
            out += [(group, name, prop, t) for prop in fp.properties_for(t)]
    if kernels and ours.available():
        paths = {name: targets.get(name) for name in ("route-fused", "route-unfused", "route-auto")}
        out.append(("kernel", "route-fused|unfused|auto", "paths", paths))
    return out


def measure(args) -> tuple[list[Row], list[Row]]:
    from fuzz import planted
    from fuzz import properties as fp
    seed = fp.HUNT_SEED if args.seed is None else args.seed
    chosen = [planted.BY_NAME[n] for n in args.only] if args.only else list(planted.PLANTED)
    bugs, controls = [], []
    for p in chosen:
        for prop in p.properties:
            examples = args.examples or p.examples or fp.HUNT_EXAMPLES
            bugs.append(_hunt("planted", p.name, prop, planted.target_for(p, prop), examples, args.seconds,
                              seed, args.device, p.source))
            print(_line(bugs[-1]), flush=True)
    if args.no_controls:
        return bugs, controls
    for group, name, prop, target in control_targets(not args.no_kernels):
        controls.append(_hunt(group, name, prop, target, args.control_examples, args.control_seconds, seed,
                              args.device))
        print(_line(controls[-1]), flush=True)
    for p in chosen:
        for prop in p.properties:
            controls.append(_hunt("knob off", f"{p.name}/fixed", prop, planted.target_for(p, prop, on=False),
                                  args.control_examples, args.control_seconds, seed, args.device))
    print(f"knob-off controls: {sum(r.found for r in controls if r.group == 'knob off')} failed of "
          f"{sum(r.group == 'knob off' for r in controls)}", flush=True)
    return bugs, controls


def summary(bugs: list[Row], controls: list[Row]) -> dict:
    by_bug: dict[str, list[Row]] = {}
    for r in bugs:
        by_bug.setdefault(r.target, []).append(r)
    found = [name for name, rows in by_bug.items() if all(r.found for r in rows)]
    firsts = [r.first_seconds for r in bugs if r.found]
    first_examples = [r.first_examples for r in bugs if r.found]
    return {
        "bugs": len(by_bug), "bugs_found": len(found),
        "recall": round(len(found) / len(by_bug), 4) if by_bug else None,
        "hunts": len(bugs), "hunts_found": sum(r.found for r in bugs),
        "missed": sorted(f"{r.target} [{r.prop}]" for r in bugs if not r.found),
        "false_positives": sum(r.found for r in controls), "controls": len(controls),
        "false_positive_targets": sorted(f"{r.target} [{r.prop}]: {r.kind}" for r in controls if r.found),
        "median_seconds_to_detection": round(statistics.median(firsts), 3) if firsts else None,
        "median_examples_to_detection": statistics.median(first_examples) if first_examples else None,
    }


def _size(s: dict | None) -> str:
    return "-" if not s else " ".join(f"{k}={v}" for k, v in s.items())


def _line(r: Row) -> str:
    status = "FOUND" if r.found else ("timed out" if r.timed_out else "missed")
    if r.group != "planted":
        status = "FAILED" if r.found else "ok"
    first = f"{r.first_examples:>4} {r.first_seconds:7.2f}s" if r.found else f"{'-':>4} {'-':>8}"
    return (f"{r.group:8s} {r.target:40s} {r.prop:8s} {status:9s} {first} {r.examples:>5} {r.seconds:7.2f}s  "
            f"{_size(r.shrunk):24s} {r.kind or ''}")


HEADER = (f"{'group':8s} {'target':40s} {'property':8s} {'status':9s} {'ex':>4} {'to find':>8} {'calls':>5} "
          f"{'total':>8}  {'shrunk case':24s} symptom")


def table(bugs: list[Row], controls: list[Row], s: dict, budget: str) -> str:
    lines = [budget, HEADER] + [_line(r) for r in bugs] + [_line(r) for r in controls if r.group != "knob off"]
    knob = [r for r in controls if r.group == "knob off"]
    if knob:
        lines.append(f"{'knob off':8s} {len(knob)} planted targets with the knob off: "
                     f"{sum(r.found for r in knob)} failed")
    lines += ["", f"recall: {s['bugs_found']}/{s['bugs']} planted bugs ({s['hunts_found']}/{s['hunts']} bug x property hunts)"
              + (f"; missed: {', '.join(s['missed'])}" if s["missed"] else ""),
              f"false positives: {s['false_positives']}/{s['controls']} controls"
              + (f" ({'; '.join(s['false_positive_targets'])})" if s["false_positive_targets"] else ""),
              f"median time to detection: {s['median_seconds_to_detection']} s "
              f"({s['median_examples_to_detection']} examples)"]
    return "\n".join(lines)


def markdown(bugs: list[Row], controls: list[Row], s: dict, budget: str) -> str:
    out = ["# Fuzzer power", "", budget, "",
           f"- recall: **{s['bugs_found']}/{s['bugs']}** planted bugs "
           f"({s['hunts_found']}/{s['hunts']} hunts)",
           f"- false positives: **{s['false_positives']}/{s['controls']}** controls",
           f"- median time to detection: **{s['median_seconds_to_detection']} s** "
           f"({s['median_examples_to_detection']} examples)", "",
           "| bug | property | found | examples to find | seconds to find | shrunk case | symptom | source |",
           "|---|---|---|---|---|---|---|---|"]
    for r in bugs:
        out.append(f"| `{r.target}` | {r.prop} | {'yes' if r.found else '**no**'} | {r.first_examples or '-'} | "
                   f"{r.first_seconds if r.found else '-'} | {_size(r.shrunk)} | {r.kind or ''} | {r.source} |")
    out += ["", "| control | property | result | examples | seconds |", "|---|---|---|---|---|"]
    for r in controls:
        out.append(f"| `{r.target}` ({r.group}) | {r.prop} | {'**FAILED**: ' + r.kind if r.found else 'ok'} | "
                   f"{r.examples} | {r.seconds} |")
    return "\n".join(out) + "\n"


def run(argv=None) -> int:
    from fuzz.cli import UsageError, _select_device
    args = _parser().parse_args(argv)
    if min(args.examples or 1, args.control_examples) < 1 or min(args.seconds, args.control_seconds) <= 0:
        raise UsageError("--examples / --control-examples must be >= 1 and --seconds / --control-seconds > 0")
    args.device = _select_device(args.device)
    from fuzz import planted
    from fuzz import properties as fp
    unknown = [n for n in args.only or () if n not in planted.BY_NAME]
    if unknown:
        raise UsageError(f"unknown planted bug(s) {', '.join(unknown)}; known: {', '.join(planted.BY_NAME)}")
    ci = {p.name: p.examples for p in planted.PLANTED if p.examples and (not args.only or p.name in args.only)}
    examples = f"{args.examples} examples" if args.examples else \
        "the CI budget (" + ", ".join([f"{fp.HUNT_EXAMPLES} examples"] + [f"{n} for {k}" for k, n in ci.items()]) + ")"
    budget = (f"budget per planted bug and property: {examples}, at most {args.seconds:g} s; per control "
              f"{args.control_examples} examples, at most {args.control_seconds:g} s; device {args.device}")
    print(budget + "\n" + HEADER, flush=True)
    started = time.monotonic()
    bugs, controls = measure(args)
    s = summary(bugs, controls)
    s["seconds"] = round(time.monotonic() - started, 1)
    print("\n" + table(bugs, controls, s, budget), flush=True)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "power.json").write_text(json.dumps({"budget": budget, "summary": s, "bugs": [asdict(r) for r in bugs],
                                                "controls": [asdict(r) for r in controls]}, indent=1))
    (out / "power.md").write_text(markdown(bugs, controls, s, budget))
    print(f"wrote {out / 'power.json'} and {out / 'power.md'} ({s['seconds']} s)", flush=True)
    return 0 if s["bugs_found"] == s["bugs"] and not s["false_positives"] else 1


def main(argv=None) -> int:
    return run(argv)


if __name__ == "__main__":
    sys.exit(main())
