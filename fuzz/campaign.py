"""The campaign runner: one long Hypothesis run per (target, property), bounded in time.

Each entry runs under ``@given`` with the campaign profile (random generation, an
example database so failures found once replay first next time), inside its target's
declared domain, at the wider ``CAMPAIGN_LIMITS`` sizes; each case reports its distance to
the boundaries the target declares (:mod:`fuzz.steering`), so the targeted phase climbs
toward them. ``--time`` bounds the whole
campaign, shrinking included: an entry's run stops at its share of the time, and a
shrink cut short keeps the smallest failing case seen so far. A failure of the target
(:class:`fuzz.properties.TargetFailure`) is a finding; any other exception is a harness
error and is reported as such, never as a bug in the target.
"""
from __future__ import annotations

import collections
import hashlib
import itertools
import time
from dataclasses import dataclass, field
from pathlib import Path


#: Examples per Hypothesis run of an entry (Hypothesis's own default): an entry runs round after
#: round until its time is up. Hypothesis starts the targeted phase (``hypothesis.target``,
#: fuzz.steering) once half a run's max_examples have run, so one time-bounded run with a
#: huge max_examples would never reach it.
ROUND_EXAMPLES = 100


class TimeUp(BaseException):
    """Raised inside the test body at the deadline: Hypothesis lets BaseExceptions through."""


@dataclass
class Entry:
    """One (target, property) of a campaign and what its run found."""

    label: str
    prop: str
    target: object  # a Target, or a TargetGroup for the paths property
    examples: int = 0
    seconds: float = 0.0
    regimes: collections.Counter = field(default_factory=collections.Counter)
    failure: object = None  # the TargetFailure of the smallest failing case
    case: object = None
    harness_error: str | None = None
    repro: Path | None = None  # the bundle folder
    note: str = ""
    known: object = None  # the ledger entry this failure matches (fuzz/ledger.py)
    stopped: bool = False  # the campaign was stopped (a signal) before this entry ran
    classes: list = field(default_factory=list)  # the shape classes its runs drew from (fuzz/shapes.py)
    # what the parent knows while the entry runs (the failure itself comes with the result)
    failing: bool = False
    done: bool = False

    @property
    def one(self):
        """The target (a Target, or the TargetGroup of the paths property)."""
        return self.target

    @property
    def status(self) -> str:
        if self.harness_error:
            return "HARNESS ERROR"
        if self.failure is not None:
            return "FAILED" if self.known is None else f"KNOWN ({self.known.link})"
        if self.examples:
            return "ok"
        return "STOPPED before it ran" if self.stopped else "NOT RUN"


#: Set by a signal handler (SIGINT / SIGTERM) or the parent: every running test body stops.
STOP = None


def _stopping() -> bool:
    return STOP is not None and STOP.is_set()


def entry_seed(seed: int, label: str) -> int:
    """A per-entry seed derived from the campaign's: reproducible, distinct per entry."""
    return int.from_bytes(hashlib.sha256(f"{seed}:{label}".encode()).digest()[:8], "big")


def replica_label(label: str, replica: int) -> str:
    """What seeds replica ``replica`` of an entry (replica 0: the entry itself)."""
    return label if replica == 0 else f"{label}@{replica}"


def slots(entries: int, workers: int) -> list[tuple[int, int]]:
    """(entry, replica) runs: one per entry, and with more workers than entries, every entry
    again on the spare workers (another seed, other shape classes), so no worker idles."""
    return [(w % entries, w // entries) for w in range(max(entries, workers))]


def run_entry(entry: Entry, *, seconds: float, max_examples: int, seed: int | None, database, device: str,
              limits, shrink_seconds: float = 0.0, hard_deadline: float | None = None, on_example=None,
              shape_classes: int = 0, replica: int = 0) -> None:
    """Fuzz one entry until ``max_examples``, a failure is shrunk, or ``seconds`` pass; once it
    fails, shrinking may go on ``shrink_seconds`` past that, never past ``hard_deadline``
    (time.monotonic()), where the smallest failing case so far is kept. ``shape_classes``:
    draw from that many seeded classes (fuzz/shapes.py; 0 draws every shape freely)."""
    import random

    from hypothesis import Verbosity, given, settings
    from hypothesis import seed as hypothesis_seed

    from fuzz import properties as fp
    from fuzz.shapes import draw_classes
    from fuzz.steering import steer
    from fuzz.strategies import cases_for, limits_for

    check = fp.PROPERTIES[entry.prop].check
    start = time.monotonic()
    hard = hard_deadline or start + seconds
    deadline = [min(start + seconds, hard)]
    first_signature = []
    steering = limits_for(entry.one.convention, limits)  # the boundaries the target declares, at these sizes

    def fuzz_one(case):
        if time.monotonic() > deadline[0] or _stopping():
            raise TimeUp
        entry.examples += 1
        entry.seconds = time.monotonic() - start  # so far: the live rate is this entry's own
        entry.regimes.update(case.labels)
        if on_example is not None:
            on_example(entry)
        steer(case, steering)
        try:
            check(entry.target, case, device)
        except fp.TargetFailure as failure:
            # Shrinking only replays smaller cases: the last failure of the first kind is the best so far.
            if not first_signature:
                first_signature.append(failure.signature)
                deadline[0] = min(max(deadline[0], time.monotonic() + shrink_seconds), hard)
            if failure.signature == first_signature[0]:
                entry.failure, entry.case = failure, case
            raise

    # one database key per entry (the test function is the same for all of them): replicas share it
    fuzz_one._hypothesis_internal_add_digest = entry.label.encode()
    label = replica_label(entry.label, replica)
    if shape_classes:
        rng = random.Random(None if seed is None else entry_seed(seed, f"classes:{label}"))
        entry.classes = draw_classes(steering, shape_classes, rng)
    strategy = cases_for(entry.prop, entry.one, limits, entry.classes)
    try:
        for r in itertools.count():
            budget = min(ROUND_EXAMPLES, max_examples - entry.examples)
            if budget <= 0:
                break
            before = entry.examples
            # quiet: the campaign reports through its summary and bundles, not Hypothesis's own prints
            test = settings(settings.default, max_examples=budget, database=database, report_multiple_bugs=False,
                            deadline=None, verbosity=Verbosity.quiet)(given(strategy)(fuzz_one))
            if seed is not None:
                test = hypothesis_seed(entry_seed(seed, label if r == 0 else f"{label}#{r}"))(test)
            test()
            if entry.examples - before < budget:
                break  # Hypothesis ran out of distinct cases: another round would repeat them
    except TimeUp:
        pass
    except fp.TargetFailure:
        pass  # recorded above
    except Exception as exc:  # noqa: BLE001 -- our own code failed: say so, never blame the target
        if entry.failure is None:
            entry.harness_error = f"{type(exc).__name__}: {exc}"
    finally:
        entry.seconds = time.monotonic() - start


# --------------------------------------------------------------------------- workers


def database(spec: str):
    """An example database: a directory, or ``redis://host:port/N`` (Hypothesis's Redis
    backend, ``pip install hypothesis[redis]``) shared by every worker on every machine."""
    from hypothesis.database import DirectoryBasedExampleDatabase
    if spec.startswith(("redis://", "rediss://", "unix://")):
        import redis
        from hypothesis.extra.redis import RedisExampleDatabase
        return RedisExampleDatabase(redis.Redis.from_url(spec))
    return DirectoryBasedExampleDatabase(spec)


def result_of(entry: Entry) -> dict:
    """What a worker sends back for an entry (picklable; the target is rebuilt by name)."""
    failure = entry.failure
    return {"examples": entry.examples, "seconds": entry.seconds, "regimes": dict(entry.regimes),
            "harness_error": entry.harness_error, "case": entry.case, "classes": list(map(str, entry.classes)),
            "failure": None if failure is None else (failure.target, failure.prop, failure.report)}


def apply_result(entry: Entry, result: dict) -> None:
    """Add one run's result (an entry's replicas each send one): examples and regimes add
    up, the first failure and the first harness error are kept."""
    from fuzz.properties import TargetFailure
    entry.examples += result["examples"]
    entry.seconds = max(entry.seconds, result["seconds"])
    entry.regimes.update(result["regimes"])
    entry.classes += result.get("classes", [])
    entry.harness_error = entry.harness_error or result["harness_error"]
    if result["failure"] is not None and entry.failure is None:
        entry.case = result["case"]
        entry.failure = TargetFailure(*result["failure"], entry.case)


def worker(index: int, options: dict, queue, stop) -> None:
    """One worker process: its share of the entries (every n-th), one long run each, results
    and progress on ``queue``. ``options``: what fuzz.cli parsed, plus ``deadline`` (time.time())."""
    import os
    import signal
    global STOP
    STOP = stop
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides; it sets ``stop``
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    if options["devices"]:
        os.environ["CUDA_VISIBLE_DEVICES"] = options["devices"][index]
        os.environ["HIP_VISIBLE_DEVICES"] = options["devices"][index]
    if options["device"] == "cpu":
        from fuzz import interpreter
        interpreter.select()
    if options["workers"] > 1:
        # one thread each: N workers of torch's default N threads would oversubscribe the cores
        for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
            os.environ[name] = "1"
        import torch
        torch.set_num_threads(1)
    from fuzz import settings as fs
    from fuzz.cli import entries_for
    fs.load("campaign")
    db = database(options["db"])
    entries = entries_for(options["targets"], options["convention"])
    mine = slots(len(entries), options["workers"])[index::options["workers"]]
    last = [0.0]

    for k, (i, replica) in enumerate(mine):
        entry = entries[i]

        def progress(entry, slot=(i, replica)):
            now = time.monotonic()
            if now - last[0] > 1.0:
                last[0] = now
                queue.put(("progress", slot, entry.examples, entry.seconds, entry.failure is not None))

        remaining = options["deadline"] - time.time()
        if remaining > 0 and not _stopping():
            run_entry(entry, seconds=remaining / (len(mine) - k), max_examples=options["max_examples"],
                      seed=options["seed"], database=db, device=options["device"], limits=options["limits"],
                      shrink_seconds=options["shrink_seconds"], hard_deadline=time.monotonic() + remaining,
                      on_example=progress, shape_classes=options["shape_classes"], replica=replica)
        queue.put(("done", (i, replica), result_of(entry)))
