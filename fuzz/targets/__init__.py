"""Targets: implementations under test, each a :class:`fuzz.properties.Target` (a function
with the call signature of its op plus a declared convention), found by one name.

=============================  ==========================================================
name                           target
=============================  ==========================================================
``gating``, ``sorting``        this project's kernels (``fused_moe``)
``route-fused|unfused|auto``   ``fused_moe.route`` on one path
``sorting-vllm``, ``route-*-vllm``  the same in vLLM's layout (``layout="vllm"``)
``oracle-gating|sorting|route``  the NumPy oracle (must pass everything)
``oracle-sorting-vllm``        the oracle in vLLM's layout
``torch-*``                    the plain-PyTorch reference (:mod:`fuzz.torch_reference`)
``planted:NAME[/route]``       a planted bug (:mod:`fuzz.planted`), alone or inside a route
``sglang.*``, ``vllm.*``, ...  other projects' kernels (:mod:`fuzz.adapters`), where importable
``package.module:function``    anyone's function, with ``convention=`` (``ck``, ``vllm``, a file)
=============================  ==========================================================

:func:`get` rebuilds a target from its name, so a repro script names its target and
nothing else.
"""
from __future__ import annotations

import importlib
import re

from fuzz import conventions
from fuzz.properties import Target
from fuzz.targets import oracle, ours

_ORACLE_CONVENTIONS = {op: conventions.CK.replace(op=op) for op in ("gating", "sorting", "route")}


def _ours(name: str) -> Target:
    base, _, layout = name.partition("-vllm")
    layout = "vllm" if name.endswith("-vllm") else "ck"
    if base == "gating":
        return Target.of(name, ours.gating, ours.convention("gating"), spec=name)
    if base == "sorting":
        return Target.of(name, ours.sorting(layout), ours.convention("sorting", layout), spec=name)
    path = base.split("-", 1)[1]
    return Target.of(name, ours.route(path, layout), ours.convention("route", layout), spec=name,
                     reset=ours.reset_plans)


def _oracle(name: str) -> Target:
    op, _, layout = name.split("-", 1)[1].partition("-")
    layout = layout or "ck"
    conv = _ORACLE_CONVENTIONS[op] if layout == "ck" else conventions.VLLM.replace(op=op)
    fn = {"gating": oracle.gating, "sorting": oracle.sorting_in(layout),
          "route": oracle.route_from(oracle.gating, oracle.sorting_in(layout))}[op]
    return Target.of(name, fn, conv, spec=name)


def _torch_reference(name: str) -> Target:
    from fuzz import torch_reference as ref
    op, _, layout = name.split("-", 1)[1].partition("-")
    layout = layout or "ck"
    conv = _ORACLE_CONVENTIONS[op] if layout == "ck" else conventions.VLLM.replace(op=op)
    fn = {"gating": ref.topk_gating_softmax, "sorting": ref.moe_sorting, "route": ref.route}[op]
    if layout != "ck" and op != "gating":
        fn = _bind_layout(fn, layout)
    return Target.of(name, fn, conv, spec=name)


def _bind_layout(fn, layout: str):
    def bound(*args, **kwargs):
        return fn(*args, layout=layout, **kwargs)
    import inspect
    bound.__signature__ = inspect.signature(fn).replace(
        parameters=[p for p in inspect.signature(fn).parameters.values() if p.name != "layout"])
    bound.__name__ = f"{fn.__name__}_{layout}"
    return bound


def external_names() -> tuple[str, ...]:
    """Every external adapter's target names (fuzz/adapters), importable here or not."""
    from fuzz import adapters
    return tuple(n for m in adapters.MODULES for n in adapters.adapter(m).TARGETS)


def _external(name: str) -> Target:
    from fuzz import adapters
    for module_name in adapters.MODULES:
        module = adapters.adapter(module_name)
        if name in module.TARGETS:
            if not module.available():
                raise ValueError(f"target {name!r} needs {module_name}, which is not importable or cannot run here "
                                 f"(fuzz/adapters/{module_name}.py says what it needs)")
            fn = module.TARGETS[name]
            return Target.of(name, fn, fn.convention, spec=name)
    raise ValueError(f"no external adapter has a target {name!r}")


def _planted(name: str) -> Target:
    from fuzz import planted
    return planted.target(name.split(":", 1)[1])


OURS = ("gating", "sorting", "route-fused", "route-unfused", "route-auto", "sorting-vllm", "route-fused-vllm",
        "route-unfused-vllm", "route-auto-vllm")
ORACLES = ("oracle-gating", "oracle-sorting", "oracle-route", "oracle-sorting-vllm", "oracle-route-vllm")
REFERENCES = ("torch-gating", "torch-sorting", "torch-route", "torch-sorting-vllm", "torch-route-vllm")
_USER = re.compile(r"[A-Za-z_][\w.]*:[A-Za-z_]\w*")


def get(name: str, convention=None) -> Target:
    """The target called ``name`` (see the module docstring). ``convention`` (a name, file,
    mapping or Convention) is what a ``module:function`` target declares; default ``ck``.
    Names joined by "+" give a TargetGroup (the paths property judges them together)."""
    if "+" in name:
        from fuzz.properties import TargetGroup
        return TargetGroup((part, get(part, convention)) for part in name.split("+"))
    if name in OURS:
        return _ours(name)
    if name in ORACLES:
        return _oracle(name)
    if name in REFERENCES:
        return _torch_reference(name)
    if name.startswith("planted:"):
        return _planted(name)
    if _USER.fullmatch(name):
        return user_target(name, convention)
    if name in external_names():
        return _external(name)
    raise ValueError(f"unknown target {name!r}: expected one of {', '.join(OURS + ORACLES + REFERENCES)}, "
                     "planted:NAME, or package.module:function")


def user_target(spec: str, convention=None) -> Target:
    """``package.module:function`` with its declared convention; its op comes from the
    convention, else from the function's first parameter (``topk_ids``: sorting; a
    ``unit_size`` parameter: route; else gating)."""
    module_name, _, fn_name = spec.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ValueError(f"target {spec!r}: cannot import {module_name!r} ({exc})") from None
    fn = getattr(module, fn_name, None)
    if not callable(fn):
        raise ValueError(f"target {spec!r}: {module_name} has no function {fn_name!r}")
    conv = conventions.load(convention or "ck")
    if conv.op is None:
        conv = conv.replace(op=_infer_op(fn))
    return Target.of(spec, fn, conv, spec=spec)


def _infer_op(fn) -> str:
    import inspect
    try:
        params = list(inspect.signature(fn).parameters)
    except (TypeError, ValueError):
        raise ValueError(f"cannot read the signature of {fn!r}: declare op in its convention") from None
    if params and params[0] == "topk_ids":
        return "sorting"
    return "route" if {"unit_size", "block_size"} & set(params) else "gating"
