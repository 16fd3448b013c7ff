"""Campaign throughput: examples/s per target, cold (empty Triton cache) and warm, and the
number of distinct kernel variants compiled (entries added to the Triton cache).

    python benchmarks/bench_campaign.py [--seconds 60] [--examples N] [--workers 1] [--device cpu|cuda] [--target NAME ...]

Each pass is a real ``python -m fuzz run`` (the campaign's own shape distribution) in a
subprocess with ``TRITON_CACHE_DIR`` pointing at a fresh directory (cold), then again at
the same directory (warm). Writes benchmarks/results/campaign-<device>.md and .json.

Time-bounded passes (the default) do not measure a warm campaign: the warm pass replays the
cold pass's seed faster, runs past where the cold pass stopped and compiles the shapes it
reaches next. ``--examples N`` bounds both passes by examples instead (``--seconds`` is then
only a cap): the same seed draws the same N examples twice, so the warm pass compiles
nothing (its "new variants" column says whether that held) and its rate is the steady state.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_TARGETS = ("gating", "sorting", "route-fused", "route-unfused", "route-auto")


def _variants(cache: Path) -> int:
    """Compiled kernels in a Triton cache: one metadata JSON per compiled variant."""
    return sum(1 for p in cache.rglob("*.json") if not p.name.startswith("__grp__"))


def _campaign(target: str, seconds: float, workers: int, device: str, cache: Path, out: Path,
              shape_classes=None, examples=None) -> dict:
    env = {**os.environ, "TRITON_CACHE_DIR": str(cache), "PYTHONPATH": str(ROOT)}
    before = _variants(cache)
    extra = [] if shape_classes is None else ["--shape-classes", str(shape_classes)]
    extra += [] if examples is None else ["--max-examples", str(examples)]
    run = subprocess.run([sys.executable, "-m", "fuzz", "run", "--target", target, "--time", str(seconds),
                          "--workers", str(workers), "--device", device, "--seed", "0", "--out", str(out), *extra],
                         capture_output=True, text=True, env=env, cwd=ROOT)
    summary = json.loads((out / "summary.json").read_text()) if (out / "summary.json").exists() else {}
    entries = summary.get("entries", [])
    examples = sum(e["examples"] for e in entries)
    # the runs' own time: the --time budget less the workers' start (imports, CUDA context)
    ran = max((e["seconds"] for e in entries), default=0.0) or seconds
    return {"target": target, "examples": examples, "per_s": examples / ran, "ran_s": round(ran, 1),
            "variants": _variants(cache) - before, "status": ",".join(e["status"] for e in entries) or
            f"no summary (exit {run.returncode}): {run.stderr[-300:]}"}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="each pass's time (with --examples: its cap)")
    parser.add_argument("--examples", type=int, default=None,
                        help="bound each pass by N examples per run instead of time: the warm pass replays the "
                             "cold pass's examples exactly (a steady-state warm rate)")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cuda")
    parser.add_argument("--target", action="append")
    parser.add_argument("--shape-classes", type=int, default=None, help="passed on (default: the campaign's)")
    args = parser.parse_args()
    rows = []
    for target in args.target or DEFAULT_TARGETS:
        with tempfile.TemporaryDirectory() as tmp:
            cache = Path(tmp) / "triton-cache"
            cache.mkdir()
            cold, warm = (_campaign(target, args.seconds, args.workers, args.device, cache, Path(tmp) / name,
                                    args.shape_classes, args.examples) for name in ("cold", "warm"))
        rows.append({"target": target, "cold": cold, "warm": warm})
        print(f"{target:16s} cold {cold['per_s']:8.1f}/s ({cold['variants']} variants)  "
              f"warm {warm['per_s']:8.1f}/s ({warm['variants']} new variants)  {cold['status']}", flush=True)
    card = "cpu-interpreter" if args.device == "cpu" else _card()
    out = ROOT / "benchmarks" / "results" / f"campaign-{card}"
    out.with_suffix(".json").write_text(json.dumps({"seconds": args.seconds, "examples": args.examples,
                                                    "workers": args.workers, "rows": rows}, indent=1) + "\n")
    bound = f"{args.seconds:g} s" if args.examples is None else f"{args.examples} examples (cap {args.seconds:g} s)"
    lines = [f"# Campaign throughput, {card}, {args.workers} worker(s), {bound} per pass", "",
             "| target | cold ex/s | variants compiled (cold) | warm ex/s | new variants (warm) |", "|---|---|---|---|---|"]
    lines += [f"| {r['target']} | {r['cold']['per_s']:.1f} | {r['cold']['variants']} | {r['warm']['per_s']:.1f} | "
              f"{r['warm']['variants']} |" for r in rows]
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    return 0


def _card() -> str:
    import torch
    return torch.cuda.get_device_name().lower().replace(" ", "-")


if __name__ == "__main__":
    sys.exit(main())
