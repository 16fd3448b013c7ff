"""``python -m fuzz power``: the measurement runs end to end and reports what it measured."""
import json
import subprocess
import sys

import pytest

from fuzz import power
from fuzz.cli import main

pytestmark = [pytest.mark.quality, pytest.mark.slow]


def test_power_reports_recall_false_positives_and_time_to_detection(tmp_path, capsys):
    code = main(["power", "--only", "sorting_pad_extra_block", "--only", "paths_fused_weights_ulp",
                 "--no-kernels", "--control-examples", "5", "--out", str(tmp_path)])
    assert code == 0
    out = capsys.readouterr().out
    assert "recall: 2/2 planted bugs" in out and "false positives: 0/" in out and "median time to detection" in out
    data = json.loads((tmp_path / "power.json").read_text())
    assert data["summary"]["recall"] == 1.0 and data["summary"]["false_positives"] == 0
    rows = {(r["target"], r["prop"]): r for r in data["bugs"]}
    assert set(rows) == {("sorting_pad_extra_block", "sorting"), ("sorting_pad_extra_block", "route"),
                         ("paths_fused_weights_ulp", "paths")}
    assert all(r["found"] and r["first_examples"] >= 1 and r["shrunk"] for r in rows.values())
    groups = {r["group"] for r in data["controls"]}
    assert groups == {"oracle", "torch", "knob off"}
    assert "| `sorting_pad_extra_block` | sorting | yes |" in (tmp_path / "power.md").read_text()


def test_a_budget_too_small_to_find_a_bug_is_reported_as_a_miss(tmp_path):
    args = power._parser().parse_args(["--only", "sorting_path_threshold_grid", "--examples", "3", "--no-controls"])
    args.device = "cpu"
    bugs, controls = power.measure(args)
    s = power.summary(bugs, controls)
    assert s["recall"] == 0.0 and s["missed"] == ["sorting_path_threshold_grid [sorting]"] and not controls


def test_usage_errors_exit_2():
    run = subprocess.run([sys.executable, "-m", "fuzz", "power", "--only", "no_such_bug"], capture_output=True,
                         text=True, timeout=120)
    assert run.returncode == 2 and "unknown planted bug" in run.stderr
