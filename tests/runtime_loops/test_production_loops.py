"""Regression suite, production half: the loops under runtime branches of the real
kernels (SPEC section 4), driven through the public API (``fused_moe.moe_sorting``,
``fused_moe.route`` with ``path="fused"`` and ``"unfused"``).

``test_construct.py`` pins the bare construct; this file pins the places where the
production kernels have it, each at zero, one and many trips:

- ``zero_rows`` (fused_moe/sorting_kernels.py): moe_buf rows [0, M) zeroed, M read on
  the device, by programs ``pid >= 1`` of ``moe_sorting_kernel`` (T up to the
  ``sort_single_program`` threshold), programs ``pid >= num_tiles`` of
  ``tile_histogram_kernel`` (the tiled sort above it), programs ``pid >= num_gate_tiles``
  of ``topk_gating_kernel`` (unfused route) and of ``fused_route_kernel``;
- ``sort_assignments``, run by program 0 of ``moe_sorting_kernel`` and by program 0 of
  ``fused_route_kernel`` on a single gating tile of more than ``fused_register_sort``
  rows (smaller tiles sort from registers, with no loop): the chunk loops
  ``for start in range(0, M*K, BLOCK_A)`` (when T*K exceeds one chunk; else SINGLE_CHUNK);
- ``fill_padding``: ``for z0 in range(0, U - 1, PAD_W)``, masked to each expert's
  padding slots ``[starts + counts, starts + padded)`` (counts known only at run time);
- the tiled sort (``moe_sorting`` above the threshold, every unfused route): every
  ``tile_place_kernel`` program sums the tile histograms itself under ``if scanned:``'s
  else branch, ``for r0 in range(0, num_tiles, SCAN_ROWS)``, or, past SELF_SCAN_TILES
  tiles, ``tile_scan_kernel`` scans them by columns, ``for r0 in range(0, num_tiles,
  ROWS_PER_STEP)``; program ``num_tiles`` writes the layout;
- ``fused_route_kernel``: the last-arriver branch ``if ticket == num_gate_tiles - 1:``
  (taken when T needs more than one gating tile), holding ``place_presorted``: the scans
  ``for r0 in range(0, num_tiles, SCAN_ROWS)`` and the placement
  ``for q0 in range(0, num_tiles * BLOCK_N, PLACE_BLOCK)``;
- ``fill_range`` (``layout="vllm"`` only), run by whichever program writes the padding (every
  sorter site above): ``for o0 in range(first, end, TAIL_BLOCK)``, first = the padded total
  P (sorted_token_ids) or P // U (expert_ids), known only at run time, end = the buffer's length.

Every output goes through the NumPy oracle's checkers (``check_sorting`` /
``check_route`` with ``before=`` snapshots of poisoned, canaried buffers, and
``check_moe_buf`` byte by byte). Each hand-picked case first asserts that it still
hits the path and trip count its id promises (a block-size or threshold change must
fail loudly, not quietly turn the "two trips" case into a one-trip case). The
``test_planted_*`` tests prove the checking helpers reject broken output.
"""
from typing import NamedTuple

import numpy as np
import pytest
import torch
import triton

import fused_moe
import oracles
from fused_moe import geometry
from fused_moe.buffers import arrival_counter
from fused_moe.geometry import DISPATCH_THRESHOLDS
from fused_moe.validation import moe_buf_arg
from fused_moe.sorting_kernels import TAIL_BLOCK
from tests.kernels.harness import (canaried_vllm_route_out, canaried_vllm_sorting_out, check_vllm_sorting,
                                   expected_vllm, fresh_seed, poisoned_route_out, poisoned_sorting_out, random_logits,
                                   random_moe_buf, snapshot, upcast)

pytestmark = pytest.mark.runtime_loops

ZB = geometry.ZERO_BLOCK  # moe_buf words per step of zero_rows' unmasked loop
SINGLE = DISPATCH_THRESHOLDS["sort_single_program"]  # moe_sorting / unfused: one sorting program up to this T
ENTRIES = ["moe_sorting", "route-fused", "route-unfused"]
ROUTE_PATHS = {"route-fused": "fused", "route-unfused": "unfused"}


# --------------------------------------------------------------------------- where each construct runs


def _tiled(entry, T):
    """The tiled sort: every unfused route, and moe_sorting past the single-program threshold."""
    return entry == "route-unfused" or (entry == "moe_sorting" and not geometry.single_program_sort(T))


def _gate_tiles(E, K, T):
    return geometry.fused_tile(T, K, E).tiles


def zeroing_construct(entry, T, m_on_device):
    if entry == "route-fused":
        site = "fused_route_kernel programs pid >= num_gate_tiles"
    elif entry == "route-unfused":
        site = "topk_gating_kernel programs pid >= num_gate_tiles"
    elif _tiled(entry, T):
        site = "tile_histogram_kernel programs pid >= num_tiles (tiled sort)"
    else:
        site = "moe_sorting_kernel programs pid >= 1"
    via = " (unfused route)" if entry == "route-unfused" else ""
    m = "M on device" if m_on_device else "M a host int"
    return f"moe_buf zeroing loop (rows [0, M) with {m}) in {site}{via}"


def sorter_site(entry, T, E, K):
    if entry == "route-fused":
        return ("fused_route_kernel, last arriver (place_presorted)" if _gate_tiles(E, K, T) > 1
                else "fused_route_kernel, single gating tile (program 0)")
    via = " (unfused route)" if entry == "route-unfused" else ""
    if _tiled(entry, T):
        return f"tile_place_kernel, every tile in parallel, layout by program num_tiles (tiled sort){via}"
    return f"moe_sorting_kernel program 0{via}"


PADDING_LOOP = "per-expert padding fill `for z0 in range(0, U - 1, PAD_W)` masked to [starts+counts, starts+padded)"
CHUNK_LOOPS = "chunk loops `for start in range(0, M*K, BLOCK_A)` of sort_assignments"
SCAN_LOOP = "each placing program's histogram sum `for r0 in range(0, num_tiles, SCAN_ROWS)` under `if scanned:`"
COLUMN_SCAN_LOOP = "tile_scan_kernel's column scan `for r0 in range(0, num_tiles, ROWS_PER_STEP)`"
SORT_BESIDE_ZEROING = "the sort beside the zeroing programs"
LAST_ARRIVER = "last-arriver branch `if ticket == num_gate_tiles - 1:` of fused_route_kernel"


def sort_construct(loop, entry, T, E, K):
    return f"{loop} in {sorter_site(entry, T, E, K)}"


# --------------------------------------------------------------------------- running and checking


class Launch(NamedTuple):
    out: tuple  # SortingResult or RouteResult, capacity-sized with canaries
    report: oracles.CheckReport  # check_sorting / check_route with before=
    ids: np.ndarray  # the topk_ids the sort saw (for route: the kernel's own gating output)
    buf_before: torch.Tensor | None  # host copy of moe_buf before the call
    buf_after: torch.Tensor | None
    counter: tuple[int, int] | None  # fused route: arrival counter before and after the call


def _random_ids(rng, T, K, E):
    return np.stack([rng.permutation(E)[:K] for _ in range(T)]).reshape(T, K).astype(np.int32)


def designed_logits(ids, E, rng, device):
    """float32 logits whose top-k (in slot order) is exactly ``ids``: chosen experts get
    8, 7, ... and everything else is below -2."""
    T, K = ids.shape
    x = rng.uniform(-4.0, -2.0, (T, E)).astype(np.float32)
    for j in range(K):
        x[np.arange(T), ids[:, j]] = 8.0 - j
    return torch.from_numpy(x).to(device)


def launch(entry, rng, device, *, T, K, E, U, ids=None, logits=None, mask=None, M=None, m_on_device=False,
           moe_buf=None, out=None):
    """Poison outputs, snapshot them and moe_buf, call the public API, run the oracle checker."""
    num_local = torch.tensor([M], dtype=torch.int32, device=device) if m_on_device else M
    mask_t = None if mask is None else torch.from_numpy(mask).to(device)
    buf_before = None if moe_buf is None else moe_buf.cpu().clone()
    counter = None
    if entry == "moe_sorting":
        ids = _random_ids(rng, T, K, E) if ids is None else ids
        weights = rng.standard_normal((T, K)).astype(np.float32)
        out = poisoned_sorting_out(T, K, E, U, device) if out is None else out
        before = snapshot(out)
        fused_moe.moe_sorting(torch.from_numpy(ids).to(device), torch.from_numpy(weights).to(device), E,
                              unit_size=U, expert_mask=mask_t, num_local_tokens=num_local, moe_buf=moe_buf,
                              out=out)
        report = oracles.check_sorting(out, ids, weights, E, unit_size=U, expert_mask=mask, num_local_tokens=M,
                                       before=before)
    else:
        if logits is None:
            logits = random_logits(rng, T, E, torch.bfloat16, device)
        out = poisoned_route_out(T, K, E, U, device) if out is None else out
        before = snapshot(out)
        count = arrival_counter(logits.device)  # the one route() uses: keyed by (device, stream)
        c0 = int(count.item())
        fused_moe.route(logits, K, unit_size=U, expert_mask=mask_t, num_local_tokens=num_local, moe_buf=moe_buf,
                        path=ROUTE_PATHS[entry], out=out)
        if entry == "route-fused":
            counter = (c0, int(count.item()))
        report = oracles.check_route(out, upcast(logits), K, unit_size=U, expert_mask=mask, num_local_tokens=M,
                                     before=before)
        ids = out.topk_ids.cpu().numpy()
    buf_after = None if moe_buf is None else moe_buf.cpu()
    return Launch(out, report, ids, buf_before, buf_after, counter)


def expect_ok(report, construct, case, seed, detail=""):
    assert report.ok, f"{construct} [case {case}] seed={seed} {detail}\n{report}"


def assert_zeroing(construct, case, seed, before, after, M, detail=""):
    """Rows [0, M) all zero bytes, rows >= M bit-identical to ``before`` (oracles.check_moe_buf)."""
    expect_ok(oracles.check_moe_buf(before, after, M), construct, case, seed, detail)


def assert_counter(counter, case, seed):
    """The arrival counter is zero before the call and reset to zero by the last arriver."""
    c0, c1 = counter
    assert (c0, c1) == (0, 0), (
        f"{LAST_ARRIVER} [case {case}] seed={seed}: arrival counter was {c0} before the call and {c1} after, "
        f"expected 0 and 0 (nonzero after = no program took the branch, so nobody reset it)")


class ZeroPlan(NamedTuple):
    """How zero_rows splits words [0, M * row_words) over the zeroing programs."""
    row_words: int
    words: int
    programs: int
    trips: tuple  # unmasked-loop trips per zeroing program
    tail: int  # words zeroed by the masked tail store of part 0

    def __str__(self):
        return (f"({self.words} words = M x {self.row_words} words/row; {self.programs} zeroing program(s), "
                f"unmasked trips per program {list(self.trips)}, tail {self.tail} words)")


def zero_plan(buf, T, M, device):
    """Model of zero_rows' partition, for labelling cases (the output is checked by the oracle)."""
    _, row_words = moe_buf_arg(buf, T, buf)  # the word view the API picks
    parts = geometry.zero_programs(T, row_words, torch.device(device))
    words = M * row_words
    n_full = words // ZB * ZB
    trips = tuple(len(range(p * ZB, n_full, parts * ZB)) for p in range(parts))
    return ZeroPlan(row_words, words, parts, trips, words - n_full)


# --------------------------------------------------------------------------- moe_buf zeroing: M and row sizes


class ZeroShape(NamedTuple):
    name: str
    T: int
    K: int
    E: int
    U: int
    Ms: tuple  # (id, M) pairs


ZERO_SHAPES = [
    # moe_sorting: moe_sorting_kernel (one sorting program); unfused: the gating launch; fused: one gating tile
    ZeroShape("T13", 13, 4, 32, 8, (("M0", 0), ("M1", 1), ("M6", 6), ("Mall", 13))),
    # moe_sorting: the tiled sort (zeroing in tile_histogram_kernel); unfused: the gating launch; fused: 5 tiles
    ZeroShape("T67", 67, 1, 8, 4, (("M0", 0), ("M1", 1), ("M33", 33), ("Mall", 67))),
]
# M0: zero rows, zero trips, fully masked tail, every row untouched; M1: one row (a host int 1
# is also what Triton specialises into a constant); in between: rows >= M left alone; Mall: every row.
ROW_KINDS = [
    ("u8x3", torch.uint8, (3,)),  # 3-byte rows: uint8 words
    ("bf16x7", torch.bfloat16, (7,)),  # 14-byte rows: int16 words
    ("f32x5", torch.float32, (5,)),  # 20-byte rows: int32 words, not a multiple of 16 bytes
]
ZERO_CASES = [
    pytest.param(s, entry, m, on_dev, dtype, row,
                 id=f"zero-rows-{m_name}-{'device' if on_dev else 'host'}-{r_name}-{s.name}-{entry}")
    for s in ZERO_SHAPES for entry in ENTRIES for m_name, m in s.Ms for on_dev in (False, True)
    for r_name, dtype, row in ROW_KINDS if s.name == "T13" or r_name == "bf16x7"
]


@pytest.mark.parametrize("s,entry,M,m_on_device,dtype,row", ZERO_CASES)
def test_zero_rows_local_tokens(s, entry, M, m_on_device, dtype, row, device, request):
    case = request.node.callspec.id
    assert _tiled(entry, s.T) == (entry == "route-unfused" or (s.name == "T67" and entry == "moe_sorting")), (
        f"case {case} no longer hits its sorting path (sort_single_program threshold is {SINGLE})")
    seed = fresh_seed()
    rng = np.random.default_rng(seed)
    buf = random_moe_buf(rng, s.T, row, dtype, device)
    plan = zero_plan(buf, s.T, M, device)
    run = launch(entry, rng, device, T=s.T, K=s.K, E=s.E, U=s.U, M=M, m_on_device=m_on_device, moe_buf=buf)
    assert_zeroing(zeroing_construct(entry, s.T, m_on_device), case, seed, run.buf_before, run.buf_after, M,
                   str(plan))
    expect_ok(run.report, sort_construct(SORT_BESIDE_ZEROING, entry, s.T, s.E, s.K), case, seed)


# --------------------------------------------------------------------------- moe_buf zeroing: block edges


class EdgeCase(NamedTuple):
    name: str
    dtype: torch.dtype
    row: tuple
    T: int
    M: int
    trips: int  # unmasked-loop trips of zeroing program 0
    tail: int  # words in the masked tail


def edge_case(name, device):
    cap = geometry.zero_programs(2**30, 1, torch.device(device))  # zeroing programs for a large buffer
    cases = [
        # one uint8 row of ZB-1 bytes: the unmasked loop runs 0 trips, the tail zeroes ZB-1 words
        EdgeCase("zero-block-minus-1", torch.uint8, (ZB - 1,), 3, 1, 0, ZB - 1),
        # 4 rows of 2*ZB bytes = ZB/4 int64 words each: exactly one block, 1 trip and an empty tail
        EdgeCase("zero-block-exact", torch.float32, (ZB // 2,), 6, 4, 1, 0),
        # one row of ZB+1 bf16 (int16 words): 1 trip and a 1-word tail
        EdgeCase("zero-block-plus-1", torch.bfloat16, (ZB + 1,), 3, 1, 1, 1),
        # cap+1 uint8 rows of ZB+1 words over `cap` programs: program 0 runs 2 trips, others 1, then the tail
        EdgeCase("zero-block-two-trips", torch.uint8, (ZB + 1,), cap + 2, cap + 1, 2, cap + 1),
    ]
    return next(c for c in cases if c.name == name)


EDGE_NAMES = ["zero-block-minus-1", "zero-block-exact", "zero-block-plus-1", "zero-block-two-trips"]


@pytest.mark.parametrize("entry", ["moe_sorting", "route-fused"])
@pytest.mark.parametrize("m_on_device", [False, True], ids=["host", "device"])
@pytest.mark.parametrize("edge", EDGE_NAMES)
def test_zero_rows_block_edges(edge, m_on_device, entry, device, request):
    case = request.node.callspec.id
    e = edge_case(edge, device)
    seed = fresh_seed()
    rng = np.random.default_rng(seed)
    buf = random_moe_buf(rng, e.T, e.row, e.dtype, device)
    plan = zero_plan(buf, e.T, e.M, device)
    assert (plan.trips[0], plan.tail) == (e.trips, e.tail), (
        f"case {case} no longer hits its edge (geometry.ZERO_BLOCK or zero_programs changed?): expected "
        f"{e.trips} trips for program 0 and a {e.tail}-word tail, the plan is {plan}")
    run = launch(entry, rng, device, T=e.T, K=2, E=8, U=4, M=e.M, m_on_device=m_on_device, moe_buf=buf)
    assert_zeroing(zeroing_construct(entry, e.T, m_on_device), case, seed, run.buf_before, run.buf_after, e.M,
                   str(plan))
    expect_ok(run.report, sort_construct(SORT_BESIDE_ZEROING, entry, e.T, 8, 2), case, seed)


# --------------------------------------------------------------------------- per-expert padding


def _ids_zero_pad(T):
    # rows 4i..4i+3 use experts 2i and 2i+1: every expert count is 4 (a multiple of U=4)
    return np.array([[2 * (t // 4), 2 * (t // 4) + 1] for t in range(T)], dtype=np.int32)


def _ids_u_minus_1(T):
    # expert 0 in every row (count 9 = 1 mod 8), expert t+1 once: every count is 1 mod U=8
    return np.array([[0, t + 1] for t in range(T)], dtype=np.int32)


def _ids_singletons(T):
    # rows use experts 2t and 2t+1: every count is 1, so U-1 padding slots each
    return np.arange(2 * T, dtype=np.int32).reshape(T, 2)


def _ids_tiled_u_minus_1(T):
    # 67 rows, K=1: experts 0..5 nine times, expert 6 thirteen times: every count is 1 mod U=4
    assert T == 67
    return np.repeat(np.arange(7, dtype=np.int32), [9, 9, 9, 9, 9, 9, 13]).reshape(T, 1)


class PadCase(NamedTuple):
    name: str
    T: int
    K: int
    E: int
    U: int
    ids: object  # callable(T) -> ids, or None for random
    mask: object  # np.ndarray or None
    M: object  # None (M = T) or an int passed as a device tensor
    pads: frozenset  # padding slots of each expert with assignments
    fill_trips: int  # trips of the fill_padding loop: ceil((U - 1) / PAD_W)


PAD_CASES = [
    PadCase("padding-0-slots", 8, 2, 16, 4, _ids_zero_pad, None, None, frozenset({0}), 1),
    PadCase("padding-U-minus-1", 9, 2, 16, 8, _ids_u_minus_1, None, None, frozenset({7}), 1),
    # E=256 caps PAD_W at 16 < U-1 = 31: two fill steps, the second one slot short of full
    PadCase("padding-U-minus-1-two-steps", 9, 2, 256, 32, _ids_singletons, None, None, frozenset({31}), 2),
    # T above sort_single_program: the fill runs in tile_place_kernel's layout program (moe_sorting, unfused)
    PadCase("padding-U-minus-1-tiled", 67, 1, 8, 4, _ids_tiled_u_minus_1, None, None, frozenset({3}), 1),
    PadCase("padding-U1-none", 7, 3, 8, 1, None, None, None, frozenset({0}), 0),  # U = 1: the fill loop is empty
    PadCase("padding-total0-masked", 6, 2, 8, 4, None, np.zeros(8, np.int32), None, frozenset(), 1),  # all masked
    PadCase("padding-total0-M0-device", 6, 2, 8, 4, None, None, 0, frozenset(), 1),  # M = 0 read on the device
]


def _padding_regime(c, ids):
    M = c.T if c.M is None else c.M
    e = ids[:M].reshape(-1).astype(np.int64)
    keep = (e >= 0) & (e < c.E)
    if c.mask is not None:
        keep &= c.mask[np.clip(e, 0, c.E - 1)] != 0
    counts = np.bincount(e[keep], minlength=c.E)
    pads = frozenset(int(p) for p in (-counts[counts > 0]) % c.U)
    total = int(((counts + c.U - 1) // c.U * c.U).sum())
    pad_w = geometry.pad_width(c.U, triton.next_power_of_2(c.E))
    return pads, -(-(c.U - 1) // pad_w), total


@pytest.mark.parametrize("entry", ENTRIES)
@pytest.mark.parametrize("c", PAD_CASES, ids=[c.name for c in PAD_CASES])
def test_padding_fill(c, entry, device, request):
    case = request.node.callspec.id
    seed = fresh_seed()
    rng = np.random.default_rng(seed)
    ids = c.ids(c.T) if c.ids is not None else _random_ids(rng, c.T, c.K, c.E)
    pads, trips, total = _padding_regime(c, ids)
    assert (pads, trips) == (c.pads, c.fill_trips), (
        f"case {case} no longer hits its edge: per-expert padding {sorted(pads)}, {trips} fill trips "
        f"(total {total}), expected {sorted(c.pads)} and {c.fill_trips} (geometry.pad_width changed?)")
    logits = designed_logits(ids, c.E, rng, device) if entry != "moe_sorting" else None
    run = launch(entry, rng, device, T=c.T, K=c.K, E=c.E, U=c.U, ids=ids, logits=logits, mask=c.mask, M=c.M,
                 m_on_device=c.M is not None)
    if entry != "moe_sorting":
        assert np.array_equal(run.ids, ids), (
            f"case {case}: gating did not pick the designed experts, so the padding edge is not hit\n"
            f"{oracles.check_gating(run.out.topk_weights, run.out.topk_ids, upcast(logits), c.K)}")
    expect_ok(run.report, sort_construct(PADDING_LOOP, entry, c.T, c.E, c.K), case, seed,
              f"(total {total} slots, {trips} fill trips, per-expert padding {sorted(pads)})")


def test_padding_total0_dropped_ids(device):
    """Every id out of [0, E): no assignment is kept, total = 0, every fill store masked off
    (only moe_sorting can be given such ids; route's gating never produces them)."""
    case = "padding-total0-dropped"
    seed = fresh_seed()
    rng = np.random.default_rng(seed)
    T, K, E, U = 5, 3, 8, 4
    ids = rng.choice(np.array([-1, E, E + 1000, -(2**31)], dtype=np.int32), size=(T, K))
    run = launch("moe_sorting", rng, device, T=T, K=K, E=E, U=U, ids=ids)
    expect_ok(run.report, sort_construct(PADDING_LOOP, "moe_sorting", T, E, K), case, seed, "(total 0)")


# --------------------------------------------------------------------------- chunk loops over M*K assignments


class ChunkCase(NamedTuple):
    name: str
    entries: tuple  # where sort_assignments runs in one program for this T
    T: int
    K: int
    E: int
    M: object  # None (M = T) or an int passed as a device tensor
    trips: object  # chunk-loop trips ceil(M*K / BLOCK_A); None: SINGLE_CHUNK (T*K <= BLOCK_A), no loop


_UNFUSED = ("moe_sorting",)  # T <= sort_single_program (the unfused route always sorts by tiles)
_ONE_PROGRAM = ("moe_sorting", "route-fused")  # with one gating tile
CHUNK_CASES = [
    # T*K <= one chunk: SINGLE_CHUNK loads it once, no loop (the path beside the loop)
    ChunkCase("chunks-single-below", _ONE_PROGRAM, 5, 2, 8, None, None),  # 10 assignments, chunk 16
    ChunkCase("chunks-single-at-max", _UNFUSED, 32, 8, 16, None, None),  # 256 = MAX_SORT_CHUNK exactly
    ChunkCase("chunks-single-M0-device", _ONE_PROGRAM, 5, 2, 8, 0, None),  # M = 0 on the device
    # T*K above one chunk: both chunk loops run, M*K from the device sets their trip count
    ChunkCase("chunks-loop-0-trips-M0-device", _UNFUSED, 33, 8, 16, 0, 0),  # M*K = 0
    ChunkCase("chunks-loop-1-partial-M5-device", _UNFUSED, 33, 8, 16, 5, 1),  # M*K = 40 < 256
    ChunkCase("chunks-loop-1-full-M32-device", _UNFUSED, 33, 8, 16, 32, 1),  # M*K = 256 exactly
    ChunkCase("chunks-loop-2-trips", _UNFUSED, 33, 8, 16, None, 2),  # 264: the last trip has 8
    ChunkCase("chunks-loop-3-trips", _UNFUSED, 61, 9, 16, None, 3),  # 549: the last trip has 37
    # fused: sort_assignments runs only on a single gating tile (T <= 16), so a wide K
    ChunkCase("chunks-loop-0-trips-M0-device-wideK", ("route-fused",), 16, 17, 32, 0, 0),  # 272 > 256, M*K = 0
    ChunkCase("chunks-loop-1-trip-M15-device-wideK", ("route-fused",), 16, 17, 32, 15, 1),  # M*K = 255
    ChunkCase("chunks-loop-2-trips-wideK", ("route-fused",), 16, 17, 32, None, 2),  # 272
    ChunkCase("chunks-loop-3-trips-wideK", ("route-fused",), 16, 48, 64, None, 3),  # 768
]
CHUNK_PARAMS = [pytest.param(c, entry, id=f"{c.name}-{entry}") for c in CHUNK_CASES for entry in c.entries]


@pytest.mark.parametrize("c,entry", CHUNK_PARAMS)
def test_chunk_loops(c, entry, device, request):
    case = request.node.callspec.id
    M = c.T if c.M is None else c.M
    # the chunk the launch gets: the fused tile's (sized from the tile's buckets) or moe_sorting's
    chunk = geometry.fused_tile(c.T, c.K, c.E).block_a if entry == "route-fused" else geometry.sort_chunk(c.T, c.K)
    single_program = (_gate_tiles(c.E, c.K, c.T) == 1) if entry == "route-fused" else not _tiled(entry, c.T)
    trips = None if c.T * c.K <= chunk else -(-(M * c.K) // chunk)
    assert single_program and trips == c.trips, (
        f"case {case} no longer hits its edge: sort_assignments in one program: {single_program}; "
        f"{M * c.K} of {c.T * c.K} assignments in chunks of {chunk}: {trips} loop trips (None: SINGLE_CHUNK), "
        f"expected {c.trips} (config or thresholds changed?)")
    seed = fresh_seed()
    run = launch(entry, np.random.default_rng(seed), device, T=c.T, K=c.K, E=c.E, U=4, M=c.M,
                 m_on_device=c.M is not None)
    loop = CHUNK_LOOPS if trips is not None else "single-chunk branch (SINGLE_CHUNK) of sort_assignments"
    expect_ok(run.report, sort_construct(loop, entry, c.T, c.E, c.K), case, seed,
              f"({M * c.K} assignments, chunk {chunk}, {trips} loop trips)")
    if run.counter is not None:
        assert_counter(run.counter, case, seed)


# --------------------------------------------------------------------------- fused route: presorted tiles


class PresortCase(NamedTuple):
    name: str
    T: int
    K: int
    E: int
    M: object
    scan_trips: int  # `for r0 in range(0, num_tiles, SCAN_ROWS)` (twice) in place_presorted
    place_trips: int  # `for q0 in range(0, num_tiles * BLOCK_N, PLACE_BLOCK)` in place_presorted


PRESORT_CASES = [
    PresortCase("presorted-T17", 17, 8, 256, None, 1, 1),  # 2 tiles of 128 keys: one step each
    PresortCase("presorted-T33-M0-device", 33, 8, 256, 0, 1, 1),  # every tile empty: total 0, nothing placed
    PresortCase("presorted-T33-M17-device", 33, 8, 256, 17, 1, 1),  # tile 2 empty, tile 1 one row
    PresortCase("presorted-place-2-trips", 129, 8, 256, None, 1, 2),  # 9 tiles x 128 keys > PLACE_BLOCK
    PresortCase("presorted-scan-3-trips", 3, 2, 4096, None, 3, 1),  # E=4096: 1-row tiles, SCAN_ROWS = 1
]


def _presort_plan(T, K, E):
    """The fused launch geometry.fused_tile decides: (tiles, scan trips, placement trips)."""
    tile = geometry.fused_tile(T, K, E)
    return (tile.tiles, -(-tile.tiles // tile.scan_rows),
            -(-(tile.tiles * tile.block_n) // geometry.PLACE_BLOCK))


@pytest.mark.parametrize("c", PRESORT_CASES, ids=[c.name for c in PRESORT_CASES])
def test_presorted_placement(c, device, request):
    """Several gating tiles: each presorts its tile, the last arriver scans the tile
    histograms and places every key (loops bounded by the runtime num_gate_tiles)."""
    case = request.node.callspec.id
    tiles, scan_trips, place_trips = _presort_plan(c.T, c.K, c.E)
    assert tiles > 1 and (scan_trips, place_trips) == (c.scan_trips, c.place_trips), (
        f"case {case} no longer hits its edge: {tiles} tiles, scan {scan_trips} and place {place_trips} trips, "
        f"expected several tiles, {c.scan_trips} and {c.place_trips} (geometry.fused_tile changed?)")
    seed = fresh_seed()
    run = launch("route-fused", np.random.default_rng(seed), device, T=c.T, K=c.K, E=c.E, U=8, M=c.M,
                 m_on_device=c.M is not None)
    expect_ok(run.report, LAST_ARRIVER + ": place_presorted", case, seed,
              f"({tiles} tiles, {scan_trips} scan and {place_trips} placement trips)")
    assert_counter(run.counter, case, seed)


# --------------------------------------------------------------------------- tiled sort: scan over tiles


class ScanCase(NamedTuple):
    name: str
    entry: str
    T: int
    K: int
    E: int
    M: object
    tiles: int
    scanned: bool  # tile_scan_kernel runs (more than SELF_SCAN_TILES tiles)
    trips: int  # of the loop that scans: each placing program's, or each column program's


SCAN_CASES = [
    # placing programs sum the histograms themselves, one step ([SCAN_ROWS, BLOCK_E] at a time)
    ScanCase("self-scan-1-trip", "moe_sorting", 67, 4, 32, None, 2, False, 1),  # 2 tiles of 64 rows
    ScanCase("self-scan-1-trip", "route-unfused", 67, 4, 32, None, 5, False, 1),  # 5 gating tiles of 16 rows
    ScanCase("self-scan-M0-device", "moe_sorting", 67, 4, 32, 0, 2, False, 1),  # all-zero histograms, total 0
    ScanCase("self-scan-M0-device", "route-unfused", 67, 4, 32, 0, 5, False, 1),
    ScanCase("self-scan-3-trips", "moe_sorting", 67, 8, 8192, None, 3, False, 3),  # E=8192: SCAN_ROWS = 1
    # past SELF_SCAN_TILES: tile_scan_kernel scans by columns first
    ScanCase("column-scan-1-trip", "moe_sorting", 8193, 1, 16, None, 33, True, 1),  # 256-row tiles
    ScanCase("column-scan-1-trip", "route-unfused", 529, 2, 32, None, 34, True, 1),  # 16-row gating tiles
    ScanCase("column-scan-M17-device", "route-unfused", 529, 2, 32, 17, 34, True, 1),  # 2 tiles not empty
    ScanCase("column-scan-2-trips", "route-unfused", 260, 2, 4096, None, 260, True, 2),  # 1-row tiles
]


def _scan_plan(entry, T, K, E):
    """(tiles, scanned, trips) as geometry.tiled_sort decides them for this entry."""
    rows = geometry.gate_tile(E).block_t if entry == "route-unfused" else None
    tiling = geometry.tiled_sort(T, K, E, rows)
    step = geometry.SCAN_ELEMENTS // tiling.scan_columns if tiling.scanned else tiling.scan_rows
    return tiling.tiles, tiling.scanned, -(-tiling.tiles // step)


@pytest.mark.parametrize("c", SCAN_CASES, ids=[f"{c.name}-{c.entry}" for c in SCAN_CASES])
def test_tiled_scan_loop(c, device, request):
    case = request.node.callspec.id
    plan = _scan_plan(c.entry, c.T, c.K, c.E)
    assert _tiled(c.entry, c.T) and plan == (c.tiles, c.scanned, c.trips), (
        f"case {case} no longer hits its edge: (tiles, scanned, trips) = {plan}, expected "
        f"{(c.tiles, c.scanned, c.trips)}")
    seed = fresh_seed()
    run = launch(c.entry, np.random.default_rng(seed), device, T=c.T, K=c.K, E=c.E, U=4, M=c.M,
                 m_on_device=c.M is not None)
    expect_ok(run.report, sort_construct(COLUMN_SCAN_LOOP if c.scanned else SCAN_LOOP, c.entry, c.T, c.E, c.K),
              case, seed, f"({c.tiles} tiles, {c.trips} scan trips)")


# --------------------------------------------------------------------------- fused route: gating tiles


class TileCase(NamedTuple):
    name: str
    T: int
    tiles: int  # gating tiles (programs [0, tiles) of fused_route_kernel)
    M: object  # None or an int passed as a device tensor (with a moe_buf then)


TILE_CASES = [
    TileCase("tiles-T0-empty", 0, 1, None),  # no rows: one program, single-tile sort of nothing
    TileCase("tiles-T1-single", 1, 1, None),  # SINGLE_TILE: no counter, program 0 sorts
    TileCase("tiles-T16-single", 16, 1, None),  # one full tile, still SINGLE_TILE
    TileCase("tiles-T17-two", 17, 2, None),  # two tiles: the last arriver (ticket 1) sorts
    TileCase("tiles-T33-three", 33, 3, None),  # three tiles, the last with one row
    TileCase("tiles-T33-three-M17-device", 33, 3, 17),  # plus moe_buf zeroing programs after the gating tiles
]
TILE_E, TILE_K, TILE_U = 256, 8, 32


@pytest.mark.parametrize("entry", ["route-fused", "route-unfused"])
@pytest.mark.parametrize("c", TILE_CASES, ids=[c.name for c in TILE_CASES])
def test_gating_tiles_and_last_arriver(c, entry, device, request):
    case = request.node.callspec.id
    tiles = _gate_tiles(TILE_E, TILE_K, c.T)
    assert tiles == c.tiles, f"case {case} no longer hits its edge: {tiles} gating tiles, expected {c.tiles}"
    seed = fresh_seed()
    rng = np.random.default_rng(seed)
    buf = None if c.M is None else random_moe_buf(rng, c.T, (7,), torch.bfloat16, device)
    run = launch(entry, rng, device, T=c.T, K=TILE_K, E=TILE_E, U=TILE_U, M=c.M, m_on_device=c.M is not None,
                 moe_buf=buf)
    construct = (LAST_ARRIVER if entry == "route-fused" and tiles > 1
                 else sort_construct("the sort", entry, c.T, TILE_E, TILE_K))
    expect_ok(run.report, construct, case, seed, f"({tiles} gating tiles)")
    if run.counter is not None:
        assert_counter(run.counter, case, seed)
    if buf is not None:
        assert_zeroing(zeroing_construct(entry, c.T, True), case, seed, run.buf_before, run.buf_after, c.M)


def test_last_arriver_repeat_with_new_device_M(device):
    """Back-to-back fused calls into the same buffers with a different device-side M (what a
    CUDA-graph replay does): the last arriver must have reset the counter for the next call."""
    case = "last-arriver-repeat-M-device"
    seed = fresh_seed()
    rng = np.random.default_rng(seed)
    T = 33
    logits = random_logits(rng, T, TILE_E, torch.bfloat16, device)
    out = poisoned_route_out(T, TILE_K, TILE_E, TILE_U, device)
    for M in (5, 33, 0):
        buf = random_moe_buf(rng, T, (3,), torch.uint8, device)
        for x in out:  # re-poison in place: the same buffers, as a replay would use
            x.view(torch.int32).fill_(0x5A5A5A5A)
        run = launch("route-fused", rng, device, T=T, K=TILE_K, E=TILE_E, U=TILE_U, logits=logits, M=M,
                     m_on_device=True, moe_buf=buf, out=out)
        expect_ok(run.report, LAST_ARRIVER, f"{case}-M{M}", seed)
        assert_counter(run.counter, f"{case}-M{M}", seed)
        assert_zeroing(zeroing_construct("route-fused", T, True), f"{case}-M{M}", seed, run.buf_before,
                       run.buf_after, M)


# --------------------------------------------------------------------------- vLLM layout: the tail fill

TAIL_LOOP = "vLLM tail fill `for o0 in range(first, end, TAIL_BLOCK)` (fill_range, first = P or P // U)"


class TailCase(NamedTuple):
    name: str
    U: int
    M: object  # None (M = T) or an int passed as a device tensor
    extra: int  # out= views this much longer than the capacity
    trips: int  # trips of both fill_range loops (sorted_token_ids and expert_ids)


TAIL_CASES = [
    # U = 1, nothing dropped, M = T: P = T*K = capacity, both buffers exactly full: no trip
    TailCase("tail-0-trips-full-buffers", 1, None, 0, 0),
    # U = 4, E = 8: the tails are at most 8*3 slots (+5) and a few blocks (+5): one partial trip
    TailCase("tail-1-trip", 4, None, 5, 1),
    # M = 0 read on the device: P = 0, the whole (small) buffers are tail: one trip from 0
    TailCase("tail-1-trip-M0-device", 4, 0, 0, 1),
    # views 2100 longer: three trips, the last partial
    TailCase("tail-3-trips-long-out", 4, None, 2100, 3),
    TailCase("tail-3-trips-M1-device", 4, 1, 2100, 3),  # one row sorted: P <= K*U
]
# (entry, T): every program that writes the layout. E = 8, K = 2: gating tiles of up to 16 rows.
TAIL_SITES = [("moe_sorting", 13), ("moe_sorting", 67), ("route-unfused", 13), ("route-unfused", 67),
              ("route-fused", 2), ("route-fused", 13), ("route-fused", 33)]
TAIL_E, TAIL_K = 8, 2


def _tail_site(entry, T):
    if entry == "route-fused" and _gate_tiles(TAIL_E, TAIL_K, T) == 1:
        registers = geometry.fused_tile(T, TAIL_K, TAIL_E).registers
        return f"fused_route_kernel, single gating tile (program 0, {'register' if registers else 'memory'} sort)"
    return sorter_site(entry, T, TAIL_E, TAIL_K)


@pytest.mark.parametrize("entry,T", TAIL_SITES, ids=[f"{e}-T{t}" for e, t in TAIL_SITES])
@pytest.mark.parametrize("c", TAIL_CASES, ids=[c.name for c in TAIL_CASES])
def test_vllm_tail_fill(c, entry, T, device, request):
    """layout="vllm": the tails of both buffers filled to the end of each (views of canaried
    allocations), from a start the sort computes at run time."""
    case = request.node.callspec.id
    seed = fresh_seed()
    rng = np.random.default_rng(seed)
    K, E, U = TAIL_K, TAIL_E, c.U
    num_local = None if c.M is None else torch.tensor([c.M], dtype=torch.int32, device=device)
    counter = None
    if entry == "moe_sorting":
        views, full = canaried_vllm_sorting_out(T, K, E, U, device, c.extra)
        ids = _random_ids(rng, T, K, E)
        weights = rng.standard_normal((T, K)).astype(np.float32)
        fused_moe.moe_sorting(torch.from_numpy(ids).to(device), torch.from_numpy(weights).to(device), E, unit_size=U,
                              num_local_tokens=num_local, layout="vllm", out=views)
        report = oracles.CheckReport()
    else:
        logits = random_logits(rng, T, E, torch.bfloat16, device)
        out, full = canaried_vllm_route_out(T, K, E, U, device, c.extra)
        views = out[2:]
        count = arrival_counter(logits.device)
        c0 = int(count.item())
        fused_moe.route(logits, K, unit_size=U, num_local_tokens=num_local, path=ROUTE_PATHS[entry], layout="vllm",
                        out=out)
        counter = (c0, int(count.item()))
        ids, weights = out.topk_ids.cpu().numpy(), out.topk_weights.cpu().numpy()
        report = oracles.check_gating(weights, ids, upcast(logits), K)
    expected = expected_vllm(ids, weights, E, U, num_local_tokens=c.M)
    P = int(expected.num_tokens_post_pad[0])
    trips = (len(range(P, views[0].numel(), TAIL_BLOCK.value)), len(range(P // U, views[1].numel(), TAIL_BLOCK.value)))
    assert trips == (c.trips, c.trips), (
        f"case {case} no longer hits its edge: P={P}, lengths {views[0].numel()} / {views[1].numel()}: "
        f"{trips} fill_range trips, expected {c.trips} each (TAIL_BLOCK or capacity changed?)")
    report = report.merged(check_vllm_sorting(views, full, expected, T, K))
    construct = f"{TAIL_LOOP} in {_tail_site(entry, T)}"
    expect_ok(report, construct, case, seed, f"(P={P}, {trips} trips)")
    if entry == "route-fused" and _gate_tiles(E, K, T) > 1:
        assert_counter(counter, case, seed)


# --------------------------------------------------------------------------- proof that the checks bite


@pytest.fixture(scope="module")
def zeroed(device):
    """One real moe_sorting run with a bf16 x 7 moe_buf, M = 6 of 13 on the device."""
    seed = fresh_seed()
    rng = np.random.default_rng(seed)
    buf = random_moe_buf(rng, 13, (7,), torch.bfloat16, device)
    run = launch("moe_sorting", rng, device, T=13, K=4, E=32, U=8, M=6, m_on_device=True, moe_buf=buf)
    return run, 6, seed


def _bytes(x):
    return x.contiguous().view(torch.uint8).reshape(x.shape[0], -1)


def _restore_last_row(before, after, M):
    _bytes(after)[M - 1] = _bytes(before)[M - 1]  # the loop stopped one row short


def _restore_last_byte(before, after, M):
    _bytes(after)[M - 1, -1] = _bytes(before)[M - 1, -1]  # the ragged tail store was masked off


def _zero_row_M(before, after, M):
    _bytes(after)[M] = 0  # the loop ran one row too far


PLANTED_ZEROING = [
    pytest.param(_restore_last_row, 0, id="planted-last-zeroed-row-restored"),
    pytest.param(_restore_last_byte, 0, id="planted-last-byte-restored"),
    pytest.param(_zero_row_M, 0, id="planted-row-M-zeroed"),
    pytest.param(None, +1, id="planted-M-off-by-one-high"),  # checked against M+1: row M was never zeroed
    pytest.param(None, -1, id="planted-M-off-by-one-low"),  # checked against M-1: row M-1 was "touched"
]


@pytest.mark.parametrize("plant,m_shift", PLANTED_ZEROING)
def test_planted_zeroing_bugs_are_caught(zeroed, plant, m_shift):
    run, M, seed = zeroed
    construct = zeroing_construct("moe_sorting", 13, True)
    assert_zeroing(construct, "planted-baseline", seed, run.buf_before, run.buf_after, M)  # the real output passes
    after = run.buf_after.clone()
    if plant is not None:
        plant(run.buf_before, after, M)
    with pytest.raises(AssertionError, match=r"moe_buf zeroing loop \(rows \[0, M\) with M on device\)"):
        assert_zeroing(construct, "planted", seed, run.buf_before, after, M + m_shift)


@pytest.fixture(scope="module")
def padded(device):
    """One real moe_sorting run of padding-U-minus-1 (every expert has U-1 padding slots)."""
    c = PAD_CASES[1]
    seed = fresh_seed()
    rng = np.random.default_rng(seed)
    ids = c.ids(c.T)
    weights = rng.standard_normal((c.T, c.K)).astype(np.float32)
    out = poisoned_sorting_out(c.T, c.K, c.E, c.U, device)
    before = snapshot(out)
    fused_moe.moe_sorting(torch.from_numpy(ids).to(device), torch.from_numpy(weights).to(device), c.E,
                          unit_size=c.U, out=out)
    return c, ids, weights, tuple(x.cpu() for x in out), before, seed


def _unfill_last_pad(out, before, P, sent):
    out[0][P - 1] = before[0][P - 1]  # the last padding slot kept its canary (fill loop a step short)


def _pad_past_total(out, before, P, sent):
    out[0][P] = sent  # the fill ran past the last expert's padding: a canary is overwritten


def _pad_weight_nonzero(out, before, P, sent):
    out[1][P - 1] = 1.0  # padding weight not zeroed


def _m_off_by_one(out, before, P, sent):
    out[3][1] += 1  # num_valid_ids[1] = M + 1


PLANTED_SORTING = [
    pytest.param(_unfill_last_pad, id="planted-last-pad-unfilled"),
    pytest.param(_pad_past_total, id="planted-fill-past-total"),
    pytest.param(_pad_weight_nonzero, id="planted-pad-weight-nonzero"),
    pytest.param(_m_off_by_one, id="planted-num-valid-M-off-by-one"),
]


@pytest.mark.parametrize("plant", PLANTED_SORTING)
def test_planted_padding_bugs_are_caught(padded, plant):
    c, ids, weights, out, before, seed = padded
    construct = sort_construct(PADDING_LOOP, "moe_sorting", c.T, c.E, c.K)

    def check(o):
        return oracles.check_sorting(o, ids, weights, c.E, unit_size=c.U, before=before)

    expect_ok(check(out), construct, "planted-baseline", seed)  # the real output passes
    bad = tuple(x.clone() for x in out)
    P = int(bad[3][0])
    assert 0 < P < bad[0].numel()
    plant(bad, before, P, oracles.sentinel(c.K, c.T))
    with pytest.raises(AssertionError, match=r"per-expert padding fill .* \[case planted\]"):
        expect_ok(check(bad), construct, "planted", seed)


@pytest.mark.parametrize("counter", [(0, 1), (0, 2), (1, 0)], ids=["not-reset-1", "not-reset-2", "dirty-before"])
def test_planted_counter_bugs_are_caught(counter):
    with pytest.raises(AssertionError, match="last-arriver branch"):
        assert_counter(counter, "planted", 0)
