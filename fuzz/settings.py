"""Hypothesis settings profiles, chosen by ONE environment variable: ``MOE_FUZZ_PROFILE``.

========== ============ ========= ======================================= ==========
profile    derandomize  database  max_examples                             deadline
========== ============ ========= ======================================= ==========
``quick``  yes          none      per-test budget / ``QUICK_DIVISOR``     none
``ci``     yes          none      per-test budget (:func:`examples`)       none
``dev``    no           default   per-test budget (:func:`examples`)       none
``campaign`` no         directory per-test budget x ``CAMPAIGN_FACTOR``    none
========== ============ ========= ======================================= ==========

Default: ``dev`` locally; ``tox`` (the fast tier) sets ``quick``, ``tox -e full`` and CI's
full run set ``ci``.

Hypothesis itself registers a built-in ``ci`` profile and *loads* it at import
when ``CI=true``. :func:`load` re-registers all three of ours (ours replace the
built-in ``ci``) and then loads the requested one explicitly, so
``MOE_FUZZ_PROFILE=campaign`` keeps its example database even on a CI runner.

Deadlines are off everywhere: under the Triton interpreter one kernel call
takes tens to hundreds of milliseconds and its first call compiles.
"""
from __future__ import annotations

import os
from pathlib import Path

from hypothesis import HealthCheck, settings
from hypothesis.database import DirectoryBasedExampleDatabase

PROFILE_ENV = "MOE_FUZZ_PROFILE"
DATABASE_ENV = "MOE_FUZZ_DB"
PROFILES = ("quick", "ci", "dev", "campaign")
#: The fast tier's share of each per-test budget.
QUICK_DIVISOR = 5
DEFAULT_PROFILE = "dev"
#: How many times the per-test budget a campaign runs per round.
CAMPAIGN_FACTOR = 50

# Kernel calls are slow under the interpreter and some strategies build
# arrays of a few thousand elements: neither is a problem worth failing on.
_SLOW_OK = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example]


def register(database_dir: str | os.PathLike | None = None) -> None:
    """Register ``ci``, ``dev`` and ``campaign`` (idempotent; ``campaign``'s database
    lives in ``database_dir``, else ``$MOE_FUZZ_DB``, else ``.hypothesis/moe-campaign``)."""
    db_dir = Path(database_dir or os.environ.get(DATABASE_ENV) or ".hypothesis/moe-campaign")
    # Parent: Hypothesis's own defaults, not whatever profile is loaded (CI=true loads the
    # built-in "ci" one at import, which would leak derandomize / database=None into "dev").
    base = settings.get_profile("default")
    for name in ("ci", "quick"):
        settings.register_profile(
            name, base, derandomize=True, database=None, deadline=None, max_examples=100, print_blob=True,
            suppress_health_check=_SLOW_OK)
    settings.register_profile(
        "dev", base, deadline=None, max_examples=100, print_blob=True, suppress_health_check=_SLOW_OK)
    settings.register_profile(
        "campaign", base, derandomize=False, database=DirectoryBasedExampleDatabase(str(db_dir)), deadline=None,
        max_examples=100 * CAMPAIGN_FACTOR, print_blob=True, suppress_health_check=_SLOW_OK)


def load(name: str | None = None, database_dir: str | os.PathLike | None = None) -> str:
    """Register the profiles and load ``name`` (default: ``$MOE_FUZZ_PROFILE``, else ``dev``)."""
    name = name or os.environ.get(PROFILE_ENV) or DEFAULT_PROFILE
    if name not in PROFILES:
        raise ValueError(f"{PROFILE_ENV} must be one of {', '.join(PROFILES)}, got {name!r}")
    register(database_dir)
    settings.load_profile(name)
    return name


def current() -> str:
    """Name of the loaded profile."""
    return settings.get_current_profile_name()


def examples(ci_budget: int) -> int:
    """``max_examples`` for one test: ``ci_budget`` in ``ci`` and ``dev`` (the CI time
    budget is set per test, since kernel calls dominate), times ``CAMPAIGN_FACTOR`` in
    ``campaign``. Read at decoration time, after ``tests/conftest.py`` loaded the profile."""
    profile = current()
    if profile == "quick":
        return max(5, ci_budget // QUICK_DIVISOR)
    return ci_budget * (CAMPAIGN_FACTOR if profile == "campaign" else 1)
