"""What tests/quality pins of a shrunk case: its size plus the values that make it fail.

``observed(case)`` reduces a case to plain data (sizes, logits as float32 bit patterns so
that -NaN and NaN differ, ids, options); a pin is such a dict, possibly with fewer keys,
and :func:`matches` compares only the keys the pin names (Hypothesis's own quality tests
compare a shrunk value with the expected minimal one the same way). Values drawn from the
seeded NumPy generator that cannot matter to the bug (sorting weights, batch filler rows,
the fresh logits of later reuse calls) are left out.
"""
from __future__ import annotations

import numpy as np

from fuzz.cases import BatchCase, GatingCase, ReuseCase, RouteCase, SortingCase

NAN, NEG_NAN, INF = float("nan"), -float("nan"), float("inf")
#: Arrays with more elements than this are pinned by their size only.
SHOWN = 16


def _options(o) -> str:
    return repr(o)


def _values(a: np.ndarray):
    return None if a.size > SHOWN else a.tolist()


def observed(case) -> dict:
    if isinstance(case, GatingCase):
        lg = case.logits
        return {"size": case.size(), "dtype": lg.dtype, "strided": (lg.col_pad, lg.col_offset),
                "renormalize": case.renormalize, "logits": _values(lg.values)}
    if isinstance(case, RouteCase):
        lg = case.logits
        return {"size": case.size(), "dtype": lg.dtype, "strided": (lg.col_pad, lg.col_offset),
                "renormalize": case.renormalize, "logits": _values(lg.values), "options": _options(case.options)}
    if isinstance(case, SortingCase):
        bits = case.topk_weights.view(np.uint32)
        return {"size": case.size(), "ids": _values(case.topk_ids), "options": _options(case.options),
                "weight_bits": None if bits.size > SHOWN else [hex(b) for b in bits.reshape(-1).tolist()]}
    if isinstance(case, BatchCase):
        return {**observed(case.case), "rows": list(case.rows), "other_batch": case.size()["T_other"]}
    if isinstance(case, ReuseCase):
        return {"size": case.size(), "first": observed(case.calls[0]),
                "options": [_options(c.options) for c in case.calls]}
    raise TypeError(f"no summary for {type(case).__name__}")


def _same(a, b) -> bool:
    """Equal, floats compared by their float32 bits (so -NaN != NaN and -0.0 != 0.0)."""
    if isinstance(a, float) or isinstance(b, float):
        try:
            return np.float32(a).view(np.uint32) == np.float32(b).view(np.uint32)
        except (TypeError, ValueError):
            return False
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    return a == b


def mismatches(pin: dict, case) -> dict:
    """{key: (pinned, observed)} for each key of ``pin`` the case differs in."""
    seen = observed(case)
    return {k: (v, seen.get(k)) for k, v in pin.items() if not _same(v, seen.get(k))}
