"""Every launch decision, from the shape and the device only: block sizes, grids, warps,
thresholds and the path ``route(path="auto")`` takes. The plans (gating.py, sorting.py,
route.py) consume these answers; nothing else derives a launch parameter, and tests ask
this module rather than re-deriving its rules.

Every choice depends on (E, K, U, T bucket, device), never on data, so a shape always runs
the same code. Gating results do not depend on the tile height at all (fixed-point row
sums), which keeps routing batch invariant whatever tile a path picks.

Compiled variants: a kernel's constexprs come from here, and the plans pass every size that
only bounds a loop or a mask (T, M, tile counts, buffer lengths) as a runtime integer that
Triton does not specialise (``RUNTIME_INTS``), so one model compiles one kernel per
(path, gating tile height) over every T (docs/notes.md, "Compiled variants").
"""
import functools
import inspect
from types import MappingProxyType
from typing import NamedTuple

import torch
import triton

PATHS = ("auto", "fused", "unfused")

# Token counts where the kernels change strategy, for E <= 256 (the fuzzers draw on both
# sides of each; at larger E the gating tile is shorter, see gate_rows).
DISPATCH_THRESHOLDS = MappingProxyType({
    "fused_register_sort": 2,  # fused, one tile: sorts from the gating registers up to here (tile height)
    "fused_single_tile": 16,  # one gating tile: fused (auto) up to here, unfused beyond
    "sort_single_program": 64,  # moe_sorting: one program up to here, tiled histogram/place beyond
    "route_self_scan": 512,  # unfused route: placing programs scan the tile histograms up to here (32 tiles)
})
# Not token counts: assignments (T * K).
DISPATCH_THRESHOLDS_ASSIGNMENTS = MappingProxyType({
    "sort_chunk_assignments": 256,  # one sorting program takes this many at once
    "sort_self_scan": 8192,  # tiled moe_sorting: placing programs scan the histograms up to here (32 tiles)
})

GATE_TILE_ELEMENTS = 4096  # logits per gating program: 16 rows of E=256
MAX_SORT_CHUNK = DISPATCH_THRESHOLDS_ASSIGNMENTS["sort_chunk_assignments"]
SELF_SCAN_TILES = 32  # up to here every placing program sums the tile histograms itself
SCAN_ELEMENTS = 4096  # histogram entries per step of a scan ([rows, experts] in registers)
SCAN_COLUMNS = 16  # experts per program of the column scan (tile_scan_kernel)
ZERO_BLOCK = 2048  # moe_buf words per zeroing step
PLACE_BLOCK = 1024  # presorted entries placed per step by the fused route's last arriver
SORT_WARPS = 4
# Kernel arguments that only bound loops and masks: never specialised (no recompiles per T).
# The topk tensors' strides too: flat assignments reach (t, j) through a division by K, which
# no stride of 1 or multiple of 16 would vectorise. K, U and the option flags stay constexpr:
# as runtime values each cost up to 13-19% of a route's graph time in decode (docs/notes.md, v8).
RUNTIME_INTS = ("T", "m_value", "num_tiles", "num_gate_tiles", "n_sorted", "n_blocks", "buf_row_words", "scanned",
                "ids_stride_t", "ids_stride_k", "w_stride_t", "w_stride_k")


def kernel(fn):
    """``@triton.jit`` leaving the RUNTIME_INTS arguments ``fn`` takes unspecialised: no
    recompile when T, M or a tile count crosses 1 or a multiple of 16."""
    names = inspect.signature(fn).parameters
    return triton.jit(fn, do_not_specialize=[name for name in RUNTIME_INTS if name in names])


def next_pow2(n):
    """Smallest power of two >= n (n >= 1). Plain Python: ``triton.next_power_of_2`` goes
    through Triton's JIT-function call machinery, about 3 us a call on the host."""
    return 1 << (max(n, 1) - 1).bit_length()


def cdiv(a, b):
    return -(-a // b)


class GateTile(NamedTuple):
    block_t: int  # rows per gating program
    block_e: int
    warps: int


class FusedTile(NamedTuple):
    """The fused route's launch: G gating tiles (one: program 0 also sorts)."""
    gate: GateTile
    tiles: int
    registers: bool  # one tile, sorted straight from the gating registers
    warps: int
    block_n: int  # assignments per presorted tile (several tiles)
    block_a: int  # sort chunk of the one-tile sort
    scan_rows: int


class TiledSort(NamedTuple):
    """Histogram per row tile -> (column scan) -> every tile placed in parallel."""
    rows: int  # token rows per tile
    block_n: int  # assignments per tile, a power of two >= rows * K
    tiles: int
    scanned: bool  # a column-scan launch first (more than SELF_SCAN_TILES tiles)
    scan_rows: int  # histogram rows per step of the placing programs' own scan
    scan_columns: int  # experts per column-scan program
    scan_programs: int


def gate_rows(E):
    """Rows per gating tile at full height: 16 up to E = 256, fewer beyond (4096 logits)."""
    return max(1, min(16, GATE_TILE_ELEMENTS // next_pow2(E)))


def gate_tile(E, T=None):
    """The gating tile. ``T`` given (the fused decode path): no taller than T, in powers of
    two, since the decode path runs one tile and masked rows would only cost time. Without
    T (gating, unfused route): full height, one variant for every T."""
    block_e = next_pow2(E)
    block_t = gate_rows(E) if T is None else min(gate_rows(E), next_pow2(max(T, 1)))
    return GateTile(block_t, block_e, max(1, min(8, block_t * block_e // 512)))


def sort_chunk(T, K):
    """Assignments one sorting program takes at once: the whole problem when small, else MAX_SORT_CHUNK."""
    return max(16, min(MAX_SORT_CHUNK, next_pow2(max(1, T * K))))


def single_program_sort(T):
    """moe_sorting: one program sorts everything (chunk loops) up to here."""
    return T <= DISPATCH_THRESHOLDS["sort_single_program"]


def scan_rows(block_e):
    return max(1, SCAN_ELEMENTS // block_e)


def tiled_sort(T, K, E, rows=None):
    """Row tiles of ``rows`` tokens (default: MAX_SORT_CHUNK assignments a tile)."""
    rows = rows or max(1, MAX_SORT_CHUNK // next_pow2(K))
    block_e = next_pow2(E)
    tiles = max(1, cdiv(T, rows))
    columns = min(SCAN_COLUMNS, block_e)
    return TiledSort(rows, next_pow2(rows * K), tiles, tiles > SELF_SCAN_TILES, scan_rows(block_e), columns,
                     block_e // columns)


def sort_from_registers(block_t):
    """Fused single tile: sort straight from the gating tile's registers, or write the top-k
    rows, then read them back and sort them. Registers won at 1-2 rows and lost beyond
    (H100, both models: docs/notes.md, v5)."""
    return block_t <= DISPATCH_THRESHOLDS["fused_register_sort"]


def fused_tile(T, K, E):
    gate = gate_tile(E, T)
    tiles = max(1, cdiv(T, gate.block_t))
    registers = tiles == 1 and sort_from_registers(gate.block_t)
    if registers:  # warps from the H100 sweep of 2, 4 and 8 warps (docs/notes.md, v5)
        warps = max(4, min(8, gate.block_t * gate.block_e // 32))
    else:
        warps = 8 if gate.block_t * gate.block_e >= 2048 else 4
    # The one-tile sort's chunk holds the whole tile (rows x top-k block), so it follows the
    # tile's compile buckets, not T * K: the same sort size where K is a power of two.
    # Several tiles never run that sort: one fixed value, one variant.
    block_a = sort_chunk(gate.block_t, next_pow2(K)) if tiles == 1 else sort_chunk(1, 1)
    return FusedTile(gate, tiles, registers, warps, next_pow2(gate.block_t * K), block_a, scan_rows(gate.block_e))


def choose_path(path, T, E, K, device):
    """"fused" for one gating tile (the decode case: one launch, no workspace); beyond that
    the unfused path places every tile in parallel, which the fused path's last arriver
    cannot (docs/notes.md)."""
    if path not in PATHS:
        raise ValueError(f"path must be one of {', '.join(map(repr, PATHS))}; got {path!r}")
    if path != "auto":
        return path
    return "fused" if T <= gate_rows(E) else "unfused"


def pad_width(U, block_e):
    """Padding slots each expert writes per step of ``fill_padding`` (it needs at most U - 1)."""
    return max(1, min(next_pow2(max(U - 1, 1)), 4096 // block_e))


@functools.lru_cache(maxsize=None)
def _processors(device):
    if device.type == "cuda":
        return torch.cuda.get_device_properties(device).multi_processor_count
    return 2  # the interpreter runs programs one after another: keep the grid small


def zero_programs(T, row_words, device):
    """Programs that zero moe_buf: enough for one step each over T rows, at most 4 per SM."""
    if row_words == 0 or T == 0:
        return 0
    steps = cdiv(T * row_words, ZERO_BLOCK)
    return max(1, min(steps, 4 * _processors(device)))
