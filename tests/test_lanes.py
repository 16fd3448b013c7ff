"""The lane a run is on is the lane it says it is on (tox -e rocm sets MOE_EXPECT_HIP)."""
import os

import pytest
import torch


@pytest.mark.skipif(not os.environ.get("MOE_EXPECT_HIP"), reason="only on the ROCm lane (tox -e rocm)")
def test_rocm_lane_runs_on_a_rocm_gpu():
    assert torch.version.hip is not None, "tox -e rocm needs a ROCm build of torch"
    assert torch.cuda.is_available(), "no ROCm GPU visible (ROCm GPUs show up as cuda in torch)"
    assert os.environ.get("TRITON_INTERPRET") != "1", "the ROCm lane compiles the kernels"


def test_mutation_lane_is_declared_outside_default_ci():
    """tox -e mutation exists, runs the driver, and is not part of a plain `tox`."""
    import configparser
    from pathlib import Path
    root = Path(__file__).resolve().parents[1]
    tox = configparser.ConfigParser(interpolation=None)
    tox.read(root / "tox.ini")
    assert "tools/mutation/run.py" in tox["testenv:mutation"]["commands"]
    assert "mutation" not in tox["tox"]["env_list"]


def test_mutation_survivors_file_explains_each_entry():
    """Every entry of tools/mutation/survivors.toml has an id, a known kind and a reason."""
    import importlib.util
    from pathlib import Path
    path = Path(__file__).resolve().parents[1] / "tools" / "mutation" / "report.py"
    spec = importlib.util.spec_from_file_location("mutation_report", path)
    report = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(report)
    explained = report.load_explanations(path.with_name("survivors.toml"))  # ValueError on a bad entry
    assert all(e["reason"].strip() and e["kind"] in report.KINDS for e in explained.values())
