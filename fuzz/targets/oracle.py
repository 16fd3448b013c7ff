"""The NumPy oracle behind the targets' call signatures (torch tensors in and out).

They must pass every property (a self-test of the harness) and are what
:mod:`fuzz.planted` breaks on purpose. :func:`write_sorting` stores a valid prefix into
``out=`` buffers (or fresh ones) touching nothing past it, as a kernel must.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

import oracles
from fuzz import buffers


def _torch():
    import torch
    return torch


def host(x):
    """A torch tensor (any device) or array as NumPy; float16/bfloat16 upcast exactly to float32."""
    torch = _torch()
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu()
        if x.dtype in (torch.float16, torch.bfloat16):
            x = x.float()
        return x.numpy()
    return np.asarray(x)


def m_value(num_local_tokens, T: int) -> int:
    return T if num_local_tokens is None else int(host(num_local_tokens).reshape(-1)[0])


def zero_rows(moe_buf, M: int) -> None:
    if moe_buf is not None:
        moe_buf[:M] = 0


def _fresh(layout: str, T: int, K: int, E: int, U: int, device, capacity: str = "tight") -> tuple:
    torch = _torch()
    return tuple(torch.zeros(shape, dtype=getattr(torch, dtype), device=device)
                 for _, dtype, shape, _ in buffers.sorting_fields(layout, capacity, T, K, E, U))


def write_sorting(prefix, T, K, E, U, device, out=None, *, written=None, layout: str = "ck",
                  capacity: str = "tight") -> tuple:
    """Write a valid-prefix result (NumPy, CK layout) into ``out`` (or fresh buffers sized by
    the ``capacity`` rule) in ``layout``, touching nothing past the prefix in the CK layout and
    filling the whole buffers in the vLLM one. ``written`` optionally masks the positions of
    the slots actually stored (planted bugs)."""
    torch = _torch()
    out = _fresh(layout, T, K, E, U, device, capacity) if out is None else tuple(out)
    keep = np.ones(prefix[0].size, bool) if written is None else written.copy()
    keep[out[0].numel():] = False  # a buggy layout may not fit (a kernel would scribble past the buffer)
    idx = torch.from_numpy(np.flatnonzero(keep)).to(device)
    if layout == "vllm":
        v = oracles.vllm_from_ck(oracles.SortingResult(*prefix), T, K)
        out[0].fill_(oracles.layouts.vllm_pad(T, K))
        out[1].fill_(-1)
        out[0][idx] = torch.from_numpy(v.sorted_token_ids[keep[: v.sorted_token_ids.size]]).to(device)
        eid = v.expert_ids[: out[1].numel()]
        out[1][: eid.size] = torch.from_numpy(eid).to(device)
        out[2][:1] = torch.from_numpy(v.num_tokens_post_pad).to(device)
        return out
    tok, wts, eid, nv = (np.asarray(a) for a in prefix)
    eid = eid[: out[2].numel()]
    out[0][idx] = torch.from_numpy(tok[keep].astype(np.int32)).to(device)
    out[1].view(torch.int32)[idx] = torch.from_numpy(wts[keep].view(np.int32)).to(device)
    out[2][: eid.size] = torch.from_numpy(eid.astype(np.int32)).to(device)
    out[3][:2] = torch.from_numpy(nv.astype(np.int32)).to(device)
    return out


def gating(logits, topk, *, renormalize=True):
    torch = _torch()
    r = oracles.topk_gating_softmax(host(logits), topk, renormalize=renormalize)
    return oracles.GatingResult(torch.from_numpy(r.topk_weights).to(logits.device),
                                torch.from_numpy(r.topk_ids).to(logits.device))


def sorting_in(layout: str) -> Callable:
    """The oracle's sorting in ``layout`` behind the kernel's signature."""
    def sorting(topk_ids, topk_weights, num_experts, *, unit_size=32, expert_mask=None, num_local_tokens=None,
                moe_buf=None, out=None):
        T, K = topk_ids.shape
        M = m_value(num_local_tokens, T)
        mask = None if expert_mask is None else host(expert_mask)
        prefix = oracles.moe_sorting(host(topk_ids), host(topk_weights), num_experts, unit_size=unit_size,
                                     expert_mask=mask, num_local_tokens=M)
        zero_rows(moe_buf, M)
        return write_sorting(prefix, T, K, num_experts, unit_size, topk_ids.device, out, layout=layout)
    sorting.__name__ = sorting.__qualname__ = f"oracle_sorting_{layout}"
    return sorting


def route_from(gating_fn: Callable, sorting_fn: Callable) -> Callable:
    """A route function composed of a gating function and a sorting function."""
    def route(logits, topk, *, unit_size=32, renormalize=True, expert_mask=None, num_local_tokens=None,
              moe_buf=None, out=None):
        g = gating_fn(logits, topk, renormalize=renormalize)
        weights, ids = g[0], g[1]
        if out is not None:
            out[0].copy_(weights)
            out[1].copy_(ids)
            weights, ids = out[0], out[1]
        s = sorting_fn(ids, weights, logits.shape[1], unit_size=unit_size, expert_mask=expert_mask,
                       num_local_tokens=num_local_tokens, moe_buf=moe_buf, out=None if out is None else out[2:])
        return (weights, ids, *s)
    route.__name__ = route.__qualname__ = f"route_from({gating_fn.__name__}, {sorting_fn.__name__})"
    return route


sorting = sorting_in("ck")
route = route_from(gating, sorting)
