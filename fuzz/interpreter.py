"""Speed for the Triton interpreter lane, with the same bits: two shortcuts in its Python.

- ``tl.sort`` is a bitonic network whose compare-and-swap steps reduce with ``xor_sum``.
  The interpreter runs a reduction whose combine function it does not know element by
  element, through the interpreted combine function: a 64-256 key sort took tens of
  milliseconds, most of a fused-route example (profiled: 8 of 15 s). An XOR reduction is
  exactly ``np.bitwise_xor.reduce``, the same bits in any order.
- Every call of a ``@triton.jit`` helper re-patches ``triton.language`` for the interpreter
  (``inspect.getmembers`` over the modules its globals hold), though the kernel's own call
  patched them until it ends: 44% of a fused-route example after the fix above. Inside
  one kernel launch, a helper whose modules are already patched skips that.

``select()`` chooses the interpreter lane (the one place that does). ``install()`` is
idempotent and does nothing where Triton's interpreter does not have the structure this
was written against (Triton 3.6-3.9); every other path goes through Triton's own code.
"""
from __future__ import annotations

import inspect
import os

import numpy as np


def select() -> None:
    """Run kernels on the Triton interpreter (CPU), fast: set ``TRITON_INTERPRET`` (read
    when Triton and the kernels are imported, so call this first) and ``install()``."""
    os.environ["TRITON_INTERPRET"] = "1"
    install()


def install() -> bool:
    """Patch the interpreter; True when both shortcuts are in place."""
    try:
        import triton.language as tl
        from triton.runtime import interpreter
    except ImportError:
        return False
    if getattr(interpreter, "_moe_fast", False):
        return True
    ops, grid = getattr(interpreter, "ReduceOps", None), getattr(interpreter, "GridExecutor", None)
    xor = getattr(getattr(tl, "standard", None), "_xor_combine", None)
    needed = (ops, grid, xor, getattr(interpreter, "_patch_lang", None), getattr(interpreter, "_LangPatchScope", None))
    if any(x is None for x in needed) or not hasattr(ops, "apply_impl") or not hasattr(ops, "to_tensor"):
        return False
    _fast_xor_reductions(ops, xor)
    _patch_once_per_launch(interpreter, grid, tl)
    interpreter._moe_fast = True
    return True


def _fast_xor_reductions(ops, xor) -> None:
    generic = ops.apply_impl

    def apply_impl(self, input):
        if self.combine_fn is xor and len(input) == 1:
            data = input[0].handle.data
            return self.to_tensor(np.bitwise_xor.reduce(data, axis=self.axis, keepdims=self.keep_dims),
                                  input[0].dtype)
        return generic(self, input)

    ops.apply_impl = apply_impl


def _patch_once_per_launch(interpreter, grid, tl) -> None:
    """A launch's patches last until it ends (its scope is restored then; a helper's never
    is), so within a launch each set of language modules needs patching once."""
    patch_lang, launch = interpreter._patch_lang, grid.__call__
    patched: set = set()
    running = [False]

    def patch_once(fn):
        key = frozenset(id(v) for v in fn.__globals__.values() if inspect.ismodule(v) and v in (tl, tl.core))
        if running[0] and key in patched:
            return interpreter._LangPatchScope()  # nothing changed, nothing to restore
        scope = patch_lang(fn)
        if running[0]:
            patched.add(key)
        return scope

    def launch_once(self, *args, **kwargs):
        running[0] = True
        patched.clear()
        try:
            return launch(self, *args, **kwargs)
        finally:
            running[0] = False
            patched.clear()

    interpreter._patch_lang = patch_once
    grid.__call__ = launch_once
