"""Kernel variants as the host code produces them: run a public call with its kernel launches
recorded instead of run, and specialise each launch the way ``JITFunction.run`` would.

The host code builds its plans and ``KernelLaunch`` objects as usual (tensors on the "meta"
device: shapes, strides, dtypes and alignments, no memory), so every constexpr, block size,
warp count and integer specialisation comes from the code that ships, including constexprs
added later. Nothing here knows a kernel's rules.
"""
from __future__ import annotations

import contextlib
import hashlib
import itertools
from dataclasses import dataclass, field
from unittest import mock

from triton.backends.compiler import GPUTarget
from triton.compiler import make_backend
from triton.runtime.jit import JITFunction, create_function_from_signature

# Specialisation differs by backend family, not by architecture (AMD adds the 32-bit pointer
# range of buffer ops); one target of each family stands for all of them.
FAMILY_TARGETS = {"cuda": GPUTarget("cuda", 90, 32), "hip": GPUTarget("hip", "gfx942", 64)}


class LaunchRecorded(Exception):
    """Raised after a recorded launch when the caller cannot continue without its results."""


@dataclass(frozen=True)
class Spec:
    """What ``triton.compile`` needs besides the kernel: one backend family's specialisation."""
    signature: tuple  # ((argument name, type), ...): "*bf16", "i32", "constexpr", ...
    constexprs: tuple  # ((path, value), ...)
    attrs: tuple  # ((path, ((attribute, value), ...)), ...): divisibility, pointer range


@dataclass
class Variant:
    """One compiled kernel: a kernel, its launch options and each family's specialisation."""
    kernel: JITFunction
    options: tuple  # ((name, value), ...): num_warps and any other launch option
    specs: dict  # family -> Spec
    origins: dict = field(default_factory=dict)  # source label -> set of token counts T (empty: no T)
    tags: set = field(default_factory=set)

    @property
    def name(self) -> str:
        return self.kernel.__name__

    @property
    def id(self) -> str:
        digest = hashlib.sha1(repr((self.options, sorted(self.specs.items()))).encode()).hexdigest()[:8]
        return f"{self.name}-{digest}"

    @property
    def constexprs(self) -> dict:
        """Constexpr arguments by name (the CUDA family's view; both families agree on them)."""
        spec = self.specs["cuda"]
        names = self.kernel.arg_names
        return {names[path[0]]: value for path, value in spec.constexprs if len(path) == 1}

    def add_origin(self, label: str, tokens: int | None) -> None:
        seen = self.origins.setdefault(label, set())
        if tokens is not None:
            seen.add(tokens)

    def origin(self, limit: int = 1) -> str:
        """Where the variant was first reached, e.g. ``DeepSeek-R1 route(fused) bfloat16 ... T=1-2``."""
        shown = [f"{label} T={token_ranges(tokens, limit=4)}" if tokens else label
                 for label, tokens in list(self.origins.items())[:limit]]
        more = len(self.origins) - limit
        return "; ".join(shown) + (f" (+{more} more)" if more > 0 else "")


def token_ranges(tokens, limit: int | None = None) -> str:
    """{1, 2, 3, 16, 32, 33} -> "1-3,16,32-33"; past ``limit`` runs, "... (N values)"."""
    runs = [[t for _, t in run] for _, run in itertools.groupby(enumerate(sorted(tokens)), lambda p: p[1] - p[0])]
    text = ",".join(f"{r[0]}-{r[-1]}" if len(r) > 1 else str(r[0]) for r in runs[:limit])
    return text if limit is None or len(runs) <= limit else f"{text},... ({len(tokens)} values)"


class Specializer:
    """Triton's own binding and specialisation of launch arguments (the two calls that
    ``JITFunction.run`` makes before compiling, Triton 3.9), per backend family."""

    def __init__(self):
        self.backends = {family: make_backend(target) for family, target in FAMILY_TARGETS.items()}
        self._binders = {}
        self._packed = {}  # binder results -> (options, specs): JITFunction.run's cache key, likewise

    def _binder(self, fn, family):
        key = (fn, family)
        if key not in self._binders:
            self._binders[key] = create_function_from_signature(fn.signature, fn.params, self.backends[family])
        return self._binders[key]

    def specs(self, fn, args, kwargs) -> tuple[tuple, dict]:
        """-> (launch options, {family: Spec}) of one launch."""
        bound = {family: self._binder(fn, family)(*args, **kwargs) for family in self.backends}
        key = (fn, *((tuple(s), tuple(sorted(o.items()))) for _, s, o in bound.values()))
        if key not in self._packed:
            self._packed[key] = self._pack(fn, kwargs, bound)
        return self._packed[key]

    def _pack(self, fn, kwargs, bound):
        specs, options = {}, ()
        for family, (args, specialization, launch_options) in bound.items():
            _, signature, constexprs, attrs = fn._pack_args(self.backends[family], kwargs, args, specialization,
                                                            launch_options)
            options = tuple(sorted(launch_options.items()))
            specs[family] = Spec(tuple(signature.items()), tuple(sorted(constexprs.items())),
                                 tuple(sorted((path, tuple(map(tuple, a))) for path, a in attrs.items())))
        return options, specs


class Catalog:
    """Every distinct variant seen, in first-seen order, with where each came from."""

    def __init__(self):
        self.specializer = Specializer()
        self.variants: dict = {}  # (kernel, options, specs) -> Variant

    def add(self, fn, args, kwargs, label: str, tokens: int | None, tags=()) -> bool:
        """Record one launch; True when it is a variant not seen before."""
        options, specs = self.specializer.specs(fn, args, kwargs)
        key = (fn, options, tuple(sorted(specs.items())))
        variant = self.variants.get(key)
        new = variant is None
        if new:
            variant = self.variants[key] = Variant(fn, options, specs)
        variant.add_origin(label, tokens)
        variant.tags.update(tags)
        return new

    def __iter__(self):
        return iter(self.variants.values())

    def __len__(self):
        return len(self.variants)


@contextlib.contextmanager
def recording(on_launch, stop_after_launch=False):
    """Inside: every ``kernel[grid](...)`` calls ``on_launch(fn, args, kwargs)`` instead of
    compiling and running. ``KernelLaunch`` is sent through ``kernel[grid](...)`` too (its
    direct path needs a GPU). With ``stop_after_launch``, ``LaunchRecorded`` is raised after
    each launch, for callers that would go on to read the (meta) results."""
    from fused_moe import launcher

    def run(fn, *args, grid, warmup, **kwargs):
        on_launch(fn, args, kwargs)
        if stop_after_launch:
            raise LaunchRecorded(fn.__name__)

    with mock.patch.object(JITFunction, "run", run), mock.patch.object(launcher, "_DIRECT", False):
        yield
