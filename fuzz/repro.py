"""Turn a shrunk failing case into a self-contained bug report.

:func:`write_repro` writes two files:

- ``<name>.py``: a runnable script. Inputs are embedded (integer arrays as literal
  lists, float arrays as base64 of their raw bytes so NaN payloads and -0.0
  survive), then the call of the implementation with poisoned ``out=`` buffers, the
  oracle comparison, and the CheckReport text. It exits 1 when the bug reproduces
  (printing the diff), 0 when the implementation now passes.
- ``<name>.md``: a summary: what failed, the case, the report, the environment and
  how to rerun.

The script needs the repository (``oracles``, ``fuzz`` helpers for buffers, and the
implementation under test) on ``sys.path``; it inserts the repository root itself.
"""
from __future__ import annotations

import base64
import datetime
import platform
import re
import sys
import textwrap
from pathlib import Path

import numpy as np

from fuzz.strategies import BatchCase, GatingCase, Logits, Options, ReuseCase, RouteCase, SortingCase

ROOT = Path(__file__).resolve().parents[1]


def environment(device: str = "cpu") -> dict[str, str]:
    """Versions and device of this run."""
    import os

    import torch
    import triton
    env = {"python": platform.python_version(), "torch": torch.__version__, "triton": triton.__version__,
           "numpy": np.__version__, "platform": platform.platform(), "device": device,
           "TRITON_INTERPRET": os.environ.get("TRITON_INTERPRET", "")}
    if device != "cpu" and torch.cuda.is_available():
        env["gpu"] = torch.cuda.get_device_name()
    return env


def target_spec(target) -> tuple[str, str]:
    """(import statement, expression) that rebuilds ``target`` in a fresh interpreter."""
    spec = getattr(target, "repro_spec", None)
    if spec is not None:
        return spec
    module, name = target.__module__, target.__name__
    if not re.fullmatch(r"[A-Za-z_][\w.]*", f"{module}.{name}") or "<" in name:
        raise ValueError(f"cannot name target {target!r} in a repro: give it a repro_spec (import, expression)")
    return f"import {module}", f"{module}.{name}"


# --------------------------------------------------------------------------- case -> source


def _field(name: str, a, indent: str = "    ") -> str:
    """``name=<source>,`` on its own line(s), any comment after the comma."""
    if not isinstance(a, np.ndarray):
        return f"{indent}{name}={a!r},\n"
    a = np.ascontiguousarray(a)
    if a.dtype.kind in "iub":
        return f"{indent}{name}=np.array({a.tolist()!r}, dtype=np.{a.dtype.name}).reshape({tuple(a.shape)!r}),\n"
    b64 = base64.b64encode(a.tobytes()).decode()
    shown = np.array2string(a, separator=", ", threshold=64).replace("\n", " ")
    return f"{indent}# {name}: {shown}\n{indent}{name}=_raw({b64!r}, {a.dtype.str!r}, {tuple(a.shape)!r}),\n"


def _call(cls: str, fields: str, indent: str) -> str:
    return f"{cls}(\n{fields}{indent[:-4]})"


def _logits_src(lg: Logits, indent: str) -> str:
    return _call("Logits", _field("values", lg.values, indent) + _field("dtype", lg.dtype, indent)
                 + _field("col_pad", lg.col_pad, indent) + _field("col_offset", lg.col_offset, indent), indent)


def _options_src(o: Options, indent: str) -> str:
    mask = o.expert_mask if o.expert_mask is not None else None
    return _call("Options", "".join(_field(k, v, indent) for k, v in (
        ("unit_size", o.unit_size), ("expert_mask", mask), ("num_local_tokens", o.num_local_tokens),
        ("m_on_device", o.m_on_device), ("moe_buf", o.moe_buf), ("poisoned", o.poisoned))), indent)


def case_source(case, indent: str = "    ") -> str:
    """Python source rebuilding ``case`` (needs ``np``, ``_raw`` and the case classes)."""
    inner = indent + "    "
    if isinstance(case, GatingCase):
        fields = (f"{indent}logits={_logits_src(case.logits, inner)},\n" + _field("topk", case.topk, indent)
                  + _field("renormalize", case.renormalize, indent))
    elif isinstance(case, SortingCase):
        fields = (_field("topk_ids", case.topk_ids, indent) + _field("topk_weights", case.topk_weights, indent)
                  + _field("num_experts", case.num_experts, indent)
                  + f"{indent}options={_options_src(case.options, inner)},\n")
    elif isinstance(case, RouteCase):
        fields = (f"{indent}logits={_logits_src(case.logits, inner)},\n" + _field("topk", case.topk, indent)
                  + _field("renormalize", case.renormalize, indent)
                  + f"{indent}options={_options_src(case.options, inner)},\n")
    elif isinstance(case, ReuseCase):
        fields = f"{indent}calls=(\n" + "".join(f"{inner}{case_source(c, inner + '    ')},\n" for c in case.calls) \
            + f"{indent}),\n"
    elif isinstance(case, BatchCase):
        fields = (f"{indent}case={case_source(case.case, inner)},\n" + _field("rows", case.rows, indent)
                  + _field("filler", case.filler, indent))
    else:
        raise TypeError(f"no repro source for {type(case).__name__}")
    return _call(type(case).__name__, fields, indent)


# --------------------------------------------------------------------------- per-op bodies

_BODIES = {
    "gating": '''
x = case.logits.tensor(DEVICE)
result = target(x, case.topk, renormalize=case.renormalize)
print("topk_ids    :", result.topk_ids.cpu().tolist())
print("topk_weights:", result.topk_weights.cpu().tolist())
report = oracles.check_gating(result.topk_weights, result.topk_ids, case.logits.values, case.topk,
                              renormalize=case.renormalize)
''',
    "sorting": '''
o = case.options
T, K = case.topk_ids.shape
moe_buf = o.moe_buf_tensor(T, DEVICE)  # every byte nonzero: rows [0, M) must come back zero
moe_before = None if moe_buf is None else moe_buf.cpu().clone()
# out= buffers SLACK elements past the capacity, every element a canary
out = poisoned_sorting_out(T, K, case.num_experts, o.unit_size, DEVICE) if o.poisoned else None
before = None if out is None else type(out)(*(t.cpu().clone() for t in out))
result = target(torch.from_numpy(case.topk_ids).to(DEVICE), torch.from_numpy(case.topk_weights).to(DEVICE),
                case.num_experts, unit_size=o.unit_size, expert_mask=o.mask_tensor(DEVICE),
                num_local_tokens=o.m_arg(DEVICE), moe_buf=moe_buf, out=out)
report = oracles.check_sorting(out if out is not None else result, case.topk_ids, case.topk_weights,
                               case.num_experts, unit_size=o.unit_size, expert_mask=o.expert_mask,
                               num_local_tokens=o.num_local_tokens, before=before)
if moe_buf is not None:
    M = T if o.num_local_tokens is None else o.num_local_tokens
    report = report.merged(oracles.check_moe_buf(moe_before, moe_buf.cpu(), M))
''',
    "route": '''
o = case.options
T, E = case.logits.values.shape
moe_buf = o.moe_buf_tensor(T, DEVICE)  # every byte nonzero: rows [0, M) must come back zero
moe_before = None if moe_buf is None else moe_buf.cpu().clone()
# out= buffers: sorting buffers SLACK elements past the capacity, every element a canary
out = poisoned_route_out(T, case.topk, E, o.unit_size, DEVICE) if o.poisoned else None
before = None if out is None else type(out)(*(t.cpu().clone() for t in out))
result = target(case.logits.tensor(DEVICE), case.topk, unit_size=o.unit_size, renormalize=case.renormalize,
                expert_mask=o.mask_tensor(DEVICE), num_local_tokens=o.m_arg(DEVICE), moe_buf=moe_buf, out=out)
report = oracles.check_route(out if out is not None else result, case.logits.values, case.topk,
                             unit_size=o.unit_size, renormalize=case.renormalize, expert_mask=o.expert_mask,
                             num_local_tokens=o.num_local_tokens, before=None if before is None else before[2:])
if moe_buf is not None:
    M = T if o.num_local_tokens is None else o.num_local_tokens
    report = report.merged(oracles.check_moe_buf(moe_before, moe_buf.cpu(), M))
''',
    "batch": '''
c = case.case
full = target(c.logits.tensor(DEVICE), c.topk, renormalize=c.renormalize)
rows = list(case.rows)
other_logits = np.concatenate([c.logits.values[rows], case.filler])
other = target(torch.from_numpy(other_logits).to(getattr(torch, c.logits.dtype)).to(DEVICE), c.topk,
               renormalize=c.renormalize)
problems = []
for i, r in enumerate(rows):
    for name in ("topk_ids", "topk_weights"):
        a, b = getattr(full, name)[r].cpu(), getattr(other, name)[i].cpu()
        if not torch.equal(a.view(torch.int32), b.view(torch.int32)):
            problems.append(f"row {r} (row {i} of a batch of {len(other_logits)}): {name} {a.tolist()} != {b.tolist()}")
report = oracles.CheckReport(problems)
''',
}

_BODIES["reuse"] = ('''
reset = getattr(target, "reset_plans", None)
if reset is not None:
    reset()  # start from an empty plan cache, as the property does
reuse, problems = case, []
for i, case in enumerate(reuse.calls):
''' + textwrap.indent(_BODIES["route"], "    ") + '''
    problems += [f"call {i}: {problem}" for problem in report.problems]
report = oracles.CheckReport(problems)
''')

_TEMPLATE = '''#!/usr/bin/env python
"""{title}

Generated by fuzz/repro.py on {when}.
Environment when found: {env}

Case: {case_repr}

Report when found:
{report}

Run: python {filename}    (exit 1: the bug reproduces; exit 0: fixed)
"""
import base64
import os
import sys

sys.path.insert(0, {root!r})
import torch  # noqa: E402

if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")  # must precede the kernels' import

import numpy as np  # noqa: E402

import oracles  # noqa: E402
from fuzz.strategies import (BatchCase, GatingCase, Logits, Options, ReuseCase, RouteCase,  # noqa: E402,F401
                             SortingCase)
from fuzz.targets import poisoned_route_out, poisoned_sorting_out  # noqa: E402,F401
{target_import}  # noqa: E402

DEVICE = "cuda" if torch.cuda.is_available() and os.environ.get("TRITON_INTERPRET") != "1" else "cpu"


def _raw(b64, dtype, shape):
    """An array from its raw bytes (keeps NaN payloads and -0.0)."""
    return np.frombuffer(base64.b64decode(b64), dtype=dtype).reshape(shape).copy()


target = {target_expr}
case = {case_src}
{body}
print({target_name!r}, "on", DEVICE)
print(report)
sys.exit(0 if report.ok else 1)
'''


def write_repro(op: str, target, case, report: str, out_dir, *, name: str | None = None,
                device: str = "cpu") -> tuple[Path, Path]:
    """Write ``<name>.py`` (standalone reproducer) and ``<name>.md`` (summary) into ``out_dir``."""
    if op not in _BODIES:
        raise ValueError(f"op must be one of {', '.join(_BODIES)}, got {op!r}")
    target_import, target_expr = target_spec(target)
    tname = getattr(target, "__name__", str(target))
    name = name or re.sub(r"\W+", "_", f"repro_{op}_{tname}").strip("_")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    env = environment(device)
    env_txt = ", ".join(f"{k} {v}" for k, v in env.items())
    when = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    title = f"{tname} fails the {op} property"
    size = ", ".join(f"{k}={v}" for k, v in case.size().items())
    py = out_dir / f"{name}.py"
    script = _TEMPLATE.format(
        title=title, when=when, env=env_txt, case_repr=textwrap.shorten(repr(case), 400).replace('"""', "'''"),
        report=textwrap.indent(str(report).replace('"""', "'''"), "    "), filename=py.name, root=str(ROOT),
        target_import=target_import, target_expr=target_expr, case_src=case_source(case), body=_BODIES[op],
        target_name=tname)
    py.write_text(script)
    md = out_dir / f"{name}.md"
    env_rows = "\n".join(f"| {k} | {v} |" for k, v in env.items())
    md.write_text(f"""# {title}

Found by the `{op}` differential property ({when}); shrunk to {size}.

## Case

```
{repr(case)}
```

## Report

```
{report}
```

## Reproduce

```
{sys.executable} {py.name}
```

`{py.name}` is self-contained (inputs embedded; exits 1 while the bug reproduces).

## Environment

| | |
|---|---|
{env_rows}
""")
    return py, md
