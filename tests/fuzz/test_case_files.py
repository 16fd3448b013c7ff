"""Cases round-trip through case.json + case.npz bit for bit (bundles and regressions rely on it)."""
import pytest
from hypothesis import given, settings

from fuzz.cases import load_case, save_case
from fuzz.strategies import cases_for


@pytest.mark.parametrize("prop", ["gating", "sorting", "route", "batch", "reuse"])
def test_case_files_round_trip(prop, tmp_path_factory):
    @settings(max_examples=25)
    @given(case=cases_for(prop))
    def run(case):
        folder = tmp_path_factory.mktemp("case")
        save_case(case, folder)
        back = load_case(folder)
        assert type(back) is type(case) and repr(back) == repr(case)
        a, b = {}, {}
        from fuzz.cases import _encode
        _encode(case, "case", a)
        _encode(back, "case", b)
        assert a.keys() == b.keys() and all(a[k].dtype == b[k].dtype and a[k].tobytes() == b[k].tobytes() for k in a)

    run()
