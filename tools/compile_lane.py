"""Compile lane: build every production kernel variant for AMD and NVIDIA targets on a
machine without a GPU, and fail on what would only fail on the GPU.

    python tools/compile_lane.py --out DIR                   # every code path and size extreme (~5 min, 2 cores)
    python tools/compile_lane.py --out DIR --sample values   # every constexpr value (~160 variants)
    python tools/compile_lane.py --out DIR --full            # every variant enumerated (thousands: hours)
    python tools/compile_lane.py --out DIR --arch gfx942 --arch sm_90 --source models --tokens 1,17

Variants are captured from the host code (tools/lane/capture.py): the public calls run on
meta tensors with their launches recorded, so the constexprs, warps and specialisations
are the ones production compiles. Writes DIR/compile_report.md and .json; exits 1 on a
compile error, LDS over an architecture's limit or a spill in a hot kernel
(tools/lane/policy.py), 0 otherwise (warnings included).
"""
from __future__ import annotations

import argparse
import importlib
import multiprocessing
import os
import sys
import time
import warnings
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_FUZZ_EXAMPLES = 300  # per strategy (gating, sorting, route)


def _shard(text):
    try:
        index, count = map(int, text.split("/"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"--shard must be I/N with integers, got {text!r}") from None
    if not 0 <= index < count:
        raise argparse.ArgumentTypeError(f"--shard I/N needs 0 <= I < N, got {text!r}")
    return index, count


def _parse(argv):
    from tools.lane import sample, sources, targets
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--out", type=Path, required=True, help="directory for compile_report.md / .json")
    p.add_argument("--sample", choices=sample.LEVELS, default="paths",
                   help="which variants to compile (tools/lane/sample.py); default: paths")
    p.add_argument("--full", action="store_const", dest="sample", const="full", help="same as --sample full")
    p.add_argument("--arch", action="append", choices=list(targets.ARCHS), help="repeatable; default: all")
    p.add_argument("--source", action="append", choices=[*sources.SOURCES, "none"],
                   help="where variants come from, repeatable; default: all")
    p.add_argument("--extra", action="append", default=[], metavar="MODULE:FUNCTION",
                   help="more launches: FUNCTION(recorder) records them (e.g. tests' planted kernels)")
    p.add_argument("--tokens", help="seed-model token counts, e.g. 1,17 (default 1..16384)")
    p.add_argument("--fuzz-examples", type=int, default=DEFAULT_FUZZ_EXAMPLES, help="cases drawn per strategy")
    p.add_argument("--shard", type=_shard, metavar="I/N",
                   help="every N-th selected variant from the I-th (0 <= I < N): N machines share the work")
    p.add_argument("--max-variants", type=int, help="compile at most this many (first of the sample's order)")
    p.add_argument("--jobs", type=int, default=os.cpu_count(), help="compile processes (default: every core)")
    return p.parse_args(argv)


def enumerate_variants(args):
    """-> (catalog, {source: variants it added})."""
    from tools.lane import sources
    from tools.lane.capture import Catalog
    catalog = Catalog()
    recorder = sources.Recorder(catalog)
    added = {}
    names = [s for s in (args.source or sources.SOURCES) if s != "none"]
    tokens = [int(t) for t in args.tokens.split(",")] if args.tokens else sources.ALL_TOKENS
    options = {"models": dict(tokens=tokens), "fuzz": dict(examples=args.fuzz_examples), "constructs": {}}
    for name in names:
        before = len(catalog)
        sources.SOURCES[name](recorder, **options[name])
        added[name] = len(catalog) - before
    for spec in args.extra:
        module, function = spec.split(":")
        before = len(catalog)
        getattr(importlib.import_module(module), function)(recorder)
        added[spec] = len(catalog) - before
    return catalog, added


def compile_all(variants, archs, jobs):
    from tools.lane import build, targets
    work = [build.Job(v.id, v.kernel.module, v.name, v.specs[targets.ARCHS[a].family], v.options, a)
            for v in variants for a in archs]
    rows, step = [], max(25, len(work) // 10)
    # fork: the workers inherit the imported kernels and sys.path; nothing here touches a GPU
    with ProcessPoolExecutor(max_workers=jobs, mp_context=multiprocessing.get_context("fork")) as pool:
        for i, row in enumerate(pool.map(build.compile_job, work, chunksize=2), 1):
            rows.append(row)
            if i % step == 0 or i == len(work):
                print(f"  compiled {i}/{len(work)}", file=sys.stderr, flush=True)
    return rows


def main(argv=None) -> int:
    # @triton.jit must build compilable kernels: the interpreter's stand-ins can't be compiled
    os.environ.pop("TRITON_INTERPRET", None)
    sys.path.insert(0, str(REPO))
    # Triton 3.9 notes that its FP-fusion default will change; the lane compiles with the
    # default, as production does (the filter is inherited by the forked workers)
    warnings.filterwarnings("ignore", message="TRITON_DEFAULT_FP_FUSION")
    import triton

    from tools.lane import policy, report, sample, targets
    args = _parse(argv)
    archs = args.arch or list(targets.ARCHS)
    start = time.perf_counter()
    catalog, added = enumerate_variants(args)
    variants = sample.select(catalog, args.sample)
    if args.shard:
        index, count = args.shard
        variants = variants[index::count]
    variants = variants[: args.max_variants]
    print(f"{len(catalog)} variants enumerated ({added}) in {time.perf_counter() - start:.0f} s; compiling "
          f"{len(variants)} for {len(archs)} architectures", file=sys.stderr, flush=True)
    rows = compile_all(variants, archs, args.jobs)
    by_id = {v.id: v for v in variants}
    findings = [f for row in rows for f in policy.judge(by_id[row["variant"]], row)]
    meta = {"command": " ".join(["python tools/compile_lane.py", *(argv if argv is not None else sys.argv[1:])]),
            "triton": triton.__version__, "archs": archs, "sample": args.sample, "shard": args.shard,
            "variants_enumerated": len(catalog), "enumerated_by_source": added, "jobs": args.jobs,
            "seconds": time.perf_counter() - start}
    report.write(args.out, meta, variants, rows, findings)
    failed = [f for f in findings if f.severity == "fail"]
    for f in failed[: report.MAX_LISTED]:
        detail = "".join(f"\n    {line}" for line in f.detail.splitlines())
        print(f"FAIL {f.rule}: {f.message}{detail}", file=sys.stderr)
    print(f"{'FAIL' if failed else 'PASS'}: {len(failed)} failures, {len(findings) - len(failed)} warnings; "
          f"{args.out / 'compile_report.md'} ({time.perf_counter() - start:.0f} s)", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
