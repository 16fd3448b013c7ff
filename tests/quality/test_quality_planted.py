"""Quality of the fuzzers: every planted bug is found by the SAME differential property
that tests/fuzz runs on the kernels, under the ci profile within ``HUNT_EXAMPLES``, and it
shrinks to a small case (Hypothesis's own ``quality/`` suite, "finds this bug and
shrinks it to this").

A planted bug that survives, or shrinks big, is a gap in fuzz/strategies.py: close it there.
"""
import subprocess
import sys

import pytest

from fuzz import planted, repro
from fuzz import targets as tg

pytestmark = pytest.mark.quality

#: Default bound on the shrunk size; a bug whose minimal case is bigger says so in its Planted entry.
SMALL = {"T": 17, "E": 8, "K": 2, "U": 4}
CASES = [(p.name, prop) for p in planted.PLANTED for prop in p.properties]


def _target(p: planted.Planted, prop: str):
    return p.as_route() if prop == "route" else p.target


def test_catalogue_has_at_least_ten_bug_classes():
    assert len(planted.PLANTED) >= 10
    assert len({p.name for p in planted.PLANTED}) == len(planted.PLANTED)


@pytest.mark.parametrize(("name", "prop"), CASES, ids=[f"{n}-{p}" for n, p in CASES])
def test_planted_bug_is_found_and_shrinks_small(name, prop):
    p = planted.BY_NAME[name]
    case = tg.failing_case(prop, _target(p, prop))
    assert case is not None, f"{name} survived {tg.HUNT_EXAMPLES} examples of the {prop} property"
    size = case.size()
    bound = {**SMALL, **p.max_size}
    too_big = {k: (v, bound[k]) for k, v in size.items() if k in bound and v > bound[k]}
    assert not too_big, f"{name} shrank only to {case!r} (size, bound): {too_big}"


@pytest.mark.parametrize("name", ["sorting_moe_buf_tail", "gating_ties_to_higher_index", "gating_batch_dependent",
                                  "route_plan_keyed_by_shape"])
def test_repro_of_a_planted_bug_runs_standalone(name, tmp_path):
    p = planted.BY_NAME[name]
    prop = p.properties[0]
    target = _target(p, prop)
    case = tg.failing_case(prop, target)
    with pytest.raises(AssertionError) as failure:
        tg.PROPERTIES[prop].check(target, case, "cpu")
    py, md = repro.write_repro(prop, target, case, str(failure.value), tmp_path)
    run = subprocess.run([sys.executable, str(py)], capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert run.returncode == 1, run.stdout + run.stderr
    assert "FAILED" in run.stdout, run.stdout
    text = md.read_text()
    assert name in text and "## Environment" in text and "torch" in text


def test_repro_of_a_correct_target_exits_zero(tmp_path):
    from fuzz.strategies import Options, SortingCase
    import numpy as np
    case = SortingCase(np.array([[0, 1], [1, 1]], np.int32), np.array([[0.5, -0.0], [1.0, 2.0]], np.float32), 3,
                       Options(unit_size=2, moe_buf=("bfloat16", 7), num_local_tokens=1, m_on_device=True))
    py, _ = repro.write_repro("sorting", tg.oracle_sorting, case, "(none)", tmp_path)
    run = subprocess.run([sys.executable, str(py)], capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr


def test_campaign_finds_a_planted_bug_and_writes_a_repro(tmp_path):
    out = tmp_path / "fuzz-out"
    run = subprocess.run([sys.executable, "-m", "fuzz.campaign", "--minutes", "0.5", "--planted",
                          "sorting_last_pad_unwritten", "--out", str(out)],
                         capture_output=True, text=True, cwd=repro.ROOT, timeout=300)
    assert run.returncode == 1, run.stdout + run.stderr
    assert "FAILED sorting_last_pad_unwritten[sorting]" in run.stdout
    assert "ids: uniform" in run.stdout  # per-target regime counts are printed
    scripts = sorted(out.glob("repro_*.py"))
    assert scripts and sorted(out.glob("repro_*.md")), run.stdout
    again = subprocess.run([sys.executable, str(scripts[0])], capture_output=True, text=True, cwd=tmp_path,
                           timeout=300)
    assert again.returncode == 1 and "FAILED" in again.stdout, again.stdout + again.stderr
