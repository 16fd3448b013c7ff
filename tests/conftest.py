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
