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
    parser.addoption("--shard", default=None, metavar="I/N",
                     help="run only every N-th collected test, starting at the I-th (0 <= I < N); "
                          "N shards together run the whole suite (tox -p -m gpu-shards)")


def pytest_collection_modifyitems(config, items):
    shard = config.getoption("--shard")
    if shard is None:
        return
    try:
        index, count = (int(part) for part in shard.split("/"))
    except ValueError:
        raise pytest.UsageError(f"--shard must be I/N with integers, got {shard!r}") from None
    if not 0 <= index < count:
        raise pytest.UsageError(f"--shard I/N needs 0 <= I < N, got {shard!r}")
    # Round robin: neighbouring tests share kernel shapes, so every shard gets a mix.
    keep = [item for k, item in enumerate(items) if k % count == index]
    config.hook.pytest_deselected(items=[item for k, item in enumerate(items) if k % count != index])
    items[:] = keep
