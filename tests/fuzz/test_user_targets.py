"""Fuzzing a user's own kernel end to end: ``python -m fuzz run --target module:function``
and ``pytest --moe-target``, on a plain-PyTorch vLLM-layout sorter brought on PYTHONPATH
(tests/fixtures/user_kernels/{buggy,fixed}/user_sorter.py differ in one range check)."""
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "user_kernels"
TARGET = "user_sorter:moe_align_block_size"


def _env(version: str) -> dict:
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(FIXTURES / version)])}


def _fuzz(version: str, out: Path, *args, timeout=240):
    return subprocess.run([sys.executable, "-m", "fuzz", "run", "--target", TARGET, "--convention", "vllm",
                           "--out", str(out), "--seed", "1", *args], capture_output=True, text=True,
                          env=_env(version), cwd=out.parent, timeout=timeout)


def test_a_planted_bug_in_a_user_kernel_is_found_within_a_minute_and_its_repro_replays(tmp_path):
    started = time.monotonic()
    run = _fuzz("buggy", tmp_path / "out", "--time", "60")
    assert run.returncode == 1, run.stdout + run.stderr
    assert time.monotonic() - started < 90, "60 s of fuzzing plus start-up"
    scripts = sorted((tmp_path / "out" / "repros").glob("*/repro.py"))
    assert len(scripts) == 1, run.stdout
    for version, code in (("buggy", 1), ("fixed", 0)):
        again = subprocess.run([sys.executable, str(scripts[0])], capture_output=True, text=True,
                               env=_env(version), cwd=tmp_path, timeout=120)
        assert again.returncode == code, f"{version}: {again.stdout}{again.stderr}"
    assert "FAILED" in subprocess.run([sys.executable, str(scripts[0])], capture_output=True, text=True,
                                      env=_env("buggy"), cwd=tmp_path, timeout=120).stdout


def test_the_fixed_user_kernel_passes_a_short_run(tmp_path):
    run = _fuzz("fixed", tmp_path / "out", "--time", "8")
    assert run.returncode == 0, run.stdout + run.stderr
    assert " ok" in run.stdout


def test_a_repro_that_cannot_import_its_target_exits_2(tmp_path):
    run = _fuzz("buggy", tmp_path / "out", "--time", "60")
    script = next((tmp_path / "out" / "repros").glob("*/repro.py"))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}  # the user's module is not importable
    again = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, env=env, cwd=tmp_path,
                           timeout=120)
    assert again.returncode == 2 and "cannot run" in again.stdout, again.stdout + again.stderr
    assert str(ROOT) not in script.read_text(), "no path of the reporter's machine in a repro"
    assert run.returncode == 1


@pytest.mark.parametrize(("args", "message"), [
    (["--target", "no_such_module:fn"], "cannot import 'no_such_module'"),
    (["--target", "user_sorter:nope"], "has no function 'nope'"),
    (["--target", "not a target"], "unknown target"),
    (["--target", TARGET, "--convention", "missing.toml"], "ck, vllm or a .toml"),
    (["--time", "0"], "--time must be > 0"),
])
def test_bad_options_are_one_line_errors_with_exit_2(tmp_path, args, message):
    run = subprocess.run([sys.executable, "-m", "fuzz", "run", "--out", str(tmp_path), *args], capture_output=True,
                         text=True, env=_env("fixed"), cwd=tmp_path, timeout=120)
    assert run.returncode == 2, run.stdout + run.stderr
    assert message in run.stderr and len(run.stderr.strip().splitlines()) == 1, run.stderr


@pytest.mark.parametrize(("version", "code"), [("buggy", 1), ("fixed", 0)])
def test_pytest_moe_target_option(version, code):
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                          str(ROOT / "tests" / "fuzz" / "test_targets.py"), "--moe-target", TARGET,
                          "--moe-convention", "vllm"], capture_output=True, text=True, env=_env(version), cwd=ROOT,
                         timeout=300)
    assert run.returncode == code, run.stdout[-3000:] + run.stderr[-2000:]
