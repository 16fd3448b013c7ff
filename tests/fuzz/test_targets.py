"""Anyone's kernel, fuzzed from pytest:

    pytest tests/fuzz/test_targets.py --moe-target my_pkg.routing:moe_align --moe-convention vllm

runs every property that applies to each ``--moe-target`` (its op: gating, sorting or
route) under the loaded Hypothesis profile, inside its declared domain. Without the
option the module is skipped.
"""
import pytest
from hypothesis import given, settings

from fuzz import properties as fp
from fuzz import targets
from fuzz.settings import examples
from fuzz.strategies import cases_for


def pytest_generate_tests(metafunc):
    if "moe_target" not in metafunc.fixturenames:
        return
    names = metafunc.config.getoption("--moe-target")
    convention = metafunc.config.getoption("--moe-convention")
    params = []
    for name in names:
        target = targets.get(name, convention=convention)
        params += [pytest.param(target, prop, id=f"{name}-{prop}") for prop in fp.properties_for(target)]
    if not params:
        params = [pytest.param(None, None, marks=pytest.mark.skip(reason="no --moe-target given"))]
    metafunc.parametrize(("moe_target", "prop"), params)


@pytest.mark.runs_targets
def test_target_passes_the_property(moe_target, prop, device):
    @settings(max_examples=examples(fp.PROPERTIES[prop].ci_examples))
    @given(case=cases_for(prop, moe_target))
    def run(case):
        fp.check(prop, moe_target, case, device)

    run()
