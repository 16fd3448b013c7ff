"""Shared test configuration.

The Triton interpreter must be selected before any kernel module is imported,
so the lane is decided here: a visible CUDA/ROCm device runs compiled kernels,
anything else runs the interpreter on CPU (what CI does).
"""
import os

import torch

if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")

import pytest  # noqa: E402

if os.environ.get("TRITON_INTERPRET") == "1":
    from fuzz import interpreter as _interpreter  # noqa: E402

    _interpreter.install()  # tl.sort's reductions in NumPy: the same bits, several times faster


def _device_name() -> str:
    if os.environ.get("TRITON_INTERPRET") == "1" or not torch.cuda.is_available():
        return "cpu"
    return "cuda"


@pytest.fixture(scope="session")
def device() -> str:
    """Where kernel tests put their tensors: "cuda" on a GPU lane, "cpu" under the interpreter."""
    return _device_name()

# Hypothesis profile (ci / dev / campaign), chosen by MOE_FUZZ_PROFILE; loaded before test modules import.
from fuzz import settings as _fuzz_settings  # noqa: E402

_fuzz_settings.load()


def pytest_addoption(parser):
    group = parser.getgroup("moe", "fuzzing someone else's routing kernel")
    group.addoption("--moe-target", action="append", default=[], metavar="NAME",
                    help="a target to run tests/fuzz/test_targets.py against: package.module:function, or a "
                         "built-in name (fuzz.targets); repeatable")
    group.addoption("--regressions-dir", default=None, metavar="DIR",
                    help="bundles replayed by tests/regressions (default: the bundles kept there)")
    group.addoption("--moe-convention", default=None, metavar="ck|vllm|FILE",
                    help="the convention a package.module:function target declares (default ck)")


def pytest_configure(config):
    """xdist's load scheduler starts each worker on a run of consecutive tests (a quarter of
    its share) and refills it in runs: on a 16-core GPU host one worker got every
    differential fuzz test (231 s busy while the rest idled from 84 s). One test at a time
    (--maxschedchunk 1, added for this case: pytest-xdist issue #255, "a batch of slow tests
    to the same worker"), in the longest-first order below, is greedy longest-first
    scheduling: a worker holds the test it runs and the next. Replaying xdist's scheduler
    over the last GPU run's durations (tools/xdist_schedule.py) gave 115 s with 1, 262 s
    with 2, 191 s with no cap. An explicit --maxschedchunk wins."""
    if getattr(config.option, "maxschedchunk", "no xdist") is None:
        config.option.maxschedchunk = 1


def pytest_collection_modifyitems(items):
    """Longest first: the slow tier, then the tests that run targets under @given, then the
    rest (stable inside each), so no long test starts last and holds up a parallel run's end
    (on a GPU, a cold fuzz test compiles for tens of seconds)."""
    items.sort(key=lambda item: 0 if item.get_closest_marker("slow") else
               1 if item.get_closest_marker("runs_targets") else 2)


@pytest.fixture(autouse=True)
def _runs_a_target(request):
    """A test marked ``runs_targets`` must call a target at least once: a property test whose
    strategy was filtered empty, or that never reached the call, fails instead of passing."""
    if request.node.get_closest_marker("runs_targets") is None:
        yield
        return
    from fuzz import properties
    before = properties.CALLS[0]
    yield
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.passed and not hasattr(report, "wasxfail"):
        assert properties.CALLS[0] > before, f"{request.node.nodeid} passed without calling any target"


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    """Keep the call phase's report on the item (the fixture above reads it)."""
    report = yield
    if report.when == "call":
        item.rep_call = report
    return report
