"""A user's own kernel for the end-to-end tests: tests/fixtures/user_kernels/user_sorter.py
as it is ("fixed"), and a copy with one planted bug ("buggy")."""
import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "user_kernels"
#: The planted bug: the range check drops expert E-1.
CORRECT, BUGGY = "(ids < num_experts)", "(ids < num_experts - 1)"


@pytest.fixture(scope="session")
def user_env(tmp_path_factory):
    """``user_env(version)``: an environment whose PYTHONPATH holds this package and the
    "fixed" or "buggy" user_sorter."""
    buggy = tmp_path_factory.mktemp("buggy_user_kernel")
    source = (FIXTURES / "user_sorter.py").read_text()
    assert source.count(CORRECT) == 1
    (buggy / "user_sorter.py").write_text(source.replace(CORRECT, BUGGY))
    folders = {"fixed": FIXTURES, "buggy": buggy}
    return lambda version="fixed": {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(folders[version])])}
