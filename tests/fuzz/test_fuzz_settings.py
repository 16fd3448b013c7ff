"""The settings profiles: one variable chooses them, and CI=true does not override ours."""
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import settings

from fuzz import settings as fs

ROOT = Path(__file__).resolve().parents[2]


def _profile_in_subprocess(env_updates, tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("CI", fs.PROFILE_ENV, fs.DATABASE_ENV)}
    env.update(env_updates, PYTHONPATH=str(ROOT))
    code = ("import hypothesis; from fuzz import settings as fs; name = fs.load(); "
            "s = hypothesis.settings.default; "
            "print(name, type(s.database).__name__, s.derandomize, s.max_examples, getattr(s.database, 'path', ''))")
    out = subprocess.run([sys.executable, "-c", code], env=env, cwd=tmp_path, capture_output=True, text=True,
                         check=True)
    return out.stdout.split()


def test_campaign_keeps_its_database_when_ci_is_set(tmp_path):
    # Hypothesis loads its own "ci" profile (database=None) at import when CI=true.
    name, db, derandomize, max_examples, path = _profile_in_subprocess(
        {"CI": "true", fs.PROFILE_ENV: "campaign", fs.DATABASE_ENV: str(tmp_path / "db")}, tmp_path)
    assert (name, db, derandomize) == ("campaign", "DirectoryBasedExampleDatabase", "False")
    assert Path(path) == tmp_path / "db"
    assert int(max_examples) > 1000


def test_ci_profile_is_ours_and_deterministic(tmp_path):
    name, db, derandomize, *_ = _profile_in_subprocess({"CI": "true", fs.PROFILE_ENV: "ci"}, tmp_path)
    assert (name, db, derandomize) == ("ci", "NoneType", "True")


def test_default_profile_is_dev(tmp_path):
    name, db, derandomize, *_ = _profile_in_subprocess({}, tmp_path)
    assert (name, derandomize) == ("dev", "False")
    assert db != "NoneType"


def test_unknown_profile_is_refused():
    with pytest.raises(ValueError, match="MOE_FUZZ_PROFILE"):
        fs.load("nightly")


def test_conftest_loaded_the_requested_profile():
    assert settings.get_current_profile_name() == (os.environ.get(fs.PROFILE_ENV) or fs.DEFAULT_PROFILE)
    assert settings.default.deadline is None
