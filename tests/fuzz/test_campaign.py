"""The main job end to end: ``python -m fuzz run`` finds, shrinks and bundles a planted bug,
stops cleanly on a signal, reports a target that ran nothing, knows ledger entries, and
shares its example database across campaigns through a real redis-server."""
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "user_kernels"
USER = "user_sorter:moe_align_block_size"


def _env(version: str = "fixed") -> dict:
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(FIXTURES / version)])}


def _fuzz(*args, version="fixed", cwd, timeout=300):
    return subprocess.run([sys.executable, "-m", "fuzz", "run", *args], capture_output=True, text=True,
                          env=_env(version), cwd=cwd, timeout=timeout)


def test_a_planted_bug_gives_one_small_bundle_that_replays_and_guards_the_suite(tmp_path):
    run = _fuzz("--target", USER, "--convention", "vllm", "--time", "60", "--seed", "2", "--out", "out",
                version="buggy", cwd=tmp_path)
    assert run.returncode == 1, run.stdout + run.stderr
    bundles = sorted((tmp_path / "out" / "repros").glob("*/bundle.json"))
    assert len(bundles) == 1, "one bundle per distinct failure, not one per example"
    folder = bundles[0].parent
    size = json.loads((folder / "case.json").read_text())["size"]
    # The range check drops expert E-1: one token on one expert shows it.
    assert size["T"] <= 2 and size["E"] <= 2 and size["K"] <= 2, size
    for version, code in (("buggy", 1), ("fixed", 0)):
        script = subprocess.run([sys.executable, "repro.py"], capture_output=True, text=True, env=_env(version),
                                cwd=folder, timeout=120)
        replay = subprocess.run([sys.executable, "-m", "fuzz", "replay", str(folder)], capture_output=True,
                                text=True, env=_env(version), cwd=tmp_path, timeout=120)
        assert (script.returncode, replay.returncode) == (code, code), script.stdout + replay.stdout
    regressions = tmp_path / "regressions"
    shutil.copytree(folder, regressions / folder.name)
    for version, code in (("buggy", 1), ("fixed", 0)):
        suite = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                                str(ROOT / "tests" / "regressions"), "--regressions-dir", str(regressions)],
                               capture_output=True, text=True, env=_env(version), cwd=ROOT, timeout=300)
        assert suite.returncode == code, suite.stdout[-2000:]


def test_sigint_stops_cleanly_and_still_writes_the_summary(tmp_path):
    proc = subprocess.Popen([sys.executable, "-m", "fuzz", "run", "--target", "oracle-gating", "--time", "300",
                             "--out", "out"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env=_env(), cwd=tmp_path)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not (tmp_path / "out" / "db").exists():
        time.sleep(0.5)  # the worker has started fuzzing once it opened the database
    time.sleep(3)
    started = time.monotonic()
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=120)
    assert time.monotonic() - started < 60, "stops promptly"
    assert proc.returncode == 0, out
    assert "stopped by a signal" in out and "oracle-gating" in out, out
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["entries"][0]["examples"] > 0


def test_a_target_that_ran_no_example_is_reported_and_exits_2(tmp_path):
    run = _fuzz("--target", "oracle-sorting", "--time", "0.01", "--out", "out", cwd=tmp_path)
    assert run.returncode == 2, run.stdout + run.stderr
    assert "NOT RUN" in run.stdout


def test_a_known_finding_is_reported_as_known_and_a_ledger_needs_links(tmp_path):
    ledger = tmp_path / "ledger.toml"
    ledger.write_text(f'[[finding]]\ntarget = "{USER}"\nsignature = "sorting-experts-with-wrong-counts"\n'
                      'link = "https://example.org/issues/1"\n')
    run = _fuzz("--target", USER, "--convention", "vllm", "--time", "40", "--seed", "2", "--ledger", str(ledger),
                "--out", "out", version="buggy", cwd=tmp_path)
    assert run.returncode == 0 and "KNOWN (https://example.org/issues/1)" in run.stdout, run.stdout + run.stderr
    fixed = _fuzz("--target", USER, "--convention", "vllm", "--time", "10", "--ledger", str(ledger), "--out", "o2",
                  cwd=tmp_path)
    assert "was not seen this run" in fixed.stdout, fixed.stdout
    ledger.write_text(f'[[finding]]\ntarget = "{USER}"\nsignature = "sorting-x"\n')
    bad = _fuzz("--target", USER, "--ledger", str(ledger), "--out", "o3", cwd=tmp_path)
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


def test_a_failure_replays_first_in_another_campaign_through_redis(tmp_path, redis_url):
    # A bug only past one tile of tokens: a campaign's first example (the simplest case) never shows it.
    target = "planted:sorting_drop_past_tile"
    first = _fuzz("--target", target, "--time", "60", "--db", redis_url, "--out", "a", cwd=tmp_path)
    assert first.returncode == 1, first.stdout + first.stderr
    control = _fuzz("--target", target, "--time", "60", "--max-examples", "1", "--out", "c", cwd=tmp_path)
    assert control.returncode == 0, "one fresh example does not find it: " + control.stdout
    second = _fuzz("--target", target, "--time", "60", "--max-examples", "1", "--db", redis_url, "--out", "b",
                   cwd=tmp_path)
    assert second.returncode == 1, "replayed from Redis: " + second.stdout + second.stderr
    assert (tmp_path / "b" / "repros").is_dir() and not (tmp_path / "b" / "db").exists()
