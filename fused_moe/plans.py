"""Per-shape launch plans, cached by what fixes every check and every kernel specialization.

A public call first describes its arguments (``describe``: class, dtype, shape, strides,
device and address modulo 16 of each tensor; type and value of everything else). The
first call with a description validates everything and builds a plan; later calls with
the same description reuse it, so they skip validation (a pure function of what the
description holds) and Triton's argument binding (see launcher.py). Arguments the
description cannot hold (unhashable, not tensors) take the validating path every time,
which raises the usual errors.
"""
import torch

MAX_PLANS = 4096  # a serving loop sees one plan per batch size; a fuzzer sees many
_CACHES = []


def clear_plans():
    """Forget every cached plan (compiled kernels stay in Triton's cache): for tests that
    must start from an empty cache, or to drop the plans of shapes no longer used."""
    for cache in _CACHES:
        cache.plans.clear()


def describe(x):
    if isinstance(x, torch.Tensor):
        return (x.__class__, x.dtype, x.shape, x.stride(), x.device, x.data_ptr() % 16)
    if isinstance(x, tuple):  # out= buffers
        return (x.__class__, *map(describe, x))
    return (x.__class__, x)


def plan_key(*args):
    """The cache key of a call's arguments; None when they cannot all be described (the
    validating path then raises the right error)."""
    try:
        return tuple(map(describe, args))
    except Exception:
        return None


class PlanCache:
    def __init__(self, build):
        self.build, self.plans = build, {}
        _CACHES.append(self)

    def get(self, key, *args):
        """The plan for key (None: not cacheable), built from args on a miss."""
        try:
            plan = self.plans.get(key)
        except TypeError:  # unhashable argument
            key = plan = None
        if plan is None:
            plan = self.build(*args)
            if key is not None:
                if len(self.plans) >= MAX_PLANS:
                    self.plans.clear()
                self.plans[key] = plan
        return plan
