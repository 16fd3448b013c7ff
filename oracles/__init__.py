"""Pure-NumPy oracles for MoE routing (SPEC sections 1-3) and checkers for kernel outputs.

Imports NumPy only, never torch or triton. Tie, NaN and limit rules live in the
docstrings of :func:`topk_gating_softmax` and :func:`moe_sorting`.
"""
from .checks import CheckReport, check_gating, check_moe_buf, check_route, check_sorting, check_sorting_vllm
from .layouts import VllmRouteResult, VllmSortingResult, ck_from_vllm, vllm_capacity, vllm_from_ck
from .gating import GatingResult, topk_gating_softmax
from .route import RouteResult, route
from .sorting import SortingResult, capacity, moe_sorting, sentinel

__all__ = [
    "GatingResult", "SortingResult", "RouteResult",
    "topk_gating_softmax", "moe_sorting", "route", "capacity", "sentinel",
    "CheckReport", "check_gating", "check_sorting", "check_sorting_vllm", "check_route", "check_moe_buf",
    "VllmSortingResult", "VllmRouteResult", "vllm_from_ck", "ck_from_vllm", "vllm_capacity",
]
