"""Output capacity, allocation and caller-passed ``out=`` buffers."""
import torch

from .launcher import current_stream
from .results import RouteResult, SortingResult, VllmRouteResult, VllmSortingResult

_INT32_MAX = 2**31 - 1
LAYOUTS = ("ck", "vllm")  # SPEC section 2; oracles/layouts.py
_RESULTS = {"ck": (SortingResult, RouteResult), "vllm": (VllmSortingResult, VllmRouteResult)}
_SORTING_DTYPES = {"ck": (torch.int32, torch.float32, torch.int32, torch.int32),
                   "vllm": (torch.int32, torch.int32, torch.int32)}


def check_layout(layout):
    if not isinstance(layout, str) or layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {', '.join(map(repr, LAYOUTS))}; got {layout!r}")
    return layout


def result_types(layout):
    """(sorting result, route result) NamedTuple classes of a layout."""
    return _RESULTS[layout]


def capacity(T, K, E, unit_size):
    """(max_tokens_padded, max_blocks): the tight bound of SPEC section 2."""
    assignments = T * K
    max_tokens_padded = assignments + min(E, assignments) * (unit_size - 1)
    return max_tokens_padded, -(-max_tokens_padded // unit_size)


def check_capacity(T, K, E, unit_size):
    slots, blocks = capacity(T, K, E, unit_size)
    if slots > _INT32_MAX:
        raise ValueError(f"unit_size={unit_size} with T={T}, K={K}, E={E} needs {slots} sorted slots, "
                         "more than int32 offsets address; use a smaller unit_size or fewer tokens")
    return slots, blocks


def allocate_sorting_outputs(T, K, E, unit_size, device, layout="ck"):
    """Capacity-sized SortingResult (VllmSortingResult with ``layout="vllm"``) for ``out=``
    (e.g. allocated once before CUDA-graph capture)."""
    slots, blocks = check_capacity(T, K, E, unit_size)
    if check_layout(layout) == "vllm":
        return VllmSortingResult(
            torch.empty(slots, dtype=torch.int32, device=device),
            torch.empty(blocks, dtype=torch.int32, device=device),
            torch.empty(1, dtype=torch.int32, device=device),
        )
    return SortingResult(
        torch.empty(slots, dtype=torch.int32, device=device),
        torch.empty(slots, dtype=torch.float32, device=device),
        torch.empty(blocks, dtype=torch.int32, device=device),
        torch.empty(2, dtype=torch.int32, device=device),
    )


def allocate_gating_outputs(T, K, device):
    return (torch.empty((T, K), dtype=torch.float32, device=device),
            torch.empty((T, K), dtype=torch.int32, device=device))


def allocate_route_outputs(T, K, E, unit_size, device, layout="ck"):
    """Capacity-sized RouteResult (VllmRouteResult with ``layout="vllm"``) for ``route(..., out=)``."""
    sorting = allocate_sorting_outputs(T, K, E, unit_size, device, layout)
    return result_types(layout)[1](*allocate_gating_outputs(T, K, device), *sorting)


def check_sorting_out(out, T, K, E, unit_size, device, layout="ck"):
    result = result_types(layout)[0]
    if not isinstance(out, tuple) or len(out) != len(result._fields):
        raise TypeError(f"out must be a {result.__name__} ({len(result._fields)} tensors) from "
                        f"allocate_sorting_outputs(..., layout={layout!r})")
    slots, blocks = check_capacity(T, K, E, unit_size)
    needs = (slots, slots, blocks, 2) if layout == "ck" else (slots, blocks, 1)
    for name, x, dtype, need in zip(result._fields, out, _SORTING_DTYPES[layout], needs):
        if not isinstance(x, torch.Tensor) or x.dtype != dtype:
            raise TypeError(f"out.{name} must be a {dtype} tensor")
        if not x.is_contiguous() or x.numel() < need:
            raise ValueError(f"out.{name} must be contiguous with at least {need} elements "
                             f"(capacity for T={T}, K={K}, E={E}, unit_size={unit_size}), got {x.numel()}")
        if x.device != device:
            raise ValueError(f"out.{name} is on {x.device} but the inputs are on {device}")
    return result(*out)


def check_route_out(out, T, K, E, unit_size, device, layout="ck"):
    result = result_types(layout)[1]
    if not isinstance(out, tuple) or len(out) != len(result._fields):
        raise TypeError(f"out must be a {result.__name__} ({len(result._fields)} tensors) from "
                        f"allocate_route_outputs(..., layout={layout!r})")
    for name, x, dtype in zip(result._fields[:2], out[:2], (torch.float32, torch.int32)):
        if not isinstance(x, torch.Tensor) or x.dtype != dtype or tuple(x.shape) != (T, K) \
                or not x.is_contiguous() or x.device != device:
            raise ValueError(f"out.{name} must be a contiguous {dtype} tensor of shape ({T}, {K}) on {device}")
    return result(*out[:2], *check_sorting_out(tuple(out[2:]), T, K, E, unit_size, device, layout))


def tail_lengths(sorting_out, T, K, E, unit_size, layout):
    """The kernels' n_sorted and n_blocks: in the vLLM layout the lengths of sorted_token_ids
    and expert_ids (written to their ends; capacity without out=), 0 in the CK layout (unused)."""
    if layout != "vllm":
        return dict(n_sorted=0, n_blocks=0)
    if sorting_out is None:
        slots, blocks = capacity(T, K, E, unit_size)
    else:
        slots, blocks = sorting_out[0].numel(), sorting_out[1].numel()
    return dict(n_sorted=slots, n_blocks=blocks)


def kernel_outputs(sorting_out, layout):
    """The four sorting buffers in the kernels' order (sorted ids, weights, expert ids,
    counts). The vLLM layout has no sorted weights: num_tokens_post_pad stands in for them
    (never written as such with VLLM on)."""
    if layout == "vllm":
        ids, expert_ids, post_pad = sorting_out
        return ids, post_pad, expert_ids, post_pad
    return tuple(sorting_out)


_counters = {}


def arrival_counter(device):
    """One zeroed int32 per (device, stream): the fused kernel's last arriver resets it, so it
    is zero again after every call and every graph replay. A counter first needed during a
    CUDA-graph capture is zeroed by the graph itself (the fill is captured): correct on
    every replay; eager calls on that capture stream before the first replay are not."""
    if device.type == "cuda":
        index = torch.cuda.current_device() if device.index is None else device.index
        key = (device, current_stream(index))
    else:
        key = (device, 0)
    counter = _counters.get(key)
    if counter is None:
        counter = _counters[key] = torch.zeros(1, dtype=torch.int32, device=device)
    return counter
