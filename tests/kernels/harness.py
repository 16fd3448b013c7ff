"""Poisoned outputs, canaries and fresh inputs for the kernel tests.

Every output buffer is larger than the capacity and filled with a canary before
the call (the one builder of fuzz/buffers.py), so an unwritten element inside a valid
prefix (still the canary) and a write past it (canary changed) both fail the oracle
checkers.
"""
import secrets

import numpy as np
import torch

import fused_moe
from fuzz import buffers

def poisoned_sorting_out(T, K, E, U, device):
    """The fuzz harness's canary-filled buffers (fuzz/buffers.py), whole: the capacity plus a guard."""
    return fused_moe.SortingResult(*buffers.poisoned_sorting("ck", "tight", T, K, E, U, device).allocations)


def poisoned_route_out(T, K, E, U, device):
    p = buffers.poisoned_route("ck", "tight", T, K, E, U, device)
    return fused_moe.RouteResult(p.views[0], p.views[1], *p.allocations[2:])


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
