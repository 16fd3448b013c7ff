"""Poisoned outputs, canaries and fresh inputs for the kernel tests.

Every output buffer is larger than the capacity and filled with a canary before
the call (the one builder of fuzz/buffers.py), so an unwritten element inside a valid
prefix (still the canary) and a write past it (canary changed) both fail the oracle
checkers. In the vLLM layout the kernels write every buffer to its end, so they get
views of canaried allocations (``canaried_vllm_sorting_out``) and ``check_vllm_sorting``
reads the canaries past the views.
"""
import itertools
import os
import secrets

import numpy as np
import torch

import fused_moe
import oracles
from fuzz import buffers
from oracles.layouts import vllm_from_ck, vllm_pad

CANARY_INT = buffers.CANARY_TOKEN


# MOE_TEST_SEED=N: the seeds N, N+1, ... instead of random ones, for runs that must repeat
# exactly (the mutation lane, tools/mutation/).
_PINNED = itertools.count(int(os.environ["MOE_TEST_SEED"])) if os.environ.get("MOE_TEST_SEED") else None


def fresh_seed():
    return secrets.randbits(31) if _PINNED is None else next(_PINNED)


def poisoned_sorting_out(T, K, E, U, device):
    """The fuzz harness's canary-filled buffers (fuzz/buffers.py): the sorted buffers whole (the
    capacity plus a guard, which the checkers' ``before=`` covers), num_valid_ids its two words."""
    p = buffers.poisoned_sorting("ck", "tight", T, K, E, U, device)
    return fused_moe.SortingResult(*p.allocations[:3], p.views[3])


def poisoned_route(T, K, E, U, device):
    """(route outputs in canary-filled buffers, the fuzz.buffers.Poisoned they are cut from,
    whose canaries fuzz.properties.guards checks)."""
    p = buffers.poisoned_route("ck", "tight", T, K, E, U, device)
    return fused_moe.RouteResult(p.views[0], p.views[1], *p.allocations[2:5], p.views[5]), p


def poisoned_route_out(T, K, E, U, device):
    return poisoned_route(T, K, E, U, device)[0]


def snapshot(buffers):
    """Host copies of the sorting part of ``buffers``, for the checkers' ``before=``."""
    return tuple(x.detach().cpu().clone() for x in buffers[-4:])


def random_logits(rng, T, E, dtype, device, *, stride_pad=0):
    """Fresh normal logits rounded to ``dtype``; with stride_pad > 0 a column slice of a wider
    tensor (row stride E + stride_pad)."""
    wide = torch.from_numpy(rng.standard_normal((T, E + stride_pad)).astype(np.float32) * 3)
    return wide.to(dtype).to(device)[:, :E]


def upcast(logits):
    """The exact float32 values the oracle sees."""
    return logits.detach().float().cpu().numpy()


def random_moe_buf(rng, T, row_shape, dtype, device):
    itemsize = torch.empty(0, dtype=dtype).element_size()
    raw = rng.integers(1, 255, size=T * int(np.prod(row_shape)) * itemsize, dtype=np.uint8)
    if raw.size == 0:
        return torch.empty((T, *row_shape), dtype=dtype, device=device)
    return torch.from_numpy(raw).view(dtype).reshape(T, *row_shape).to(device)


# --------------------------------------------------------------------------- the vLLM layout


def canaried_vllm_sorting_out(T, K, E, U, device, extra=0):
    """vLLM-layout ``out=`` buffers: views of the first ``capacity + extra`` elements (1 for
    num_tokens_post_pad) of poisoned allocations SLACK elements longer. The kernels write each
    view to its end, so the canaries live past the view. -> (views, allocations)."""
    slots, blocks = fused_moe.capacity(T, K, E, U)
    sizes = (slots + extra, blocks + extra, 1)
    p = buffers.poisoned([(name, "int32", (n,), CANARY_INT) for name, n in
                          zip(fused_moe.VllmSortingResult._fields, sizes)], device)
    return fused_moe.VllmSortingResult(*p.views), p.allocations


def canaried_vllm_route_out(T, K, E, U, device, extra=0):
    views, full = canaried_vllm_sorting_out(T, K, E, U, device, extra)
    gating = buffers.poisoned(buffers.gating_fields(T, K), device).views
    return fused_moe.VllmRouteResult(*gating, *views), full


def expected_vllm(topk_ids, topk_weights, E, U, *, expert_mask=None, num_local_tokens=None):
    """The oracle's valid prefixes in the vLLM layout (oracles.layouts.vllm_from_ck)."""
    T, K = topk_ids.shape
    ck = oracles.moe_sorting(topk_ids, topk_weights, E, unit_size=U, expert_mask=expert_mask,
                             num_local_tokens=num_local_tokens)
    return vllm_from_ck(ck, T, K)


def check_vllm_sorting(views, full, expected, T, K, max_per_buffer=5):
    """vLLM-layout buffers against the oracle, exactly: the prefix, the tail filled up to each
    view's end (pad T*K, expert id -1) and the canaries past it. ``views``: what the kernel was
    given (or returned); ``full``: the allocations under them (None: no canaries)."""
    problems = []
    tails = (vllm_pad(T, K), -1, None)
    for name, view, alloc, prefix, tail in zip(fused_moe.VllmSortingResult._fields, views, full or views,
                                                expected, tails):
        got = alloc.cpu().numpy().astype(np.int64)
        want = np.full(got.size, CANARY_INT, dtype=np.int64)
        want[: view.numel()] = tail if tail is not None else CANARY_INT
        want[: prefix.size] = prefix
        bad = np.flatnonzero(got != want)
        for i in bad[:max_per_buffer]:
            where = "prefix" if i < prefix.size else "tail" if i < view.numel() else "canary past the end"
            problems.append(f"{name}[{i}] ({where}, length {view.numel()}, valid {prefix.size}): "
                            f"expected {want[i]}, found {got[i]}")
        if bad.size > max_per_buffer:
            problems.append(f"... and {bad.size - max_per_buffer} more in {name}")
    return oracles.CheckReport(problems)
