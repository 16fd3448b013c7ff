"""Input helpers shared by the oracles and the checkers (NumPy only).

Callers may pass NumPy arrays or anything with ``__array__`` (CPU torch tensors).
Objects that look like device tensors (they have ``detach`` and ``cpu``) are
copied to the host first; torch is never imported here.
"""
from __future__ import annotations

import numbers
import operator
import sys

import numpy as np

#: Largest T the packed token id ``(j << 24) | t`` can address.
MAX_TOKENS = 1 << 24
#: Largest K: ``(K << 24) | M`` must fit in a non-negative int32.
MAX_TOPK = 127


def as_numpy(x, name: str) -> np.ndarray:
    """Return ``x`` as a NumPy array without importing torch.

    Tensors on a device are moved to the host through their own ``.detach().cpu()``.
    Types NumPy cannot represent (torch bfloat16) are reinterpreted as raw bytes
    (uint8, last axis widened) through the already-imported torch module; that
    is only meaningful for byte-level comparisons (``check_moe_buf``).
    """
    if isinstance(x, np.ndarray):
        return x
    if hasattr(x, "detach") and hasattr(x, "cpu"):
        x = x.detach().cpu()
    try:
        return np.asarray(x)
    except (TypeError, RuntimeError) as exc:
        torch = sys.modules.get(type(x).__module__.split(".")[0])
        if torch is not None and hasattr(torch, "uint8") and hasattr(x, "view"):
            try:
                return np.asarray(x.contiguous().view(torch.uint8))
            except Exception:  # pragma: no cover - fall through to the error below
                pass
        raise TypeError(f"{name}: cannot convert {type(x).__name__} to a NumPy array ({exc})") from exc


def as_int(x, name: str, *, allow_array: bool = False) -> int:
    """A Python int from an int, a NumPy integer scalar or (``allow_array``) a one-element integer array."""
    if isinstance(x, (bool, np.bool_)):
        raise TypeError(f"{name} must be an integer, got bool")
    if isinstance(x, numbers.Integral):
        return int(x)
    if allow_array and not isinstance(x, (numbers.Number, str, bytes)):
        try:
            a = as_numpy(x, name)
        except TypeError:
            a = None
        if a is not None and a.size == 1 and np.issubdtype(a.dtype, np.integer):
            return int(a.reshape(-1)[0])
        if a is not None and a.size != 1:
            raise ValueError(f"{name} must hold exactly one integer, got {a.size} elements")
    try:
        return operator.index(x)
    except TypeError:
        raise TypeError(
            f"{name} must be an integer{' (or a one-element integer array)' if allow_array else ''}, "
            f"got {type(x).__name__}") from None


def as_flag(x, name: str) -> bool:
    """A Python bool from a bool or a NumPy bool; anything else is a TypeError naming the
    argument (a string such as ``"no"`` must not be taken for its truth value)."""
    if isinstance(x, (bool, np.bool_)):
        return bool(x)
    raise TypeError(f"{name} must be a bool, got {type(x).__name__}")


def as_logits(logits, name: str = "logits") -> np.ndarray:
    """``logits`` as a 2-D float32 array (float16 is upcast exactly; other dtypes are refused)."""
    x = as_numpy(logits, name)
    if x.dtype == np.float16:
        x = x.astype(np.float32)
    if x.dtype != np.float32:
        raise TypeError(f"{name} must be float32 or float16 (pass an exact float32 upcast of bfloat16), got {x.dtype}")
    if x.ndim != 2:
        raise ValueError(f"{name} must be 2-D [T, E], got shape {x.shape}")
    if x.shape[1] < 1:
        raise ValueError(f"{name} must have E >= 1 columns (experts), got shape {x.shape}")
    return np.ascontiguousarray(x)


def as_topk(topk, num_experts: int, name: str = "topk") -> int:
    """Validate K: ``1 <= topk <= E``."""
    k = as_int(topk, name)
    if not 1 <= k <= num_experts:
        raise ValueError(f"{name} must satisfy 1 <= {name} <= E={num_experts}, got {k}")
    return k


def as_num_experts(num_experts, name: str = "num_experts") -> int:
    e = as_int(num_experts, name)
    if e < 1:
        raise ValueError(f"{name} must be >= 1, got {e}")
    return e


def as_unit_size(unit_size, name: str = "unit_size") -> int:
    u = as_int(unit_size, name)
    if u < 1:
        raise ValueError(f"{name} must be >= 1, got {u}")
    return u


def as_num_local_tokens(num_local_tokens, T: int, name: str = "num_local_tokens") -> int:
    """``M``: None means ``T``; else an int (or one-element integer array) with ``0 <= M <= T``."""
    if num_local_tokens is None:
        return T
    m = as_int(num_local_tokens, name, allow_array=True)
    if not 0 <= m <= T:
        raise ValueError(f"{name} must satisfy 0 <= {name} <= T={T}, got {m}")
    return m


def as_expert_mask(expert_mask, num_experts: int, name: str = "expert_mask"):
    """None, or a bool array of length E (nonzero entries are kept experts)."""
    if expert_mask is None:
        return None
    m = as_numpy(expert_mask, name)
    if not (m.dtype == np.bool_ or np.issubdtype(m.dtype, np.integer)):
        raise TypeError(f"{name} must be a bool or integer array of length E={num_experts}, got dtype {m.dtype}")
    if m.ndim != 1 or m.shape[0] != num_experts:
        raise ValueError(f"{name} must have shape ({num_experts},) (one entry per expert, E={num_experts}), "
                         f"got {m.shape}")
    return m != 0
