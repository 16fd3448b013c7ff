"""geometry's answers against what the kernels and the fuzzers rely on: every tl.arange
extent and num_warps a power of two, tiles that cover the problem, and each published
dispatch threshold exactly where the behaviour switches (the fuzzers draw on both sides)."""
import pytest
import torch

import fused_moe
from fused_moe import geometry
from fused_moe.geometry import DISPATCH_THRESHOLDS, DISPATCH_THRESHOLDS_ASSIGNMENTS

CPU = torch.device("cpu")
# (T, K, E, U): decode and prefill shapes, tiny and huge E, the largest K, U = 1 and U > 4096.
SHAPES = [(1, 8, 256, 32), (3, 4, 128, 4), (16, 8, 256, 32), (17, 2, 64, 2), (300, 6, 60, 16), (5, 8, 2048, 64),
          (2, 1, 1, 1), (40, 127, 127, 5000), (9, 3, 8192, 7), (1025, 8, 257, 3), (1, 4, 128, 32), (2, 4, 128, 32),
          (1, 2, 4096, 8), (2, 1, 1, 5000)]


def is_pow2(n):
    return type(n) is int and n >= 1 and n & (n - 1) == 0


@pytest.mark.parametrize("n,expected", [(0, 1), (1, 1), (2, 2), (3, 4), (4, 4), (5, 8), (16, 16), (17, 32)])
def test_next_pow2(n, expected):
    assert geometry.next_pow2(n) == expected


@pytest.mark.parametrize("a,b,expected", [(0, 4, 0), (1, 4, 1), (4, 4, 1), (5, 4, 2), (8, 2, 4)])
def test_cdiv(a, b, expected):
    assert geometry.cdiv(a, b) == expected


@pytest.mark.parametrize("T,K,E,U", SHAPES)
def test_constexprs_are_powers_of_two_and_cover_the_problem(T, K, E, U):
    for T_ in (None, T):
        gate = geometry.gate_tile(E, T_)
        assert all(map(is_pow2, gate)), gate
        assert gate.block_e >= E and gate.block_t * gate.block_e <= max(geometry.GATE_TILE_ELEMENTS, gate.block_e)
    assert geometry.gate_tile(E, T).block_t <= geometry.next_pow2(T), "the decode tile is no taller than T"
    fused = geometry.fused_tile(T, K, E)
    assert all(map(is_pow2, (fused.warps, fused.block_n, fused.block_a, fused.scan_rows))), fused
    assert fused.tiles * fused.gate.block_t >= T and fused.block_n >= fused.gate.block_t * K
    assert fused.registers == (fused.tiles == 1 and fused.gate.block_t <= DISPATCH_THRESHOLDS["fused_register_sort"])
    chunk = geometry.sort_chunk(T, K)
    assert is_pow2(chunk) and chunk <= geometry.MAX_SORT_CHUNK and chunk >= min(T * K, geometry.MAX_SORT_CHUNK)
    for rows in (None, geometry.gate_tile(E).block_t):  # moe_sorting's tiles, the unfused route's
        tiling = geometry.tiled_sort(T, K, E, rows)
        assert all(map(is_pow2, (tiling.rows, tiling.block_n, tiling.scan_rows, tiling.scan_columns,
                                 geometry.SCAN_ELEMENTS // tiling.scan_columns))), tiling
        assert tiling.tiles * tiling.rows >= T > (tiling.tiles - 1) * tiling.rows and tiling.block_n >= tiling.rows * K
        assert type(tiling.scan_programs) is int and tiling.scan_programs * tiling.scan_columns == geometry.next_pow2(E)
    assert is_pow2(geometry.pad_width(U, geometry.next_pow2(E)))


def test_fixed_blocks_and_warps_are_powers_of_two():
    assert all(map(is_pow2, (geometry.ZERO_BLOCK, geometry.PLACE_BLOCK, geometry.SCAN_ELEMENTS, geometry.SORT_WARPS)))


def test_default_sort_tiles_hold_one_chunk():
    for K in (1, 3, 8, 127):
        tiling = geometry.tiled_sort(1000, K, 64)
        assert tiling.rows * K <= tiling.block_n <= DISPATCH_THRESHOLDS_ASSIGNMENTS["sort_chunk_assignments"]


@pytest.mark.parametrize("E", [8, 64, 256])
def test_auto_path_is_fused_for_one_gating_tile(E):
    last = DISPATCH_THRESHOLDS["fused_single_tile"]
    for T in (1, last - 1, last, last + 1, 300):
        fused = geometry.fused_tile(T, 4, E)
        assert geometry.choose_path("auto", T, E, 4, CPU) == ("fused" if T <= last else "unfused")
        assert (fused.tiles == 1) == (T <= last)
    assert geometry.choose_path("auto", 3, 2048, 4, CPU) == "unfused", "E = 2048: two-row tiles"
    for path in ("fused", "unfused"):  # asked for: taken, whatever the shape
        assert [geometry.choose_path(path, T, 256, 8, CPU) for T in (1, 300)] == [path, path]


def test_register_sort_up_to_its_threshold_and_on_one_tile_only():
    last = DISPATCH_THRESHOLDS["fused_register_sort"]
    assert [geometry.fused_tile(T, 8, 256).registers for T in (1, last, last + 1)] == [True, True, False]
    several = geometry.fused_tile(5, 8, 2048)  # two-row tiles: short enough, but three of them
    assert several.tiles == 3 and not several.registers


def test_single_program_sort_up_to_its_threshold():
    last = DISPATCH_THRESHOLDS["sort_single_program"]
    assert [geometry.single_program_sort(T) for T in (0, 1, last, last + 1, 4 * last)] == [True] * 3 + [False] * 2


def test_self_scan_thresholds():
    """Placing programs scan the histograms themselves up to SELF_SCAN_TILES tiles: the route's
    threshold in tokens (16-row gating tiles), moe_sorting's in assignments."""
    last = DISPATCH_THRESHOLDS["route_self_scan"]
    rows = geometry.gate_tile(256).block_t
    assert [geometry.tiled_sort(T, 8, 256, rows).scanned for T in (1, last, last + 1)] == [False, False, True]
    for K in (1, 8):
        last = DISPATCH_THRESHOLDS_ASSIGNMENTS["sort_self_scan"] // K
        assert [geometry.tiled_sort(T, K, 256).scanned for T in (1, last, last + 1)] == [False, False, True]
        assert geometry.tiled_sort(last + 1, K, 256).tiles == geometry.SELF_SCAN_TILES + 1


@pytest.mark.parametrize("path", ["fused", "unfused"])
def test_empty_batch_route_writes_num_valid_ids(path, device):
    """T = 0: no tokens, yet one program still writes the zero count (out= poisoned)."""
    out = fused_moe.allocate_route_outputs(0, 2, 8, 4, device)
    out.num_valid_ids.fill_(-1)
    fused_moe.route(torch.zeros(0, 8, device=device), 2, unit_size=4, path=path, out=out)
    assert out.num_valid_ids.tolist() == [0, 0]


@pytest.mark.parametrize("T,row_words", [(0, 7), (5, 0), (1, 1), (3, geometry.ZERO_BLOCK), (10**6, 64)])
def test_zero_programs_each_have_a_step(T, row_words):
    """None when there is nothing to zero (the grid adds them to the sorting programs), else
    between one and one per ZERO_BLOCK step."""
    programs = geometry.zero_programs(T, row_words, CPU)
    steps = geometry.cdiv(T * row_words, geometry.ZERO_BLOCK)
    assert type(programs) is int and (programs == 0 if steps == 0 else 1 <= programs <= steps)


def test_fused_sort_chunk_follows_the_tile_buckets_not_T():
    """One compiled variant per (tile height, top-k block): every T of a tile bucket gets the
    same chunk, which holds the whole tile up to MAX_SORT_CHUNK; several tiles never sort
    one chunk and all get the smallest."""
    for E, K in ((256, 8), (128, 4), (60, 3), (32, 17)):
        for T in range(1, 65):
            tile = geometry.fused_tile(T, K, E)
            if tile.tiles > 1:
                assert tile.block_a == geometry.sort_chunk(1, 1)
                continue
            bucket = {geometry.fused_tile(t, K, E).block_a for t in range(1, T + 1)
                      if geometry.fused_tile(t, K, E).gate.block_t == tile.gate.block_t}
            assert bucket == {tile.block_a}
            assert tile.block_a == min(geometry.MAX_SORT_CHUNK, max(T * K, tile.block_a))
