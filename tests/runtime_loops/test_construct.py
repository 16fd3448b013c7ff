"""Regression suite: a runtime-bounded loop under a runtime branch (SPEC section 4).

Every form of the construct in ``construct_kernels.py`` is run for trip counts
0, 1, 2 and many, start > stop, multi-element and negative steps, on a grid
where some programs take the branch and some don't, and compared exactly with
a plain-Python/NumPy model of ``range`` semantics. Runs on both lanes: the
interpreter on CPU (CI) and compiled on a GPU (the ``device`` fixture).
"""
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import pytest
import torch

from . import construct_kernels as ck

pytestmark = pytest.mark.runtime_loops

P = 4  # programs: enough for taken / not taken, and for the nested and else arms
V = 64  # width of each program's visit map; every loop index stays in [0, V)
G = 8  # canary words on each side of the visit map
PASSES = 2  # tl.static_range passes in the static placement
SCALE = 8  # runtime scalar of the "computed" source: stop = hi * SCALE + lo
FLAGS = (1, 1, 0, 1)  # inner-branch flag per program (nested placement)
POISON = -77  # written into outputs before each launch
CANARY = -99  # guards on both sides of the visit map

# How each placement reads in a failure message, and which kernel has it.
PLACEMENTS = {
    "if": ("inside `if pid != 0`", ck.loop_in_if_kernel),
    "else": ("inside the `else` of `if pid % 2 == 0`", ck.loop_in_else_kernel),
    "nested": ("inside `if pid != 0` then `if flag > 0`", ck.loop_in_nested_if_kernel),
    "static": (f"inside `if pid != 0` inside `tl.static_range({PASSES})`",
               ck.loop_in_static_range_kernel),
    "while": ("(while loop) inside `if pid != 0`", ck.while_in_if_kernel),
}
SOURCES = {
    "load": "bounds loaded from memory",
    "arg": "bounds passed as runtime scalar arguments",
    "computed": "stop computed as loaded value * runtime scalar",
}


@dataclass(frozen=True)
class Form:
    """One shape of the construct: where the loop sits and how it gets its bounds."""
    placement: str  # key of PLACEMENTS
    source: str  # key of SOURCES
    iterator: str  # "range", "tl.range" or "while"
    runtime_step: bool  # step from the source (runtime) or a constexpr

    @property
    def id(self) -> str:
        step = "runtimestep" if self.runtime_step else "conststep"
        where = "if" if self.placement == "while" else self.placement  # the while sits in `if pid != 0`
        return f"{self.source}-bounds-{self.iterator}-{step}-{where}"

    def describe(self) -> str:
        step = "runtime step" if self.runtime_step else "constexpr step"
        return (f"runtime loop ({self.iterator}, {SOURCES[self.source]}, {step}) "
                f"{PLACEMENTS[self.placement][0]}")


class Regime(NamedTuple):
    """Bounds of the loop, as Python's ``range(start, stop, step)``."""
    name: str
    start: int
    stop: int
    step: int


# Hand-picked rows; each comment says which edge it hits.
REGIMES = [
    Regime("trips0", 5, 5, 1),  # empty range: start == stop
    Regime("trips1", 3, 4, 1),  # exactly one trip
    Regime("trips2", 3, 5, 1),  # two trips: the loop-carried values go round once
    Regime("trips37", 2, 39, 1),  # many trips (prime count)
    Regime("start-gt-stop", 30, 2, 1),  # start > stop: zero trips, not a negative count
    Regime("step3-trips13", 1, 40, 3),  # multi-element step, stop not on the grid
    Regime("step5-trips1", 6, 9, 5),  # step larger than the span: one trip
    Regime("negstep-trips13", 40, 3, -3),  # negative step, counting down
    Regime("negstep-start-lt-stop", 3, 40, -3),  # negative step, zero trips
]


def _forms():
    for placement in ("if", "else", "nested", "static"):
        for source in SOURCES:
            for iterator in ("range", "tl.range"):
                for runtime_step in (False, True):
                    yield Form(placement, source, iterator, runtime_step)
    for source in SOURCES:
        for runtime_step in (False, True):
            yield Form("while", source, "while", runtime_step)


def _supported(form: Form, regime: Regime) -> bool:
    # Compiled Triton normalises only a constexpr negative step (scf.for needs a
    # positive one); a runtime step must be positive. `while z < stop` counts up.
    if regime.step < 0:
        return not form.runtime_step and form.placement != "while"
    return True


CASES = [
    pytest.param(form, regime, id=f"{form.id}-{regime.name}")
    for form in _forms() for regime in REGIMES if _supported(form, regime)
]


def _rows(form: Form, regime: Regime) -> np.ndarray:
    """Per-program bounds rows. Loaded bounds are shifted by the program id, so a
    program that reads a neighbour's row is caught; scalar arguments can't differ."""
    rows = np.zeros((P, ck.NB), dtype=np.int32)
    for p in range(P):
        shift = 0 if form.source == "arg" else p
        start, stop = regime.start + shift, regime.stop + shift
        rows[p, ck.COL_START] = start
        rows[p, ck.COL_STOP] = stop
        rows[p, ck.COL_STEP] = regime.step
        rows[p, ck.COL_FLAG] = FLAGS[p]
        rows[p, ck.COL_STOP_HI], rows[p, ck.COL_STOP_LO] = divmod(stop, SCALE)
    return rows


def _runs_loop(placement: str, p: int) -> bool:
    if placement == "else":
        return p % 2 == 1
    if placement == "nested":
        return p != 0 and FLAGS[p] > 0
    return p != 0


def reference(form: Form, rows: np.ndarray):
    """NumPy model: ``o`` (P, 2) [trips, index sum], ``v`` (P, V) trip number per index."""
    o = np.zeros((P, 2), dtype=np.int64)
    v = np.full((P, V), POISON, dtype=np.int64)
    for p in range(P):
        start, stop, step = (int(x) for x in rows[p, :3])
        if not _runs_loop(form.placement, p):
            if form.placement == "else":
                o[p, 0] = -1  # the then-arm's marker
            continue
        trips = acc = 0
        for r in range(PASSES if form.placement == "static" else 1):
            for z in range(start + r, stop, step):
                trips += 1
                acc += z
                v[p, z] = trips
        o[p] = trips, acc
    return o, v


def launch(kernel, form: Form, regime: Regime, rows: np.ndarray, device: str):
    """Poison, guard, launch; returns (o, v, canaries) as NumPy arrays."""
    b = torch.from_numpy(rows).to(device)
    o = torch.full((P, 2), POISON, dtype=torch.int32, device=device)
    v_guarded = torch.full((P * V + 2 * G,), POISON, dtype=torch.int32, device=device)
    v_guarded[:G] = CANARY
    v_guarded[-G:] = CANARY
    v = v_guarded[G:G + P * V]
    extra = {"PASSES": PASSES} if form.placement == "static" else {}
    kernel[(P,)](
        o_ptr=o, v_ptr=v, b_ptr=b,
        zs_arg=regime.start, ze_arg=regime.stop, zstep_arg=regime.step, scale=SCALE,
        V=V, NB=ck.NB, SOURCE=form.source, TL_RANGE=form.iterator == "tl.range",
        RUNTIME_STEP=form.runtime_step, STEP=regime.step, **extra,
    )
    guarded = v_guarded.cpu().numpy()
    canaries = np.concatenate([guarded[:G], guarded[-G:]])
    return o.cpu().numpy(), guarded[G:G + P * V].reshape(P, V), canaries


def check_construct(form: Form, regime: Regime, rows: np.ndarray, o, v, canaries):
    """Raise AssertionError naming the construct, the case and the program on the
    first difference from the model (exact: every output is an integer)."""
    what = f"{form.describe()} [case {form.id}-{regime.name}]"
    o_ref, v_ref = reference(form, rows)
    assert (canaries == CANARY).all(), (
        f"{what} wrote outside its visit map: canaries now {canaries.tolist()}")
    for p in range(P):
        bounds = f"range({rows[p, 0]}, {rows[p, 1]}, {rows[p, 2]})"
        assert o[p, 0] == o_ref[p, 0], (
            f"{what} ran {o[p, 0]} trips, expected {o_ref[p, 0]} for program {p} "
            f"(bounds {bounds}; {POISON} means the program never wrote its result)")
        assert o[p, 1] == o_ref[p, 1], (
            f"{what} summed loop indices to {o[p, 1]}, expected {o_ref[p, 1]} "
            f"for program {p} (bounds {bounds})")
        bad = np.flatnonzero(v[p] != v_ref[p])
        assert bad.size == 0, (
            f"{what} visit map of program {p} differs at loop indices {bad.tolist()}: "
            f"got {v[p, bad].tolist()}, expected {v_ref[p, bad].tolist()} "
            f"(trip number stored at index z; {POISON} = never visited; bounds {bounds})")


def run_and_check(kernel, form: Form, regime: Regime, device: str):
    rows = _rows(form, regime)
    check_construct(form, regime, rows, *launch(kernel, form, regime, rows, device))


@pytest.mark.parametrize("form, regime", CASES)
def test_runtime_loop_construct(form, regime, device):
    run_and_check(PLACEMENTS[form.placement][1], form, regime, device)


# --- The checker bites: planted bugs must be rejected by the same helper.

PLANTED = [
    # stop - 1: trips2 becomes one trip on every program that takes the branch
    pytest.param(ck.planted_off_by_one_kernel, Form("if", "load", "range", True),
                 REGIMES[2], id="off-by-one-stop-load-bounds-trips2"),
    pytest.param(ck.planted_off_by_one_kernel, Form("if", "arg", "range", False),
                 REGIMES[3], id="off-by-one-stop-arg-bounds-trips37"),
    # `pid > 1`: program 1 skips the loop it should run
    pytest.param(ck.planted_wrong_branch_kernel, Form("if", "load", "range", True),
                 REGIMES[1], id="wrong-branch-load-bounds-trips1"),
    pytest.param(ck.planted_wrong_branch_kernel, Form("if", "computed", "range", False),
                 REGIMES[5], id="wrong-branch-computed-bounds-step3"),
]


@pytest.mark.parametrize("kernel, form, regime", PLANTED)
def test_checker_rejects_planted_bug(kernel, form, regime, device):
    with pytest.raises(AssertionError, match=r"runtime loop \(range, .*\) inside `if pid != 0`.* for program 1"):
        run_and_check(kernel, form, regime, device)


def test_checker_rejects_unwritten_and_stray_output():
    """Check the checker without a kernel: an unwritten result, a stray store and
    an overwritten canary must each fail with a message naming the construct."""
    form, regime = Form("if", "load", "tl.range", False), REGIMES[2]
    rows = _rows(form, regime)
    o_ref, v_ref = reference(form, rows)
    good = (o_ref.copy(), v_ref.copy(), np.full(2 * G, CANARY))
    check_construct(form, regime, rows, *good)  # the model passes its own check

    o = o_ref.copy()
    o[3] = POISON
    with pytest.raises(AssertionError, match=r"runtime loop \(tl.range.*ran -77 trips, expected 2 for program 3"):
        check_construct(form, regime, rows, o, v_ref, good[2])
    v = v_ref.copy()
    v[0, 60] = 1
    with pytest.raises(AssertionError, match=r"visit map of program 0 differs at loop indices \[60\]"):
        check_construct(form, regime, rows, o_ref, v, good[2])
    canaries = good[2].copy()
    canaries[0] = 0
    with pytest.raises(AssertionError, match="wrote outside its visit map"):
        check_construct(form, regime, rows, o_ref, v_ref, canaries)
