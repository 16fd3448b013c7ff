"""Output capacity, allocation and caller-passed ``out=`` buffers."""
import torch

from .launcher import current_stream
from .results import RouteResult, SortingResult

_INT32_MAX = 2**31 - 1


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


def allocate_sorting_outputs(T, K, E, unit_size, device):
    """Capacity-sized SortingResult for ``out=`` (e.g. allocated once before CUDA-graph capture)."""
    slots, blocks = check_capacity(T, K, E, unit_size)
    return SortingResult(
        torch.empty(slots, dtype=torch.int32, device=device),
        torch.empty(slots, dtype=torch.float32, device=device),
        torch.empty(blocks, dtype=torch.int32, device=device),
        torch.empty(2, dtype=torch.int32, device=device),
    )


def allocate_gating_outputs(T, K, device):
    return (torch.empty((T, K), dtype=torch.float32, device=device),
            torch.empty((T, K), dtype=torch.int32, device=device))


def allocate_route_outputs(T, K, E, unit_size, device):
    """Capacity-sized RouteResult for ``route(..., out=)``."""
    return RouteResult(*allocate_gating_outputs(T, K, device), *allocate_sorting_outputs(T, K, E, unit_size, device))


_SORTING_DTYPES = (torch.int32, torch.float32, torch.int32, torch.int32)


def check_sorting_out(out, T, K, E, unit_size, device):
    if not isinstance(out, tuple) or len(out) != 4:
        raise TypeError("out must be a SortingResult (4 tensors) from allocate_sorting_outputs")
    slots, blocks = check_capacity(T, K, E, unit_size)
    for name, x, dtype, need in zip(SortingResult._fields, out, _SORTING_DTYPES, (slots, slots, blocks, 2)):
        if not isinstance(x, torch.Tensor) or x.dtype != dtype:
            raise TypeError(f"out.{name} must be a {dtype} tensor")
        if not x.is_contiguous() or x.numel() < need:
            raise ValueError(f"out.{name} must be contiguous with at least {need} elements "
                             f"(capacity for T={T}, K={K}, E={E}, unit_size={unit_size}), got {x.numel()}")
        if x.device != device:
            raise ValueError(f"out.{name} is on {x.device} but the inputs are on {device}")
    return SortingResult(*out)


def check_route_out(out, T, K, E, unit_size, device):
    if not isinstance(out, tuple) or len(out) != 6:
        raise TypeError("out must be a RouteResult (6 tensors) from allocate_route_outputs")
    for name, x, dtype in zip(RouteResult._fields[:2], out[:2], (torch.float32, torch.int32)):
        if not isinstance(x, torch.Tensor) or x.dtype != dtype or tuple(x.shape) != (T, K) \
                or not x.is_contiguous() or x.device != device:
            raise ValueError(f"out.{name} must be a contiguous {dtype} tensor of shape ({T}, {K}) on {device}")
    return RouteResult(*out[:2], *check_sorting_out(tuple(out[2:]), T, K, E, unit_size, device))


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
