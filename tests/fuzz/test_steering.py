"""Targeted search (fuzz/steering.py): each campaign case tells ``hypothesis.target`` its
distance to each boundary its target declares, read from the target's domain."""
import dataclasses
import re
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fuzz import campaign, steering, targets
from fuzz import properties as fp
from fuzz.cases import Options, SortingCase
from fuzz.strategies import CI_LIMITS

#: A target declaring token boundaries at 16 and 40 and an assignment (T*K) boundary at 64.
LIMITS = CI_LIMITS.within(token_boundaries=(16, 40), assignment_boundaries=(64,))


def _sorting_case(T: int, K: int) -> SortingCase:
    return SortingCase(np.zeros((T, K), np.int32), np.ones((T, K), np.float32), 8, Options(unit_size=4))


TOKENS_16, TOKENS_40 = steering.token_label(16), steering.token_label(40)
ASSIGNMENTS_64 = steering.assignment_label(64)


@pytest.mark.parametrize(("T", "K", "expected"), [
    (17, 4, {TOKENS_16: -1, TOKENS_40: -23, ASSIGNMENTS_64: -4}),  # just past 16; T*K = 68, 4 past 64
    (13, 5, {TOKENS_16: -3, TOKENS_40: -27, ASSIGNMENTS_64: -1}),  # T*K = 65: just past 64
    (40, 1, {TOKENS_16: -24, TOKENS_40: 0, ASSIGNMENTS_64: -24}),  # on the second token boundary
])
def test_observations_are_minus_the_distance_to_each_boundary(T, K, expected):
    assert steering.observations({"T": T, "K": K}, LIMITS) == expected


def test_no_observation_without_a_reachable_boundary():
    assert steering.observations({"T": 5, "K": 2}, CI_LIMITS) == {}
    # T*K past the drawn sizes (512 at ci sizes) cannot be reached: it would only pull every case up
    assert steering.observations({"T": 5, "K": 2}, CI_LIMITS.within(assignment_boundaries=(1024,))) == {}


def test_steer_reports_a_case_just_past_a_boundary(monkeypatch):
    seen = []
    monkeypatch.setattr("hypothesis.target", lambda value, label="": seen.append((label, value)))
    steering.steer(_sorting_case(17, 4), LIMITS)
    assert seen == [(TOKENS_16, -1), (TOKENS_40, -23), (ASSIGNMENTS_64, -4)]


def test_steer_is_valid_inside_given():
    @settings(max_examples=3, database=None)
    @given(st.integers(15, 18))
    def run(T):
        steering.steer(_sorting_case(T, 4), LIMITS)  # hypothesis.target would raise on a bad label or value

    run()


@pytest.mark.runs_targets
def test_the_campaign_steers_every_case_by_its_targets_declared_boundaries(monkeypatch):
    oracle = targets.get("oracle-sorting")
    declared = oracle.convention.with_domain(token_boundaries=(16,), assignment_boundaries=(64,))
    entry = campaign.Entry("sorting", "sorting", dataclasses.replace(oracle, convention=declared))
    reported, sizes = [], []
    monkeypatch.setattr("hypothesis.target", lambda value, label="": reported.append((label, value)))

    def check(target, case, device):
        sizes.append(case.size())
        fp.sorting_property(target, case, device)

    monkeypatch.setitem(fp.PROPERTIES, "sorting", fp.PROPERTIES["sorting"]._replace(check=check))
    campaign.run_entry(entry, seconds=600, max_examples=8, seed=0, database=None, device="cpu", limits=CI_LIMITS)
    assert entry.harness_error is None and entry.failure is None and sizes
    expected = [item for s in sizes for item in (
        (TOKENS_16, -abs(s["T"] - 16)), (ASSIGNMENTS_64, -abs(s["T"] * s["K"] - 64)))]
    assert reported == expected


@pytest.mark.runs_targets
def _pinned_hypothesis():
    """The Hypothesis version tox pins (tox.ini is its one home)."""
    tox = (Path(__file__).resolve().parents[2] / "tox.ini").read_text()
    return re.search(r"hypothesis\[redis\]==([\w.]+)", tox).group(1)


def test_an_entry_runs_in_rounds_that_reach_the_targeted_phase(monkeypatch):
    # Hypothesis optimises targets once half a run's max_examples are in; one run with the
    # campaign's unbounded max_examples never would. Its runner's hook is spied on, which only
    # the pinned version promises to have (a GPU machine brings its own Hypothesis).
    import hypothesis
    if hypothesis.__version__ != _pinned_hypothesis():
        pytest.skip(f"spies on Hypothesis internals as of {_pinned_hypothesis()}; this is {hypothesis.__version__}")
    from hypothesis.internal.conjecture.engine import ConjectureRunner
    optimised = []
    real = ConjectureRunner.optimise_targets

    def spy(self):
        optimised.append(sorted(self.best_examples_of_observed_targets))
        return real(self)

    monkeypatch.setattr(ConjectureRunner, "optimise_targets", spy)
    oracle = targets.get("oracle-sorting")
    declared = oracle.convention.with_domain(token_boundaries=(16,), assignment_boundaries=(64,))
    entry = campaign.Entry("sorting", "sorting", dataclasses.replace(oracle, convention=declared))
    n = 2 * campaign.ROUND_EXAMPLES + 7
    campaign.run_entry(entry, seconds=600, max_examples=n, seed=0, database=None, device="cpu", limits=CI_LIMITS)
    assert entry.harness_error is None and entry.failure is None and entry.examples == n
    assert optimised[:2] == [sorted([TOKENS_16, ASSIGNMENTS_64])] * 2, optimised
