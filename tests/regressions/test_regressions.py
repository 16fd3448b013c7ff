"""Replay every bug-report bundle kept in tests/regressions/ (or --regressions-dir): each must
pass now. A bundle whose target cannot be imported here is skipped, never passed."""
from pathlib import Path

import pytest

from fuzz import bundles

HERE = Path(__file__).parent


def pytest_generate_tests(metafunc):
    if "bundle" in metafunc.fixturenames:
        root = Path(metafunc.config.getoption("--regressions-dir") or HERE)
        found = sorted(p.parent for p in root.glob("*/bundle.json"))
        metafunc.parametrize("bundle", found or [None], ids=[p.name for p in found] or ["none"])


def test_bundle_passes_now(bundle, device):
    if bundle is None:
        pytest.skip("no regression bundle kept yet")
    code, text = bundles.replay(bundle, device=device)
    if code == bundles.CANNOT_RUN and "cannot import" in text:
        pytest.skip(text)
    assert code == bundles.FIXED, text
