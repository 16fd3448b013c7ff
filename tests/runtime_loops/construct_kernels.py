"""Minimal kernels for the data-dependent loop under a runtime branch (SPEC section 4).

The construct: a loop whose bounds are only known at run time (loaded from
memory, passed as scalar arguments, or computed from both) placed inside a
branch that only some programs take. Triton lowers it to ``scf.for`` (or
``scf.while``) nested in ``scf.if``; the interpreter runs it as Python, where
``range`` receives tensors and must turn them into ints through ``__index__``.
The FlyDSL seed PR failed to trace exactly this shape
(``TypeError: 'ArithValue' object cannot be interpreted as an integer``).

Only ``@triton.jit`` code lives here; the launch, the NumPy model and the checks
are in ``test_construct.py``.

Grid: ``(P,)``; program ``pid`` owns row ``pid`` of every buffer below.

Buffers (all int32):

| name  | shape    | meaning                                                        | pad / poison |
| ----- | -------- | -------------------------------------------------------------- | ------------ |
| b     | (P, NB)  | input: per-program row ``[start, stop, step, flag, stop_hi, stop_lo, 0, 0]`` | none |
| o     | (P, 2)   | output: ``[trips taken, sum of loop indices]``; ``trips = -1`` marks the non-loop arm of the ``else`` kernel | test poisons it |
| v     | (P, V)   | output: ``v[pid, z] = trip number (1-based)`` of the last trip whose loop index was ``z`` | untouched entries keep the test's poison |

Bound sources (``SOURCE`` constexpr):

- ``"load"``: ``start, stop, step = b[pid, 0:3]`` (``tl.load``).
- ``"arg"``: ``start, stop, step`` are the runtime scalar arguments (never
  specialised: ``do_not_specialize`` keeps a value of 1 a runtime value).
- ``"computed"``: ``start = b[pid, 0]``, ``stop = b[pid, 4] * scale + b[pid, 5]``
  (a loaded value times a runtime scalar), ``step = b[pid, 2]``.

``RUNTIME_STEP`` picks the step: the runtime one from the source above, or the
constexpr ``STEP`` (which may be negative: Triton normalises a negative
constexpr step; a runtime step must be positive when compiled).
The step is written inline as ``i_zstep if RUNTIME_STEP else STEP``: assigning
it to a local first (``step = ...``) turns the constexpr into an
``arith.constant`` tensor, and a negative one then reaches ``scf.for`` without
the normalisation (seen in the TTIR of Triton 3.9).
``TL_RANGE`` picks the loop statement: ``tl.range`` or the builtin ``range``.
"""
import triton
import triton.language as tl

NB = 8  # columns of the per-program bounds row b
COL_START, COL_STOP, COL_STEP, COL_FLAG, COL_STOP_HI, COL_STOP_LO = range(6)

_RUNTIME_SCALARS = ["zs_arg", "ze_arg", "zstep_arg", "scale"]


@triton.jit
def _bounds(b_row, zs_arg, ze_arg, zstep_arg, scale, SOURCE: tl.constexpr):
    """(start, stop, runtime step) of program's loop, from the chosen source."""
    if SOURCE == "load":
        i_zs = tl.load(b_row + 0)
        i_ze = tl.load(b_row + 1)
        i_zstep = tl.load(b_row + 2)
    elif SOURCE == "arg":
        i_zs = zs_arg
        i_ze = ze_arg
        i_zstep = zstep_arg
    else:  # "computed": stop = loaded value * runtime scalar + loaded value
        i_zs = tl.load(b_row + 0)
        i_ze = tl.load(b_row + 4) * scale + tl.load(b_row + 5)
        i_zstep = tl.load(b_row + 2)
    return i_zs, i_ze, i_zstep


@triton.jit
def _record(o_ptr, pid, trips, acc):
    """What every kernel reports per program: trips taken and the sum of the loop indices."""
    tl.store(o_ptr + pid * 2, trips)
    tl.store(o_ptr + pid * 2 + 1, acc)


@triton.jit
def _trip(v_row, z, trips, acc):
    """Body of every loop: count the trip, add the index, store at the index."""
    trips += 1
    tl.store(v_row + z, trips)
    return trips, acc + z


@triton.jit(do_not_specialize=_RUNTIME_SCALARS)
def loop_in_if_kernel(
    o_ptr,  # (P, 2) int32: output [trips, index sum]
    v_ptr,  # (P, V) int32: output, v[pid, z] = trip number
    b_ptr,  # (P, NB) int32: input bounds rows
    zs_arg, ze_arg, zstep_arg, scale,  # int32 runtime scalars
    V: tl.constexpr, NB: tl.constexpr, SOURCE: tl.constexpr,
    TL_RANGE: tl.constexpr, RUNTIME_STEP: tl.constexpr, STEP: tl.constexpr,
):
    """Loop in the body of ``if pid != 0:``; program 0 skips it."""
    pid = tl.program_id(0)
    v_row = v_ptr + pid * V
    i_zs, i_ze, i_zstep = _bounds(b_ptr + pid * NB, zs_arg, ze_arg, zstep_arg, scale, SOURCE)
    trips = 0
    acc = 0
    if pid != 0:
        if TL_RANGE:
            for z in tl.range(i_zs, i_ze, i_zstep if RUNTIME_STEP else STEP):
                trips, acc = _trip(v_row, z, trips, acc)
        else:
            for z in range(i_zs, i_ze, i_zstep if RUNTIME_STEP else STEP):
                trips, acc = _trip(v_row, z, trips, acc)
    _record(o_ptr, pid, trips, acc)


@triton.jit(do_not_specialize=_RUNTIME_SCALARS)
def loop_in_else_kernel(
    o_ptr,  # (P, 2) int32: output [trips, index sum]; trips = -1 on even programs
    v_ptr,  # (P, V) int32: output, v[pid, z] = trip number
    b_ptr,  # (P, NB) int32: input bounds rows
    zs_arg, ze_arg, zstep_arg, scale,  # int32 runtime scalars
    V: tl.constexpr, NB: tl.constexpr, SOURCE: tl.constexpr,
    TL_RANGE: tl.constexpr, RUNTIME_STEP: tl.constexpr, STEP: tl.constexpr,
):
    """Loop in the ``else`` of ``if pid % 2 == 0:``; even programs take the
    then-arm, which only writes the marker ``trips = -1``."""
    pid = tl.program_id(0)
    v_row = v_ptr + pid * V
    i_zs, i_ze, i_zstep = _bounds(b_ptr + pid * NB, zs_arg, ze_arg, zstep_arg, scale, SOURCE)
    trips = 0
    acc = 0
    if pid % 2 == 0:
        trips = -1
    else:
        if TL_RANGE:
            for z in tl.range(i_zs, i_ze, i_zstep if RUNTIME_STEP else STEP):
                trips, acc = _trip(v_row, z, trips, acc)
        else:
            for z in range(i_zs, i_ze, i_zstep if RUNTIME_STEP else STEP):
                trips, acc = _trip(v_row, z, trips, acc)
    _record(o_ptr, pid, trips, acc)


@triton.jit(do_not_specialize=_RUNTIME_SCALARS)
def loop_in_nested_if_kernel(
    o_ptr,  # (P, 2) int32: output [trips, index sum]
    v_ptr,  # (P, V) int32: output, v[pid, z] = trip number
    b_ptr,  # (P, NB) int32: input bounds rows; b[pid, 3] is the inner flag
    zs_arg, ze_arg, zstep_arg, scale,  # int32 runtime scalars
    V: tl.constexpr, NB: tl.constexpr, SOURCE: tl.constexpr,
    TL_RANGE: tl.constexpr, RUNTIME_STEP: tl.constexpr, STEP: tl.constexpr,
):
    """Loop inside ``if pid != 0:`` then ``if flag > 0:`` (flag loaded per program)."""
    pid = tl.program_id(0)
    v_row = v_ptr + pid * V
    i_zs, i_ze, i_zstep = _bounds(b_ptr + pid * NB, zs_arg, ze_arg, zstep_arg, scale, SOURCE)
    flag = tl.load(b_ptr + pid * NB + 3)
    trips = 0
    acc = 0
    if pid != 0:
        if flag > 0:
            if TL_RANGE:
                for z in tl.range(i_zs, i_ze, i_zstep if RUNTIME_STEP else STEP):
                    trips, acc = _trip(v_row, z, trips, acc)
            else:
                for z in range(i_zs, i_ze, i_zstep if RUNTIME_STEP else STEP):
                    trips, acc = _trip(v_row, z, trips, acc)
    _record(o_ptr, pid, trips, acc)


@triton.jit(do_not_specialize=_RUNTIME_SCALARS)
def loop_in_static_range_kernel(
    o_ptr,  # (P, 2) int32: output [trips, index sum] over all passes
    v_ptr,  # (P, V) int32: output, v[pid, z] = trip number (later passes overwrite)
    b_ptr,  # (P, NB) int32: input bounds rows
    zs_arg, ze_arg, zstep_arg, scale,  # int32 runtime scalars
    V: tl.constexpr, NB: tl.constexpr, SOURCE: tl.constexpr,
    TL_RANGE: tl.constexpr, RUNTIME_STEP: tl.constexpr, STEP: tl.constexpr,
    PASSES: tl.constexpr,
):
    """``for r in tl.static_range(PASSES): if pid != 0: for z in range(start + r, stop, step)``."""
    pid = tl.program_id(0)
    v_row = v_ptr + pid * V
    i_zs, i_ze, i_zstep = _bounds(b_ptr + pid * NB, zs_arg, ze_arg, zstep_arg, scale, SOURCE)
    trips = 0
    acc = 0
    for r in tl.static_range(PASSES):
        if pid != 0:
            if TL_RANGE:
                for z in tl.range(i_zs + r, i_ze, i_zstep if RUNTIME_STEP else STEP):
                    trips, acc = _trip(v_row, z, trips, acc)
            else:
                for z in range(i_zs + r, i_ze, i_zstep if RUNTIME_STEP else STEP):
                    trips, acc = _trip(v_row, z, trips, acc)
    _record(o_ptr, pid, trips, acc)


@triton.jit(do_not_specialize=_RUNTIME_SCALARS)
def while_in_if_kernel(
    o_ptr,  # (P, 2) int32: output [trips, index sum]
    v_ptr,  # (P, V) int32: output, v[pid, z] = trip number
    b_ptr,  # (P, NB) int32: input bounds rows
    zs_arg, ze_arg, zstep_arg, scale,  # int32 runtime scalars
    V: tl.constexpr, NB: tl.constexpr, SOURCE: tl.constexpr,
    TL_RANGE: tl.constexpr, RUNTIME_STEP: tl.constexpr, STEP: tl.constexpr,
):
    """``if pid != 0: z = start; while z < stop: ...; z += step`` (step > 0).
    TL_RANGE is accepted for a uniform signature and ignored."""
    pid = tl.program_id(0)
    v_row = v_ptr + pid * V
    i_zs, i_ze, i_zstep = _bounds(b_ptr + pid * NB, zs_arg, ze_arg, zstep_arg, scale, SOURCE)
    trips = 0
    acc = 0
    if pid != 0:
        z = i_zs
        while z < i_ze:
            trips, acc = _trip(v_row, z, trips, acc)
            z += i_zstep if RUNTIME_STEP else STEP
    _record(o_ptr, pid, trips, acc)


# --- Planted bugs: same signature as loop_in_if_kernel, each wrong on purpose.
# The suite must reject them through the same checker (test_checker_rejects_*).

@triton.jit(do_not_specialize=_RUNTIME_SCALARS)
def planted_off_by_one_kernel(
    o_ptr, v_ptr, b_ptr, zs_arg, ze_arg, zstep_arg, scale,
    V: tl.constexpr, NB: tl.constexpr, SOURCE: tl.constexpr,
    TL_RANGE: tl.constexpr, RUNTIME_STEP: tl.constexpr, STEP: tl.constexpr,
):
    """BUG on purpose: the loop stops one early (``stop - 1``)."""
    pid = tl.program_id(0)
    v_row = v_ptr + pid * V
    i_zs, i_ze, i_zstep = _bounds(b_ptr + pid * NB, zs_arg, ze_arg, zstep_arg, scale, SOURCE)
    trips = 0
    acc = 0
    if pid != 0:
        for z in range(i_zs, i_ze - 1, i_zstep if RUNTIME_STEP else STEP):
            trips, acc = _trip(v_row, z, trips, acc)
    _record(o_ptr, pid, trips, acc)


@triton.jit(do_not_specialize=_RUNTIME_SCALARS)
def planted_wrong_branch_kernel(
    o_ptr, v_ptr, b_ptr, zs_arg, ze_arg, zstep_arg, scale,
    V: tl.constexpr, NB: tl.constexpr, SOURCE: tl.constexpr,
    TL_RANGE: tl.constexpr, RUNTIME_STEP: tl.constexpr, STEP: tl.constexpr,
):
    """BUG on purpose: the branch is ``pid > 1``, so program 1 skips the loop."""
    pid = tl.program_id(0)
    v_row = v_ptr + pid * V
    i_zs, i_ze, i_zstep = _bounds(b_ptr + pid * NB, zs_arg, ze_arg, zstep_arg, scale, SOURCE)
    trips = 0
    acc = 0
    if pid > 1:
        for z in range(i_zs, i_ze, i_zstep if RUNTIME_STEP else STEP):
            trips, acc = _trip(v_row, z, trips, acc)
    _record(o_ptr, pid, trips, acc)
