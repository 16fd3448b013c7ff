"""MoE routing kernels in Triton: top-k gating softmax, MoE sorting, and the fused route.

Set TRITON_INTERPRET=1 before importing this package to run the kernels on the CPU.
"""
from .buffers import allocate_route_outputs, allocate_sorting_outputs, capacity
from .geometry import DISPATCH_THRESHOLDS, choose_path
from .gating import topk_gating_softmax
from .results import GatingResult, RouteResult, SortingResult, VllmRouteResult, VllmSortingResult
from .route import route
from .sorting import moe_sorting

__all__ = [
    "DISPATCH_THRESHOLDS", "GatingResult", "RouteResult", "SortingResult", "VllmRouteResult", "VllmSortingResult",
    "allocate_route_outputs", "allocate_sorting_outputs", "capacity", "choose_path", "moe_sorting", "route",
    "topk_gating_softmax",
]
