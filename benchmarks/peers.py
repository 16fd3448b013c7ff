"""Other projects' routing pipelines, for benchmarks only, each used only when its package
imports: nothing here ships, and no peer code is copied (we call their installed packages).

- ``aiter-triton``: aiter's Triton MoE routing (``aiter.ops.triton.moe_routing.routing``,
  derived from Triton's ``triton_kernels`` routing): top-k with softmax over the selected
  logits, a bitmatrix histogram, then one launch that computes the expert offsets and
  places every gate. No per-block padding, weights in the logits' dtype: a lighter output
  than ours. aiter's top-level package needs ROCm; ``tools/peer_packages.py`` installs
  just these modules from its wheel so they import on CUDA too.
- ``cuda-pair``: sgl-kernel ``topk_softmax`` + vLLM ``moe_align_block_size`` (vLLM's
  kernel structure, vLLM layout), when both ``sgl_kernel`` and ``vllm`` import.

Each pipeline is checked against torch before it is timed (``check``), so a broken or
mis-called peer never enters a table.
"""
from __future__ import annotations

import importlib
from typing import Callable, NamedTuple

import torch


class Peer(NamedTuple):
    name: str
    build: Callable  # (logits, K, U) -> a no-argument callable running one routing call
    check: Callable  # (logits, K, U) -> None, raises AssertionError when the output is wrong


def _reference_ids(logits, K):
    """Each row's top-K experts, ascending (tie-free logits: any correct kernel agrees)."""
    return torch.topk(logits.float(), K, dim=1).indices.sort(dim=1).values


# --------------------------------------------------------------------------- aiter Triton routing


def _aiter_routing():
    return importlib.import_module("aiter.ops.triton.moe_routing.routing").routing


def _aiter_build(logits, K, U):
    routing = _aiter_routing()
    return lambda: routing(logits, K)


def _aiter_check(logits, K, U):
    data, gather, _ = _aiter_routing()(logits, K)
    flat = _reference_ids(logits, K).reshape(-1)
    hist = torch.bincount(flat, minlength=logits.shape[1])
    assert torch.equal(data.expt_hist.long().cpu(), hist.cpu()), "aiter routing: expert histogram differs"
    experts = flat[gather.long()]
    assert bool((experts[1:] >= experts[:-1]).all()), "aiter routing: gates not grouped by expert"


# --------------------------------------------------------------------------- sgl-kernel + vLLM


def _pair_modules():
    sgl = importlib.import_module("sgl_kernel")
    vllm_ops = importlib.import_module("vllm._custom_ops")
    return sgl, vllm_ops


def _pair_build(logits, K, U):
    sgl, ops = _pair_modules()
    T, E = logits.shape
    weights = torch.empty(T, K, dtype=torch.float32, device=logits.device)
    ids = torch.empty(T, K, dtype=torch.int32, device=logits.device)
    slots = T * K + E * (U - 1)
    sorted_ids = torch.empty(slots, dtype=torch.int32, device=logits.device)
    expert_ids = torch.empty(-(-slots // U), dtype=torch.int32, device=logits.device)
    post_pad = torch.empty(1, dtype=torch.int32, device=logits.device)
    gating = logits.float() if logits.dtype != torch.float32 else logits

    def call():
        sgl.topk_softmax(weights, ids, gating, True)
        ops.moe_align_block_size(ids, E, U, sorted_ids, expert_ids, post_pad)
    return call


def _pair_check(logits, K, U):
    sgl, _ = _pair_modules()
    T, _ = logits.shape
    weights = torch.empty(T, K, dtype=torch.float32, device=logits.device)
    ids = torch.empty(T, K, dtype=torch.int32, device=logits.device)
    sgl.topk_softmax(weights, ids, logits.float(), True)
    assert torch.equal(ids.sort(dim=1).values.long(), _reference_ids(logits, K)), "sgl-kernel topk_softmax differs"


PEERS = (Peer("aiter-triton", _aiter_build, _aiter_check), Peer("cuda-pair", _pair_build, _pair_check))


def available(device="cuda"):
    """(peers that import and pass their check on a small input, {name: why not})."""
    logits = torch.randn(64, 128, device=device, dtype=torch.bfloat16)
    ready, missing = [], {}
    for peer in PEERS:
        try:
            peer.check(logits, 4, 32)
        except ImportError as exc:
            missing[peer.name] = f"not importable ({exc.name or exc})"
            continue
        except Exception as exc:  # a peer that runs but fails its check is reported, not timed
            missing[peer.name] = f"failed its check: {type(exc).__name__}: {exc}"
            continue
        ready.append(peer)
    return ready, missing
