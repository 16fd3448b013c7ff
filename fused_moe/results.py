"""Result types of the public API (the same field names as the NumPy oracle)."""
from typing import NamedTuple

import torch


class GatingResult(NamedTuple):
    topk_weights: torch.Tensor  # (T, K) float32
    topk_ids: torch.Tensor  # (T, K) int32


class SortingResult(NamedTuple):
    sorted_token_ids: torch.Tensor  # (capacity,) int32, (j << 24) | t; padding (K << 24) | M
    sorted_weights: torch.Tensor  # (capacity,) float32; padding 0.0
    sorted_expert_ids: torch.Tensor  # (capacity // U rounded up,) int32, local expert id per block
    num_valid_ids: torch.Tensor  # (2,) int32, [total padded slots, M]


class RouteResult(NamedTuple):
    topk_weights: torch.Tensor
    topk_ids: torch.Tensor
    sorted_token_ids: torch.Tensor
    sorted_weights: torch.Tensor
    sorted_expert_ids: torch.Tensor
    num_valid_ids: torch.Tensor


class VllmSortingResult(NamedTuple):
    """``moe_sorting(..., layout="vllm")``: vLLM's ``moe_align_block_size`` layout
    (oracles/layouts.py). Every element of each buffer is written, to its end."""
    sorted_token_ids: torch.Tensor  # (>= capacity,) int32, t * K + j; padding and tail T * K
    expert_ids: torch.Tensor  # (>= capacity // U rounded up,) int32, local expert id per block; -1 past P // U
    num_tokens_post_pad: torch.Tensor  # (1,) int32, [P]


class VllmRouteResult(NamedTuple):
    topk_weights: torch.Tensor
    topk_ids: torch.Tensor
    sorted_token_ids: torch.Tensor
    expert_ids: torch.Tensor
    num_tokens_post_pad: torch.Tensor
