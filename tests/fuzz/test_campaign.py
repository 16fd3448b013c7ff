"""The main job end to end on a user's own kernel (tests/fuzz/conftest.py): ``python -m fuzz
run --target module:function`` finds, shrinks and bundles a planted bug, the bundle replays
and guards the suite, ``pytest --moe-target`` does the same from pytest; the campaign
stops cleanly on a signal, reports a target that ran nothing, knows ledger entries, and
shares its example database across campaigns through a real redis-server."""
import json
import os
import queue
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
USER_TARGET = "user_sorter:moe_align_block_size"  # tests/fixtures/user_kernels (tests/fuzz/conftest.py)

pytestmark = pytest.mark.slow


@pytest.fixture
def fuzz(user_env):
    """``fuzz(*args, version=, cwd=)``: ``python -m fuzz run`` with the user's kernel importable."""
    def run(*args, version="fixed", cwd, timeout=300):
        return subprocess.run([sys.executable, "-m", "fuzz", "run", *args], capture_output=True, text=True,
                              env=user_env(version), cwd=cwd, timeout=timeout)
    return run


def _user(*args):
    return ("--target", USER_TARGET, "--convention", "vllm", *args)


def test_a_planted_bug_gives_one_small_bundle_that_replays_and_guards_the_suite(tmp_path, fuzz, user_env):
    started = time.monotonic()
    run = fuzz(*_user("--time", "60", "--seed", "2", "--out", "out"), version="buggy", cwd=tmp_path)
    assert run.returncode == 1, run.stdout + run.stderr
    assert time.monotonic() - started < 90, "found within the minute (plus start-up)"
    bundles = sorted((tmp_path / "out" / "repros").glob("*/bundle.json"))
    assert len(bundles) == 1, "one bundle per distinct failure, not one per example"
    folder = bundles[0].parent
    size = json.loads((folder / "case.json").read_text())["size"]
    # The range check drops expert E-1: one token on one expert shows it.
    assert size["T"] <= 2 and size["E"] <= 2 and size["K"] <= 2, size
    for version, code in (("buggy", 1), ("fixed", 0)):
        script = subprocess.run([sys.executable, "repro.py"], capture_output=True, text=True, env=user_env(version),
                                cwd=folder, timeout=120)
        replay = subprocess.run([sys.executable, "-m", "fuzz", "replay", str(folder)], capture_output=True,
                                text=True, env=user_env(version), cwd=tmp_path, timeout=120)
        assert (script.returncode, replay.returncode) == (code, code), script.stdout + replay.stdout
    regressions = tmp_path / "regressions"
    shutil.copytree(folder, regressions / folder.name)
    assert str(ROOT) not in (folder / "repro.py").read_text(), "no path of the reporter's machine in a repro"
    alone = subprocess.run([sys.executable, "repro.py"], capture_output=True, text=True, cwd=folder, timeout=120,
                           env={**os.environ, "PYTHONPATH": str(ROOT)})  # the user's module is not importable
    assert alone.returncode == 2 and "cannot run" in alone.stdout, alone.stdout + alone.stderr
    for version, code in (("buggy", 1), ("fixed", 0)):
        suite = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                                str(ROOT / "tests" / "regressions"), "--regressions-dir", str(regressions)],
                               capture_output=True, text=True, env=user_env(version), cwd=ROOT, timeout=300)
        assert suite.returncode == code, suite.stdout[-2000:]


def test_the_fixed_user_kernel_passes_a_short_run(tmp_path, fuzz):
    run = fuzz(*_user("--time", "8", "--out", "out"), cwd=tmp_path)
    assert run.returncode == 0 and " ok" in run.stdout, run.stdout + run.stderr


@pytest.mark.parametrize(("args", "message"), [
    (["--target", "no_such_module:fn"], "cannot import 'no_such_module'"),
    (["--target", "user_sorter:nope"], "has no function 'nope'"),
    (["--target", "not a target"], "unknown target"),
    (["--target", USER_TARGET, "--convention", "missing.toml"], "ck, vllm or a .toml"),
    (["--time", "0"], "--time must be > 0"),
    (["--devices", "a,b"], "--devices takes GPU indices"),
    (["--shape-classes", "-1"], "--shape-classes must be >= 0"),
])
def test_bad_options_are_one_line_errors_with_exit_2(tmp_path, fuzz, args, message):
    run = fuzz(*args, "--out", str(tmp_path), cwd=tmp_path, timeout=120)
    assert run.returncode == 2, run.stdout + run.stderr
    assert message in run.stderr and len(run.stderr.strip().splitlines()) == 1, run.stderr


@pytest.mark.parametrize(("version", "code"), [("buggy", 1), ("fixed", 0)])
def test_pytest_moe_target_option(user_env, version, code):
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                          str(ROOT / "tests" / "fuzz" / "test_targets.py"), "--moe-target", USER_TARGET,
                          "--moe-convention", "vllm"], capture_output=True, text=True, env=user_env(version),
                         cwd=ROOT, timeout=300)
    assert run.returncode == code, run.stdout[-3000:] + run.stderr[-2000:]


def test_sigint_stops_cleanly_and_still_writes_the_summary(tmp_path, user_env):
    proc = subprocess.Popen([sys.executable, "-m", "fuzz", "run", "--target", "oracle-gating", "--time", "300",
                             "--out", "out"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env=user_env(), cwd=tmp_path)
    lines = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in proc.stdout] + [lines.put(None)], daemon=True).start()
    out, line = [], ""
    while line is not None and not line.startswith("["):  # the first progress line: it is fuzzing
        line = lines.get(timeout=120)  # (not the database folder: newer Hypothesis makes it on first save)
        out.append(line or "")
    started = time.monotonic()
    proc.send_signal(signal.SIGINT)
    proc.wait(timeout=120)
    assert time.monotonic() - started < 60, "stops promptly"
    while (line := lines.get(timeout=10)) is not None:
        out.append(line)
    out = "".join(out)
    assert proc.returncode == 0, out
    assert "stopped by a signal" in out and "oracle-gating" in out, out
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["entries"][0]["examples"] > 0


def test_a_target_that_ran_no_example_is_reported_and_exits_2(tmp_path, fuzz):
    run = fuzz("--target", "oracle-sorting", "--time", "0.01", "--out", "out", cwd=tmp_path)
    assert run.returncode == 2, run.stdout + run.stderr
    assert "NOT RUN" in run.stdout


def test_a_known_finding_is_reported_as_known_and_a_ledger_needs_links(tmp_path, fuzz):
    ledger = tmp_path / "ledger.toml"
    ledger.write_text(f'[[finding]]\ntarget = "{USER_TARGET}"\nsignature = "sorting-experts-with-wrong-counts"\n'
                      'link = "https://example.org/issues/1"\n')
    run = fuzz(*_user("--time", "40", "--seed", "2", "--ledger", str(ledger), "--out", "out"), version="buggy",
               cwd=tmp_path)
    assert run.returncode == 0 and "KNOWN (https://example.org/issues/1)" in run.stdout, run.stdout + run.stderr
    fixed = fuzz(*_user("--time", "10", "--ledger", str(ledger), "--out", "o2"), cwd=tmp_path)
    assert "was not seen this run" in fixed.stdout, fixed.stdout
    ledger.write_text(f'[[finding]]\ntarget = "{USER_TARGET}"\nsignature = "sorting-x"\n')
    bad = fuzz("--target", USER_TARGET, "--ledger", str(ledger), "--out", "o3", cwd=tmp_path)
    assert bad.returncode == 2 and "a link is required" in bad.stderr, bad.stderr


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def redis_url(tmp_path):
    """A real redis-server on 127.0.0.1: the one .ci/run starts (MOE_REDIS_URL), else one started
    here from the Debian package and stopped afterwards."""
    if os.environ.get("MOE_REDIS_URL"):
        pytest.importorskip("redis")
        yield os.environ["MOE_REDIS_URL"]
        return
    server = shutil.which("redis-server")
    if server is None:
        pytest.skip("redis-server is not installed (apt-get install redis-server)")
    pytest.importorskip("redis")
    port = _free_port()
    proc = subprocess.Popen([server, "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly", "no",
                             "--dir", str(tmp_path)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_a_failure_replays_first_in_another_campaign_through_redis(tmp_path, redis_url, fuzz):
    # A bug only past one tile of tokens: a campaign's first example (the simplest case) never shows it.
    target = "planted:sorting_drop_past_tile"
    first = fuzz("--target", target, "--time", "60", "--db", redis_url, "--out", "a", cwd=tmp_path)
    assert first.returncode == 1, first.stdout + first.stderr
    control = fuzz("--target", target, "--time", "60", "--max-examples", "1", "--out", "c", cwd=tmp_path)
    assert control.returncode == 0, "one fresh example does not find it: " + control.stdout
    second = fuzz("--target", target, "--time", "60", "--max-examples", "1", "--db", redis_url, "--out", "b",
                   cwd=tmp_path)
    assert second.returncode == 1, "replayed from Redis: " + second.stdout + second.stderr
    assert (tmp_path / "b" / "repros").is_dir() and not (tmp_path / "b" / "db").exists()
