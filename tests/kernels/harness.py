"""Poisoned outputs, canaries and fresh inputs for the kernel tests.

Every output buffer is larger than the capacity and filled with a canary before
the call, so an unwritten element inside a valid prefix (still the canary) and a
write past it (canary changed) both fail the oracle checkers.
"""
import secrets

import numpy as np
import torch

import fused_moe

CANARY_INT = 0x5A5A5A5A
CANARY_FLOAT_BITS = 0x7FC0DEAD  # a NaN: an unwritten weight can never pass a tolerance check
SLACK = 7  # canary elements past the capacity of every buffer


def fresh_seed():
    return secrets.randbits(31)


def _poison(x):
    if x.dtype == torch.float32:
        x.view(torch.int32).fill_(CANARY_FLOAT_BITS)
    else:
        x.fill_(CANARY_INT)
    return x


def poisoned_sorting_out(T, K, E, U, device):
    slots, blocks = fused_moe.capacity(T, K, E, U)
    return fused_moe.SortingResult(
        _poison(torch.empty(slots + SLACK, dtype=torch.int32, device=device)),
        _poison(torch.empty(slots + SLACK, dtype=torch.float32, device=device)),
        _poison(torch.empty(blocks + SLACK, dtype=torch.int32, device=device)),
        _poison(torch.empty(2, dtype=torch.int32, device=device)),
    )


def poisoned_route_out(T, K, E, U, device):
    return fused_moe.RouteResult(
        _poison(torch.empty((T, K), dtype=torch.float32, device=device)),
        _poison(torch.empty((T, K), dtype=torch.int32, device=device)),
        *poisoned_sorting_out(T, K, E, U, device),
    )


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
