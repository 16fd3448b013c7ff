"""The campaign runner: one long Hypothesis run per (target, property), bounded in time.

Each entry runs under ``@given`` with the campaign profile (random generation, an
example database so failures found once replay first next time), inside its target's
declared domain, at the wider ``CAMPAIGN_LIMITS`` sizes. ``--time`` bounds the whole
campaign, shrinking included: an entry's run stops at its share of the time, and a
shrink cut short keeps the smallest failing case seen so far. A failure of the target
(:class:`fuzz.properties.TargetFailure`) is a finding; any other exception is a harness
error and is reported as such, never as a bug in the target.
"""
from __future__ import annotations

import collections
import hashlib
import time
from dataclasses import dataclass, field
from pathlib import Path


class TimeUp(BaseException):
    """Raised inside the test body at the deadline: Hypothesis lets BaseExceptions through."""


@dataclass
class Entry:
    """One (target, property) of a campaign and what its run found."""

    label: str
    prop: str
    target: object  # a Target, or {name: Target} for the paths property
    examples: int = 0
    seconds: float = 0.0
    regimes: collections.Counter = field(default_factory=collections.Counter)
    failure: object = None  # the TargetFailure of the smallest failing case
    case: object = None
    harness_error: str | None = None
    repro: Path | None = None  # the bundle folder
    note: str = ""
    known: object = None  # the ledger entry this failure matches (fuzz/ledger.py)

    @property
    def one(self):
        return next(iter(self.target.values())) if isinstance(self.target, dict) else self.target

    @property
    def status(self) -> str:
        if self.harness_error:
            return "HARNESS ERROR"
        if self.failure is not None:
            return "FAILED" if self.known is None else f"KNOWN ({self.known.link})"
        return "ok" if self.examples else "NOT RUN"


def entry_seed(seed: int, label: str) -> int:
    """A per-entry seed derived from the campaign's: reproducible, distinct per entry."""
    return int.from_bytes(hashlib.sha256(f"{seed}:{label}".encode()).digest()[:8], "big")


def run_entry(entry: Entry, *, seconds: float, max_examples: int, seed: int | None, database, device: str,
              limits, shrink_seconds: float = 0.0, hard_deadline: float | None = None, on_example=None) -> None:
    """Fuzz one entry until ``max_examples``, a failure is shrunk, or ``seconds`` pass; once it
    fails, shrinking may go on ``shrink_seconds`` past that, never past ``hard_deadline``
    (time.monotonic()), where the smallest failing case so far is kept."""
    from hypothesis import given, settings
    from hypothesis import seed as hypothesis_seed

    from fuzz import properties as fp
    from fuzz.strategies import cases_for

    check = fp.PROPERTIES[entry.prop].check
    start = time.monotonic()
    hard = hard_deadline or start + seconds
    deadline = [min(start + seconds, hard)]
    first_signature = []

    @settings(settings.default, max_examples=max_examples, database=database, report_multiple_bugs=False,
              deadline=None)
    @given(cases_for(entry.prop, entry.one, limits))
    def fuzz_one(case):
        if time.monotonic() > deadline[0]:
            raise TimeUp
        entry.examples += 1
        entry.regimes.update(case.labels)
        if on_example is not None:
            on_example(entry)
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

    if seed is not None:
        fuzz_one = hypothesis_seed(entry_seed(seed, entry.label))(fuzz_one)
    try:
        fuzz_one()
    except TimeUp:
        pass
    except fp.TargetFailure:
        pass  # recorded above
    except Exception as exc:  # noqa: BLE001 -- our own code failed: say so, never blame the target
        if entry.failure is None:
            entry.harness_error = f"{type(exc).__name__}: {exc}"
    finally:
        entry.seconds = time.monotonic() - start
