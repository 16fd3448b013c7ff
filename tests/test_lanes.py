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


def _sample_session(path, jobs):
    import sqlite3
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE work_items (job_id VARCHAR PRIMARY KEY)")
        db.execute("CREATE TABLE work_results (worker_outcome VARCHAR, output TEXT, test_outcome VARCHAR, diff TEXT, "
                   "job_id VARCHAR PRIMARY KEY)")
        db.executemany("INSERT INTO work_items VALUES (?)", [(j,) for j in jobs])
        db.execute("INSERT INTO work_results VALUES ('SKIPPED', 'Filtered operator', NULL, NULL, ?)", (jobs[0],))
    return path


def test_mutation_sample_is_seeded_and_kernel_modules_get_their_command(tmp_path):
    """run.py --sample keeps the same N pending mutants for a seed (the filtered one stays
    filtered); *_kernels.py modules get cosmic-ray-kernels.toml, never mixed with host modules."""
    import importlib.util
    import sqlite3
    from pathlib import Path
    pytest.importorskip("toml")
    path = Path(__file__).resolve().parents[1] / "tools" / "mutation" / "run.py"
    spec = importlib.util.spec_from_file_location("mutation_run", path)
    run = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(run)
    assert run.parse_args(["--module", "fused_moe/route_kernels.py"]).config.name == "cosmic-ray-kernels.toml"
    assert run.parse_args(["--module", "fused_moe/route.py"]).config.name == "cosmic-ray.toml"
    with pytest.raises(SystemExit):
        run.parse_args(["--module", "fused_moe/route.py", "--module", "fused_moe/route_kernels.py"])
    jobs = [f"job{i:02d}" for i in range(20)]
    kept = []
    for name in ("a", "b"):
        session = _sample_session(tmp_path / name, jobs)
        run.keep_sample(session, 5, seed=3)
        with sqlite3.connect(session) as db:
            results = dict(db.execute("SELECT job_id, output FROM work_results"))
        assert results[jobs[0]] == "Filtered operator" and len(results) == 15
        kept.append(sorted(set(jobs) - set(results)))
    assert len(kept[0]) == 5 and kept[0] == kept[1]


@pytest.mark.parametrize("config", ["cosmic-ray.toml", "cosmic-ray-kernels.toml"])
def test_mutation_commands_name_tests_that_exist(config):
    """A renamed test must not leave the mutation lane's command pointing at nothing (the lane
    refuses to start when its command fails unmutated, long after the rename)."""
    import re
    import subprocess
    import sys
    import tomllib
    from pathlib import Path
    root = Path(__file__).resolve().parents[1]
    command = tomllib.loads((root / "tools" / "mutation" / config).read_text())["cosmic-ray"]["test-command"]
    ids = re.findall(r"tests/\S+", command)
    assert ids, command
    run = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", *ids],
                         capture_output=True, text=True, cwd=root, timeout=300)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
