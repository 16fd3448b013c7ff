"""Argument checks for the public API: ValueError / TypeError naming the argument and
what is allowed. Nothing here touches device memory or syncs the host."""
import operator
import os
import sys

import torch

MAX_TOKENS = 2**24  # token index lives in the low 24 bits of sorted_token_ids
MAX_TOPK_SORTED = 127  # slot index lives in the high 7 bits
LOGIT_DTYPES = (torch.float32, torch.float16, torch.bfloat16)


def _interpreting() -> bool:
    return os.environ.get("TRITON_INTERPRET") == "1"


def check_tensor(name, x, *, dtypes=None, ndim=None):
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if dtypes is not None and x.dtype not in dtypes:
        allowed = ", ".join(str(d).replace("torch.", "") for d in dtypes)
        raise TypeError(f"{name} must have dtype {allowed}; got {str(x.dtype).replace('torch.', '')}")
    if ndim is not None and x.dim() != ndim:
        raise ValueError(f"{name} must be {ndim}-D, got shape {tuple(x.shape)}")
    if x.device.type == "cpu" and not _interpreting():
        raise ValueError(f"{name} is on the CPU: move it to a GPU, or set TRITON_INTERPRET=1 "
                         "before importing fused_moe to run the Triton interpreter")


def check_same_device(name, x, ref):
    if x.device != ref.device:
        raise ValueError(f"{name} is on {x.device} but the inputs are on {ref.device}")


def _is_bool(value):
    """A Python bool, a NumPy bool or a bool tensor (all of which have __index__ or __bool__)."""
    if isinstance(value, bool) or (isinstance(value, torch.Tensor) and value.dtype == torch.bool):
        return True
    numpy = sys.modules.get("numpy")  # a NumPy bool exists only if NumPy was imported
    return numpy is not None and isinstance(value, numpy.bool_)


def as_int(name, value):
    """A Python int from anything with ``__index__`` (NumPy integers, one-element integer
    tensors) except a bool: TypeError naming the argument otherwise. Public calls apply it
    before the plan key, so ``np.int64(8)`` and ``8`` share a plan."""
    if type(value) is int:
        return value
    if not _is_bool(value):
        try:
            return operator.index(value)
        except TypeError:
            pass
    raise TypeError(f"{name} must be an int, got {type(value).__name__}")


def as_flag(name, value):
    """A Python bool from a bool or a NumPy bool; anything else (a string, an int, a tensor)
    is a TypeError naming the argument, never its truth value."""
    if value is True or value is False:
        return value
    numpy = sys.modules.get("numpy")
    if numpy is not None and isinstance(value, numpy.bool_):
        return bool(value)
    raise TypeError(f"{name} must be a bool, got {type(value).__name__}")


def as_local_tokens(num_local_tokens):
    """num_local_tokens before the plan key: None and tensors as they are, anything else an int."""
    if num_local_tokens is None or isinstance(num_local_tokens, torch.Tensor):
        return num_local_tokens
    return as_int("num_local_tokens", num_local_tokens)


def check_int(name, value, low, high=None):
    value = as_int(name, value)
    if value < low or (high is not None and value > high):
        hi = "" if high is None else f" and <= {high}"
        raise ValueError(f"{name} must be >= {low}{hi}, got {value}")
    return value


def check_topk(topk, num_experts, limit=None):
    check_int("topk", topk, 1)
    if topk > num_experts:
        raise ValueError(f"topk must be <= num_experts ({num_experts}), got {topk}")
    if limit is not None and topk > limit:
        raise ValueError(f"topk must be <= {limit} (the slot index is packed in 7 bits), got {topk}")


def check_tokens(T):
    if T >= MAX_TOKENS:
        raise ValueError(f"the number of tokens must be < 2**24 (packed in 24 bits), got {T}")


def expert_mask_arg(expert_mask, num_experts, ref):
    """None, or an integer/bool tensor of num_experts values on ref's device (nonzero = kept)."""
    if expert_mask is None:
        return None
    check_tensor("expert_mask", expert_mask, ndim=1)
    if expert_mask.dtype.is_floating_point or expert_mask.dtype.is_complex:
        raise TypeError(f"expert_mask must be a bool or integer tensor, got {expert_mask.dtype}")
    if expert_mask.numel() != num_experts:
        raise ValueError(f"expert_mask must have num_experts={num_experts} entries, got {expert_mask.numel()}")
    if not expert_mask.is_contiguous():
        raise ValueError(f"expert_mask must be contiguous, got stride {expert_mask.stride()}")
    check_same_device("expert_mask", expert_mask, ref)
    return expert_mask


def local_tokens_arg(num_local_tokens, T, ref):
    """-> (m_tensor or None, m_value). A device tensor is read by the kernel (values outside
    [0, T] are clamped there); a host int is checked here."""
    if num_local_tokens is None:
        return None, T
    if isinstance(num_local_tokens, torch.Tensor):
        if num_local_tokens.dtype != torch.int32 or num_local_tokens.numel() != 1:
            raise TypeError("num_local_tokens as a tensor must be int32 with exactly one element, "
                            f"got {num_local_tokens.dtype} with {num_local_tokens.numel()} elements")
        check_same_device("num_local_tokens", num_local_tokens, ref)
        return num_local_tokens, 0
    check_int("num_local_tokens", num_local_tokens, 0, T)
    return None, num_local_tokens


def moe_buf_arg(moe_buf, T, ref):
    """-> (word bytes, words per row); (0, 0) without a buffer. Rows [0, M) are zeroed byte
    for byte, as the widest integer word that divides a row and the base address."""
    if moe_buf is None:
        return 0, 0
    if not isinstance(moe_buf, torch.Tensor):
        raise TypeError(f"moe_buf must be a torch.Tensor, got {type(moe_buf).__name__}")
    if moe_buf.dim() < 1 or not moe_buf.is_contiguous():
        raise ValueError("moe_buf must be a contiguous tensor whose first dimension is tokens")
    if moe_buf.shape[0] < T:
        raise ValueError(f"moe_buf must have at least T={T} rows, got {moe_buf.shape[0]}")
    check_same_device("moe_buf", moe_buf, ref)
    rows = moe_buf.shape[0]
    row_bytes = (moe_buf.numel() // rows if rows else 0) * moe_buf.element_size()
    for word in (8, 4, 2):
        if row_bytes % word == 0 and moe_buf.data_ptr() % word == 0:
            return word, row_bytes // word
    return 1, row_bytes


# dtypes a Triton kernel takes a pointer to; moe_buf of any other dtype goes in as bytes
_TRITON_DTYPES = frozenset((torch.float16, torch.bfloat16, torch.float32, torch.float64, torch.int8,
                            torch.int16, torch.int32, torch.int64, torch.uint8, torch.bool))


def kernel_pointers(expert_mask, num_local_tokens, moe_buf, dummy):
    """Per call, after validation: (mask, M, moe_buf) as the kernels take them, ``dummy``
    for each one absent."""
    mask = dummy if expert_mask is None else (
        expert_mask.view(torch.uint8) if expert_mask.dtype == torch.bool else expert_mask)
    m = num_local_tokens if isinstance(num_local_tokens, torch.Tensor) else dummy
    if moe_buf is None:
        buf = dummy
    else:
        buf = moe_buf if moe_buf.dtype in _TRITON_DTYPES else moe_buf.reshape(-1).view(torch.uint8)
    return mask, m, buf
