"""The lane a run is on is the lane it says it is on (tox -e rocm sets MOE_EXPECT_HIP)."""
import os

import pytest
import torch


@pytest.mark.skipif(not os.environ.get("MOE_EXPECT_HIP"), reason="only on the ROCm lane (tox -e rocm)")
def test_rocm_lane_runs_on_a_rocm_gpu():
    assert torch.version.hip is not None, "tox -e rocm needs a ROCm build of torch"
    assert torch.cuda.is_available(), "no ROCm GPU visible (ROCm GPUs show up as cuda in torch)"
    assert os.environ.get("TRITON_INTERPRET") != "1", "the ROCm lane compiles the kernels"
