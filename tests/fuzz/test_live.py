"""The campaign's live progress (fuzz/live.py): both renderers show the numbers of one
function, the plain line in CI logs and pipes, the rich table on a terminal."""
import io
import queue
import re

import pytest

from fuzz import cli, live
from fuzz.campaign import Entry

#: What the parent knows mid-run: running, failed (shrinking), done, not started.
EXPECTED = [("gating", "120", "12.0", "running"), ("sorting", "7", "3.5", "FAILED"),
            ("batch[route-fused]", "50", "12.5", "ok"), ("paths", "0", "0.0", "waiting")]


def _entries():
    return [Entry("gating", "gating", None, examples=120, seconds=10.0),
            Entry("sorting", "sorting", None, examples=7, seconds=2.0, failing=True),
            Entry("batch[route-fused]", "batch", None, examples=50, seconds=4.0, done=True),
            Entry("paths", "paths", None)]


def test_rows_hold_examples_rate_and_status():
    assert [tuple(r) for r in live.rows(_entries())] == EXPECTED
    assert live.failures(_entries()) == 1


def test_the_plain_renderer_prints_the_rows_that_started():
    out = io.StringIO()
    live.PlainProgress(out, every=0).update(_entries(), 42.0)
    assert out.getvalue() == ("[    42s] failures 1; gating 120 (12.0/s) running, sorting 7 (3.5/s) FAILED, "
                              "batch[route-fused] 50 (12.5/s) ok\n")


def test_the_plain_renderer_waits_its_interval():
    out = io.StringIO()
    progress = live.PlainProgress(out, every=3600)
    progress.update(_entries(), 1.0)
    assert out.getvalue() == ""


def _plain_text(ansi: str) -> str:
    return re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", ansi)


def test_the_rich_table_has_the_same_rows():
    pytest.importorskip("rich")
    from rich.console import Console
    table = live.table(_entries(), 42.0)
    assert [c.header for c in table.columns] == ["target", "examples", "ex/s", "status"]
    assert list(zip(*(list(map(str, c.cells)) for c in table.columns))) == EXPECTED
    console = Console(file=io.StringIO(), force_terminal=True, width=100)
    console.print(table)
    lines = _plain_text(console.file.getvalue()).splitlines()
    assert "failures 1" in lines[0]
    for row in EXPECTED:  # each row on its own line, cells in order
        assert any(re.search(r"\s+".join(map(re.escape, row)), line.replace("│", " ")) for line in lines), row


def test_the_live_table_draws_on_a_terminal():
    pytest.importorskip("rich")
    from rich.console import Console
    console = Console(file=io.StringIO(), force_terminal=True, width=100)
    with live.TableProgress(console, every=0) as progress:
        progress.update(_entries(), 42.0)
    assert "batch[route-fused]" in _plain_text(console.file.getvalue())


class _Stream(io.StringIO):
    def __init__(self, tty: bool):
        super().__init__()
        self.tty = tty

    def isatty(self):
        return self.tty


@pytest.mark.parametrize(("tty", "ci", "quiet", "rich", "expected"), [
    (False, "", False, True, live.PlainProgress),  # a pipe or a log file
    (True, "true", False, True, live.PlainProgress),  # a CI runner with a pseudo-terminal
    (True, "", False, False, live.PlainProgress),  # rich not installed
    (True, "", True, True, live.NoProgress),  # --quiet
    (True, "false", False, True, live.TableProgress),
])
def test_the_renderer_follows_the_terminal_ci_and_quiet(monkeypatch, tty, ci, quiet, rich, expected):
    if rich:
        pytest.importorskip("rich")
    monkeypatch.setenv("CI", ci)
    monkeypatch.setattr(live, "_rich_available", lambda: rich)
    assert type(live.progress_for(quiet, _Stream(tty))) is expected


class _Recorder:
    def __init__(self):
        self.seen = []

    def update(self, entries, elapsed):
        self.seen.append([tuple(r) for r in live.rows(entries)])


class _Gone:
    def is_alive(self):
        return False


def test_worker_messages_reach_the_rows():
    entries = [Entry("gating", "gating", None), Entry("sorting", "sorting", None)]
    q = queue.Queue()
    q.put(("progress", (0, 0), 30, 3.0, False))  # 30 examples in its first 3 s
    q.put(("progress", (1, 0), 4, 2.0, True))
    q.put(("done", (0, 0), {"examples": 40, "seconds": 4.0, "regimes": {}, "harness_error": None, "case": None,
                       "failure": None}))
    now = iter([100.0, 100.0, 100.0,  # gating's first report: its run began at 97
                103.0, 103.0, 103.0, 103.0,  # sorting's: began at 101; gating 6 s in, an example in flight
                104.0, 104.0])  # gating done
    progress = _Recorder()
    cli._collect(q, [_Gone()], entries, {(0, 0), (1, 0)}, 0.0, progress, clock=lambda: next(now, 105.0))
    assert progress.seen[:3] == [
        [("gating", "30", "10.0", "running"), ("sorting", "0", "0.0", "waiting")],
        [("gating", "30", "5.0", "running"), ("sorting", "4", "2.0", "FAILED")],
        [("gating", "40", "10.0", "ok"), ("sorting", "4", "1.3", "FAILED")],
    ]
    assert entries[1].harness_error == "its worker process died"  # the queue ran dry with sorting pending
