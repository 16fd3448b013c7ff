"""Launching a kernel with as little host work per call as the GPU allows.

``kernel[grid](...)`` binds and specializes every argument on every call (Triton's
``JITFunction.run``): for a route's ~40 arguments that was most of a 69 us eager call on
an H100 (benchmarks/eager_probe.py). A ``KernelLaunch`` belongs to one plan (see
plans.py), whose cache key fixes every argument's specialization (dtypes, shapes,
strides, alignments, flags). Its first call goes through Triton as usual, which compiles;
later calls hand the arguments straight to the compiled kernel's launcher, exactly as
``JITFunction.run`` does after its cache lookup.

Under the interpreter, or while a Triton launch hook is installed (profilers), every
call goes through ``kernel[grid](...)``. Triton settings read at compile time (debug,
instrumentation) and pre-run hooks apply to a plan's first call only: change them before
the first call of a shape, or call ``fused_moe.plans.clear_plans()`` afterwards.
"""
import os

import torch
import triton

try:
    from triton import knobs as _knobs
except ImportError:  # older Triton: no direct launches
    _knobs = None

_DIRECT = _knobs is not None and os.environ.get("TRITON_INTERPRET") != "1"
_get_stream = None  # Triton's own stream query, looked up on first use


class KernelLaunch:
    """One launch of ``fn`` on grid (programs,): ``static`` arguments fixed at plan time,
    ``dynamic`` ones (names, in the order ``__call__`` takes them) given per call."""

    def __init__(self, fn, programs, num_warps, dynamic, static):
        names = fn.arg_names
        unknown = set(dynamic) - set(names)
        missing = set(names) - set(dynamic) - set(static)
        if unknown or missing:
            raise TypeError(f"{fn.__name__}: unknown arguments {sorted(unknown)}, missing {sorted(missing)}")
        self.fn, self.programs, self.num_warps = fn, programs, num_warps
        self.template = [static.get(name) for name in names]
        self.slots = [names.index(name) for name in dynamic]
        self.compiled = {}  # device index -> CompiledKernel

    def __call__(self, *values):
        if len(values) != len(self.slots):
            raise TypeError(f"{self.fn.__name__}: {len(self.slots)} per-call arguments expected, got {len(values)}")
        if self.programs == 0:
            return
        args = self.template.copy()
        for i, v in zip(self.slots, values):
            args[i] = v
        if not _DIRECT or _hooked(_knobs.runtime.launch_enter_hook) or _hooked(_knobs.runtime.launch_exit_hook):
            self.fn[(self.programs,)](*args, num_warps=self.num_warps)
            return
        device = torch.cuda.current_device()
        kernel = self.compiled.get(device)
        if kernel is None:
            self.compiled[device] = self.fn[(self.programs,)](*args, num_warps=self.num_warps)
            return
        try:
            kernel.run(self.programs, 1, 1, current_stream(device), kernel.function, kernel.packed_metadata, None,
                       None, None, *args)
        except TypeError:
            # The launcher rejected the call before launching: a Triton whose launcher takes
            # other arguments. Launch the usual way from now on (it also re-raises a real
            # argument error with Triton's own message).
            _disable_direct_launches()
            self.fn[(self.programs,)](*args, num_warps=self.num_warps)


def _disable_direct_launches():
    global _DIRECT
    _DIRECT = False


def _hooked(hook):
    """A launch hook is installed: a callable, or a non-empty HookChain (Triton >= 3.4)."""
    return hook is not None and bool(getattr(hook, "calls", True))


def current_stream(device_index):
    """The raw handle of the current stream on a GPU, through Triton's driver (H100 host:
    0.1 us, against 2.7-3.0 us for ``torch.cuda.current_stream``)."""
    global _get_stream
    if _get_stream is None:
        _get_stream = triton.runtime.driver.active.get_current_stream
    return _get_stream(device_index)
