"""Quality of the fuzzers: every planted bug is found by the SAME differential property
that tests/fuzz runs on the kernels, under the ci profile within ``HUNT_EXAMPLES``, and it
shrinks to a small case (Hypothesis's own ``quality/`` suite, "finds this bug and
shrinks it to this").

A planted bug that survives, or shrinks big, is a gap in fuzz/strategies.py: close it there.
"""
import os
import subprocess
import sys

import pytest

from fuzz import bundles, planted, repro, targets
from fuzz import properties as fp

pytestmark = pytest.mark.quality

#: Default bound on the shrunk size; a bug whose minimal case is bigger says so in its Planted entry.
SMALL = {"T": 17, "E": 8, "K": 2, "U": 4}
CASES = [(p.name, prop) for p in planted.PLANTED for prop in p.properties]


def test_catalogue_has_at_least_ten_bug_classes():
    assert len(planted.PLANTED) >= 10
    assert len({p.name for p in planted.PLANTED}) == len(planted.PLANTED)


@pytest.mark.parametrize(("name", "prop"), CASES, ids=[f"{n}-{p}" for n, p in CASES])
def test_planted_bug_is_found_and_shrinks_small(name, prop):
    p = planted.BY_NAME[name]
    case = fp.failing_case(prop, planted.target_for(p, prop))
    assert case is not None, f"{name} survived {fp.HUNT_EXAMPLES} examples of the {prop} property"
    size = case.size()
    bound = {**SMALL, **p.max_size}
    too_big = {k: (v, bound[k]) for k, v in size.items() if k in bound and v > bound[k]}
    assert not too_big, f"{name} shrank only to {case!r} (size, bound): {too_big}"


def _env():
    """The repro needs this package importable (installed, or its checkout on PYTHONPATH)."""
    return {**os.environ, "PYTHONPATH": str(bundles.repro.ROOT)}


@pytest.mark.parametrize("name", ["sorting_moe_buf_tail", "gating_ties_to_higher_index", "gating_batch_dependent",
                                  "route_plan_keyed_by_shape"])
def test_bundle_of_a_planted_bug_replays_standalone(name, tmp_path):
    p = planted.BY_NAME[name]
    prop = p.properties[0]
    target = planted.target_for(p, prop)
    case = fp.failing_case(prop, target)
    with pytest.raises(fp.TargetFailure) as failure:
        fp.check(prop, target, case, "cpu")
    folder, written = bundles.write_bundle(tmp_path, prop, target, case, failure.value)
    assert written and {f.name for f in folder.iterdir()} == {"case.npz", "case.json", "bundle.json", "repro.py",
                                                              "report.md"}
    run = subprocess.run([sys.executable, "repro.py"], capture_output=True, text=True, cwd=folder, timeout=300,
                         env=_env())
    assert run.returncode == 1, run.stdout + run.stderr
    assert "FAILED" in run.stdout, run.stdout
    assert bundles.replay(folder)[0] == bundles.REPRODUCES
    text = (folder / "report.md").read_text()
    assert failure.value.kind in text and "@example(case=" in text and "hypothesis" in text and "T=" in text
    assert "M=" in text or prop in ("gating", "batch"), "sorting options name M"
    # never overwritten: the same failure again keeps the bundle
    assert bundles.write_bundle(tmp_path, prop, target, case, failure.value) == (folder, False)


def test_repro_of_a_correct_target_exits_zero(tmp_path):
    import numpy as np

    from fuzz.cases import Options, SortingCase
    case = SortingCase(np.array([[0, 1], [1, 1]], np.int32), np.array([[0.5, -0.0], [1.0, 2.0]], np.float32), 3,
                       Options(unit_size=2, moe_buf=("bfloat16", 7), num_local_tokens=1, m_on_device=True))
    (tmp_path / "repro.py").write_text(repro.script("sorting", targets.get("oracle-sorting"), case, "(none)",
                                                    when="now"))
    run = subprocess.run([sys.executable, "repro.py"], capture_output=True, text=True, cwd=tmp_path, timeout=300,
                         env=_env())
    assert run.returncode == 0, run.stdout + run.stderr
