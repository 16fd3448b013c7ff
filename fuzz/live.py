"""Live progress of a campaign: per target, examples, examples/s and failures so far.

Two renderers show the same numbers, built in one place (:func:`rows`): a table that
refreshes in place (``rich``, only on a terminal, outside CI and when it is installed: the
``live`` extra) and a plain line every :data:`PLAIN_SECONDS` otherwise (CI logs, pipes).
"""
from __future__ import annotations

import os
import sys
import time
from typing import NamedTuple

#: Seconds between two plain progress lines.
PLAIN_SECONDS = 10.0
#: Seconds between two refreshes of the table (progress arrives about once a second per worker).
TABLE_SECONDS = 0.5


class Row(NamedTuple):
    """One entry's numbers, as both renderers print them (strings: one formatting for both)."""

    target: str
    examples: str
    rate: str  # examples per second of the entry's own run
    status: str


def status_of(entry) -> str:
    """While it runs: waiting, running, FAILED (it is shrinking) or HARNESS ERROR; once its
    result is in, the closing table's status (fuzz.campaign.Entry.status)."""
    if entry.done or entry.harness_error:
        return entry.status
    if entry.failing or entry.failure is not None:
        return "FAILED"
    return "running" if entry.examples else "waiting"


def rows(entries) -> list[Row]:
    """The one home of the numbers both renderers show."""
    return [Row(e.label, str(e.examples), f"{e.examples / e.seconds if e.seconds else 0.0:.1f}", status_of(e))
            for e in entries]


def failures(entries) -> int:
    """Entries that failed so far (each entry stops at its first failure, then shrinks it)."""
    return sum(1 for e in entries if status_of(e).startswith(("FAILED", "KNOWN")))


def plain_line(entries, elapsed: float) -> str:
    """One progress line: the entries that started, and the failures so far."""
    parts = [f"{r.target} {r.examples} ({r.rate}/s) {r.status}" for r in rows(entries) if r.status != "waiting"]
    return f"[{elapsed:6.0f}s] failures {failures(entries)}; " + ", ".join(parts)


def table(entries, elapsed: float):
    """The refreshing table (a ``rich.table.Table``) of the same rows."""
    from rich.table import Table
    from rich.text import Text
    t = Table(title=f"fuzz run: {elapsed:.0f} s, failures {failures(entries)}", title_justify="left")
    t.add_column("target")
    t.add_column("examples", justify="right")
    t.add_column("ex/s", justify="right")
    t.add_column("status")
    for r in rows(entries):
        # Text, not str: rich reads "batch[gating]" as markup and drops "[gating]"
        t.add_row(*map(Text, r), style="bold red" if r.status.startswith(("FAILED", "HARNESS")) else None)
    return t


class PlainProgress:
    """A plain line every ``every`` seconds (the first after ``every``, like a heartbeat)."""

    def __init__(self, file=None, every: float = PLAIN_SECONDS):
        self.file, self.every, self.last = file or sys.stdout, every, time.monotonic()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def update(self, entries, elapsed: float) -> None:
        if time.monotonic() - self.last >= self.every:
            self.last = time.monotonic()
            print(plain_line(entries, elapsed), file=self.file, flush=True)


class TableProgress:
    """The table, redrawn in place (``rich.live.Live``), gone once the run ends: the closing
    summary that follows holds the same numbers."""

    def __init__(self, console=None, every: float = TABLE_SECONDS):
        from rich.live import Live
        self.every, self.last = every, 0.0
        self.live = Live(console=console, auto_refresh=False, transient=True)

    def __enter__(self):
        self.live.start()
        return self

    def __exit__(self, *exc):
        self.live.stop()
        return False

    def update(self, entries, elapsed: float) -> None:
        if time.monotonic() - self.last >= self.every:
            self.last = time.monotonic()
            self.live.update(table(entries, elapsed), refresh=True)


class NoProgress(PlainProgress):
    """``--quiet``: nothing while it runs."""

    def update(self, entries, elapsed: float) -> None:
        pass


def _rich_available() -> bool:
    try:
        import rich.live  # noqa: F401
        import rich.table  # noqa: F401
    except ImportError:
        return False
    return True


def in_ci() -> bool:
    """``CI`` set, as CI services do (``CI=false`` or ``0`` counts as unset)."""
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false")


def progress_for(quiet: bool = False, stream=None):
    """The renderer for this run: none when quiet; the table on a terminal outside CI (``CI``
    set) when rich is installed; the plain line otherwise."""
    stream = stream or sys.stdout
    if quiet:
        return NoProgress(stream)
    if stream.isatty() and not in_ci() and _rich_available():
        from rich.console import Console
        return TableProgress(Console(file=stream))
    return PlainProgress(stream)
