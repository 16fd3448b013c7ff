"""Time the NumPy oracle's ``route`` (a script, not a test).

    /work/main/.venv/bin/python benchmarks/bench_oracle.py [--T 4096] [--E 256] [--K 8] [--U 32] [--reps 21]

Inputs are generated once, outside the timed region; prints the median and
the min over ``--reps`` calls. Target: median under 50 ms at T=4096, E=256, K=8.
"""
from __future__ import annotations

import argparse
import pathlib
import statistics
import sys
import time

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from oracles import RouteResult, capacity, check_route, route  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--T", type=int, default=4096)
    ap.add_argument("--E", type=int, default=256)
    ap.add_argument("--K", type=int, default=8)
    ap.add_argument("--U", type=int, default=32)
    ap.add_argument("--reps", type=int, default=21)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    logits = np.random.default_rng(args.seed).standard_normal((args.T, args.E), dtype=np.float32)
    route(logits, args.K, unit_size=args.U)  # warm-up
    times = []
    for _ in range(args.reps):
        t0 = time.perf_counter()
        result = route(logits, args.K, unit_size=args.U)
        times.append(time.perf_counter() - t0)
    rows, blocks = capacity(args.T, args.K, args.E, args.U)
    bufs = [np.zeros(rows, np.int32), np.zeros(rows, np.float32), np.zeros(blocks, np.int32)]
    for buf, valid in zip(bufs, result[2:5]):
        buf[:valid.size] = valid
    full = RouteResult(result.topk_weights, result.topk_ids, *bufs, result.num_valid_ids)
    t0 = time.perf_counter()
    report = check_route(full, logits, args.K, unit_size=args.U)
    t_check = time.perf_counter() - t0
    assert report.ok, str(report)
    label = f"T{args.T}-E{args.E}-K{args.K}-U{args.U}"
    print(f"route {label}: median {statistics.median(times) * 1e3:.2f} ms, min {min(times) * 1e3:.2f} ms "
          f"over {args.reps} reps; check_route on a correct result {t_check * 1e3:.2f} ms")


if __name__ == "__main__":
    main()
