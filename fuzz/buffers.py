"""Poisoned output buffers: the one builder every consumer uses (properties, kernel tests, repros).

A target gets each output as a VIEW of the production length its convention declares
(its producer's capacity rule), cut from a larger allocation whose every element is a
canary: ``LEAD`` canaries before the view, ``GUARD`` after it. So after the call the
harness sees four regions per buffer: the lead guard (a write there is "before the buffer
start": a negative index, as a signed expert id used as an offset gives), the valid prefix
(judged against the oracle), the tail up to the production length (untouched, or filled
as the convention says) and the guard past it (a write there is "past the buffer end").

Inputs the harness builds from NumPy (sorting's ``topk_ids`` / ``topk_weights``) are cut
the same way from allocations GUARD elements longer (:func:`guarded_input`), whose guard
holds values a kernel would CONSUME if it read them (expert 0, weight ``INPUT_GUARD_WEIGHT_BITS``):
a read one element past the input then changes the output instead of passing silently.

Canaries: NaN payload ``0x7fc0dead`` for floats (an unwritten weight never passes a
tolerance), ``0x5a5a5a5a`` for token ids, ``0x3c3c3c3c`` for block ids and counts, and
``-0x5a5a5a5b`` for top-k ids (outside every id range).
"""
from __future__ import annotations

from typing import NamedTuple

import oracles
from oracles.layouts import vllm_capacity

CANARY_TOKEN = 0x5A5A5A5A
CANARY_BLOCK = 0x3C3C3C3C
CANARY_WEIGHT_BITS = 0x7FC0DEAD
CANARY_TOPK_ID = -0x5A5A5A5B
#: Canary elements past the production length of every buffer.
GUARD = 8
#: Canary elements before the start of every output buffer.
LEAD = 8
#: What lies past the end of an input: an in-range expert id and a NaN-payload weight, so an
#: over-read that is consumed shows in the output (an out-of-range id would be dropped unseen).
INPUT_GUARD_ID = 0
INPUT_GUARD_WEIGHT_BITS = 0x7FC0BAD1

#: Output fields of each sorting layout, in order: (name, dtype, length kind, canary).
SORT_FIELDS = {
    "ck": (("sorted_token_ids", "int32", "rows", CANARY_TOKEN),
           ("sorted_weights", "float32", "rows", CANARY_WEIGHT_BITS),
           ("sorted_expert_ids", "int32", "blocks", CANARY_BLOCK),
           ("num_valid_ids", "int32", 2, CANARY_BLOCK)),
    "vllm": (("sorted_token_ids", "int32", "rows", CANARY_TOKEN),
             ("expert_ids", "int32", "blocks", CANARY_BLOCK),
             ("num_tokens_post_pad", "int32", 1, CANARY_BLOCK)),
}
GATING_FIELDS = ("topk_weights", "topk_ids")


def sort_field_names(layout: str) -> tuple[str, ...]:
    return tuple(f[0] for f in SORT_FIELDS[layout])


def production_capacity(rule: str, T: int, K: int, E: int, U: int) -> tuple[int, int]:
    """(slots, blocks) the producer allocates under its capacity ``rule``."""
    if rule == "tight":
        return oracles.capacity(T, K, E, U)
    if rule == "vllm":
        return vllm_capacity(T, K, E, U)
    if rule == "aiter":  # aiter's moe_sorting wrapper: T*K + E*U - K slots
        rows = max(0, T * K + E * U - K)
    elif rule == "sglang":  # sglang's align wrapper: an E + 1 bucket, rounded up to 4
        numel = T * K
        rows = numel * U if numel < E + 1 else numel + (E + 1) * (U - 1)
        rows = (rows + 3) // 4 * 4
    else:
        raise ValueError(f"capacity rule must be tight, vllm, aiter or sglang, got {rule!r}")
    return rows, -(-rows // U)


class Poisoned(NamedTuple):
    """Buffers handed to a target (``views``) and the allocations they were cut from."""

    names: tuple[str, ...]
    views: tuple  # production-length views, in field order
    allocations: tuple  # views + GUARD (what a kernel test passes whole)
    bases: tuple  # the whole canary-filled tensors: LEAD + views + GUARD


def _canary_tensor(n: int, dtype: str, canary: int | None, device):
    """n elements of ``dtype`` holding the 32-bit ``canary``, or NaN when ``canary`` is None."""
    import torch
    if canary is None:
        return torch.full((n,), float("nan"), dtype=getattr(torch, dtype), device=device)
    t = torch.full((n,), canary if canary < 2**31 else canary - 2**32, dtype=torch.int32, device=device)
    return t.view(getattr(torch, dtype)) if dtype != "int32" else t


def poisoned(fields, device) -> Poisoned:
    """``fields``: (name, dtype, shape, canary) tuples -> views of shape ``shape`` into
    allocations with LEAD canaries before and GUARD after."""
    import math
    names, views, allocs, bases = [], [], [], []
    for name, dtype, shape, canary in fields:
        n = math.prod(shape)
        base = _canary_tensor(LEAD + n + GUARD, dtype, canary, device)
        names.append(name)
        bases.append(base)
        allocs.append(base[LEAD:])
        views.append(base[LEAD:LEAD + n].view(shape))
    return Poisoned(tuple(names), tuple(views), tuple(allocs), tuple(bases))


def guarded_input(array, device):
    """``array`` (int32 ids or float32 weights) as a contiguous view into an allocation GUARD
    elements longer whose tail holds :data:`INPUT_GUARD_ID` / :data:`INPUT_GUARD_WEIGHT_BITS`."""
    import numpy as np
    import torch
    a = np.ascontiguousarray(array)
    fill = INPUT_GUARD_ID if a.dtype == np.int32 else INPUT_GUARD_WEIGHT_BITS
    bits = a.view(np.int32).reshape(-1)
    flat = np.concatenate([bits, np.full(GUARD, np.uint32(fill).view(np.int32), np.int32)])
    t = torch.from_numpy(flat).to(device)
    if a.dtype != np.int32:
        t = t.view(getattr(torch, str(a.dtype)))
    return t[:a.size].view(a.shape)


def sorting_fields(layout: str, rule: str, T: int, K: int, E: int, U: int) -> list:
    rows, blocks = production_capacity(rule, T, K, E, U)
    sizes = {"rows": rows, "blocks": blocks}
    return [(name, dtype, (sizes.get(length, length),), canary) for name, dtype, length, canary
            in SORT_FIELDS[layout]]


def gating_fields(T: int, K: int, weights_dtype: str = "float32") -> list:
    """Gating outputs; 16-bit weights get a plain NaN canary (None: see _canary_tensor)."""
    canary = CANARY_WEIGHT_BITS if weights_dtype == "float32" else None
    return [("topk_weights", weights_dtype, (T, K), canary), ("topk_ids", "int32", (T, K), CANARY_TOPK_ID)]


def poisoned_sorting(layout: str, rule: str, T: int, K: int, E: int, U: int, device) -> Poisoned:
    return poisoned(sorting_fields(layout, rule, T, K, E, U), device)


def poisoned_route(layout: str, rule: str, T: int, K: int, E: int, U: int, device) -> Poisoned:
    return poisoned(gating_fields(T, K) + sorting_fields(layout, rule, T, K, E, U), device)


def fresh(layout: str, rule: str, T: int, K: int, E: int, U: int, device) -> tuple:
    """Uninitialised sorting outputs of the production sizes (what an adapter allocates when
    the harness passes no ``out=``)."""
    import torch
    return tuple(torch.empty(shape, dtype=getattr(torch, dtype), device=device)
                 for _, dtype, shape, _ in sorting_fields(layout, rule, T, K, E, U))


def fresh_gating(T: int, K: int, device, *, token_expert_indices: bool = False) -> tuple:
    """Uninitialised (topk_weights, topk_ids[, token_expert_indices]) as the CUDA top-k ops take them."""
    import torch
    n = 3 if token_expert_indices else 2
    return tuple(torch.empty(T, K, dtype=torch.float32 if i == 0 else torch.int32, device=device) for i in range(n))


def as_fields(layout: str, out) -> dict:
    """Sorting outputs in field order -> {field name: tensor}."""
    return dict(zip(sort_field_names(layout), out))
