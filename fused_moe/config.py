"""Launch configuration: block sizes and grid shapes, from the shape and the device only.

Every choice depends on (E, K, U, T bucket), never on data, so a shape always runs the
same code. Gating results do not depend on BLOCK_T at all (fixed-point row sums), which
keeps routing batch invariant even though BLOCK_T is picked per E.
"""
import functools

import torch

from .dispatch import DISPATCH_THRESHOLDS, DISPATCH_THRESHOLDS_ASSIGNMENTS

def next_pow2(n):
    """Smallest power of two >= n (n >= 1). Plain Python: ``triton.next_power_of_2`` goes
    through Triton's JIT-function call machinery, about 3 us a call on the host."""
    return 1 << (max(n, 1) - 1).bit_length()


def cdiv(a, b):
    return -(-a // b)


GATE_TILE_ELEMENTS = 4096  # logits per gating program: 16 rows of E=256
# Assignments sorted at once by one program (a 1024 chunk measured about 4x slower per tile).
MAX_SORT_CHUNK = DISPATCH_THRESHOLDS_ASSIGNMENTS["sort_chunk_assignments"]
ZERO_BLOCK = 2048  # moe_buf words per zeroing step
PLACE_BLOCK = 1024  # presorted entries placed per step by the fused route's last arriver


def gate_tile(E, K, T):
    """(BLOCK_T, BLOCK_E, BLOCK_K). Small batches get a tile no taller than T: the decode
    path runs one tile, and masked rows would only cost time."""
    block_e = next_pow2(E)
    block_t = max(1, min(16, GATE_TILE_ELEMENTS // block_e, next_pow2(max(T, 1))))
    return block_t, block_e, next_pow2(K)


def gate_warps(block_t, block_e):
    return max(1, min(8, block_t * block_e // 512))


def sort_from_registers(block_t, block_e):
    """Fused single tile: sort straight from the gating tile's registers, or write the top-k
    rows, then read them back and sort them. Registers won at 1-2 rows and lost beyond
    (H100, both models: docs/notes.md, v5)."""
    return block_t <= DISPATCH_THRESHOLDS["fused_register_sort"]


def route_warps(block_t, block_e, registers):
    """Warps of the fused route, from the same H100 sweep (2, 4 and 8 warps)."""
    if registers:
        return max(4, min(8, block_t * block_e // 32))
    return 8 if block_t * block_e >= 2048 else 4


def pad_width(U, block_e):
    """Padding slots each expert writes per step of ``fill_padding`` (it needs at most U - 1)."""
    return max(1, min(next_pow2(max(U - 1, 1)), 4096 // block_e))


def sort_chunk(T, K):
    """Chunk of assignments per sorting step: the whole problem when small, else MAX_SORT_CHUNK."""
    return max(16, min(MAX_SORT_CHUNK, next_pow2(max(1, T * K))))


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
