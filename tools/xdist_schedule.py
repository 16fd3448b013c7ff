"""Predict a parallel pytest run's wall time from a measured one: replay pytest-xdist's
``load`` scheduler over the tests in their collection order, with each test's duration
taken from a ``pytest --durations=0`` report (setup + call + teardown).

    pytest --collect-only -q > order.txt          # the order tests/conftest.py sorts them in
    python tools/xdist_schedule.py durations.txt order.txt --workers 16 --maxschedchunk 1 2 0

The GPU suite is compile-bound and its wall time is its slowest worker's: this says which
--maxschedchunk and order keep one worker from holding a run of long tests (docs/notes.md,
v10). Durations move between tests in another order (a kernel compiles in whichever test
first needs it); ``--jitter`` perturbs them to show how robust a setting is.
"""
from __future__ import annotations

import argparse
import heapq
import random
import re
import sys

DURATION_LINE = re.compile(r"^([0-9.]+)s (?:call|setup|teardown)\s+(\S+)")


def durations(report: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for line in open(report):
        m = DURATION_LINE.match(line)
        if m:
            out[m.group(2)] = out.get(m.group(2), 0.0) + float(m.group(1))
    return out


def simulate(times: list[float], workers: int, maxschedchunk: int | None, start: float = 0.0) -> float:
    """The wall time of xdist 3.x ``LoadScheduling`` (scheduler/load.py) over ``times`` in order:
    an initial chunk per worker, then refills when a worker's queue runs low. A worker holds
    at least two tests (pytest runs a test only once it knows the next one)."""
    chunk = len(times) if not maxschedchunk else maxschedchunk
    pending = list(range(len(times)))
    first = max(min(len(times) // workers // 4, chunk), 2)
    queues = []
    for _ in range(workers):
        queues.append(pending[:first])
        del pending[:first]
    events = [(start + times[q[0]], w) for w, q in enumerate(queues) if q]
    heapq.heapify(events)
    end = start
    while events:
        now, w = heapq.heappop(events)
        done = queues[w].pop(0)
        end = max(end, now)
        queue = queues[w]
        low, high = max(2, len(pending) // workers // 4), max(2, len(pending) // workers // 2)
        if pending and len(queue) < low and not (times[done] >= 0.1 and len(queue) >= 2):
            send = min(high - len(queue), max(2 - len(queue), chunk))
            queue += pending[:send]
            del pending[:send]
        if queue:
            heapq.heappush(events, (now + times[queue[0]], w))
    return end


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("durations", help="a pytest --durations=0 report")
    p.add_argument("order", help="pytest --collect-only -q output (one node id per line)")
    p.add_argument("--workers", type=int, default=16)
    p.add_argument("--maxschedchunk", type=int, nargs="+", default=[1, 2, 0], help="0: xdist's default (no cap)")
    p.add_argument("--start", type=float, default=20.0, help="seconds before the first test starts")
    p.add_argument("--jitter", type=float, default=0.4, help="perturb each duration by up to this fraction")
    args = p.parse_args()
    measured = durations(args.durations)
    order = [line.strip() for line in open(args.order) if "::" in line]
    times = [measured.get(t, 0.0) for t in order]
    print(f"{len(order)} tests, {sum(times):.0f} s in all, longest {max(times):.0f} s; "
          f"bound max(sum / workers, longest) + start = {max(sum(times) / args.workers, max(times)) + args.start:.0f} s")
    for chunk in args.maxschedchunk:
        runs = [simulate(times, args.workers, chunk, args.start)]
        for seed in range(3):
            rng = random.Random(seed)
            runs.append(simulate([t * rng.uniform(1 - args.jitter, 1 + args.jitter) for t in times],
                                 args.workers, chunk, args.start))
        print(f"--maxschedchunk {chunk or 'default'}: {runs[0]:.0f} s (jittered {', '.join(f'{r:.0f}' for r in runs[1:])})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
