"""Turn a shrunk failing case into a self-contained bug report.

:func:`write_repro` writes two files:

- ``<name>.py``: a runnable script: the case embedded as source (integer arrays as
  literal lists, float arrays as base64 of their raw bytes so NaN payloads and -0.0
  survive), then ONE call of the property that failed (:mod:`fuzz.properties`), on the
  target rebuilt by name (:func:`fuzz.targets.get`), with its convention when it is not
  the built-in one. It needs this package installed (or on ``PYTHONPATH``), not
  Hypothesis and not the test suite, and holds no path of the machine that wrote it.
  Exit codes: 1 the bug reproduces (the checker's diff is printed), 0 fixed, 2 it
  cannot run (an import error, a harness error): never mistaken for a reproduction.
  ``--device cpu|cuda`` chooses where (default: cuda when there is a GPU).
- ``<name>.md``: what failed, the case, the report, the environment, how to rerun.
"""
from __future__ import annotations

import base64
import dataclasses
import datetime
import json
import platform
import re
import textwrap
from pathlib import Path

import numpy as np

from fuzz.cases import BatchCase, GatingCase, Logits, Options, ReuseCase, RouteCase, SortingCase

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


def convention_source(target) -> str:
    """``None`` when :func:`fuzz.targets.get` rebuilds the target's convention by itself,
    else the convention as a literal mapping."""
    from fuzz import targets
    if targets.get(target.spec).convention == target.convention:
        return "None"
    return repr(json.loads(json.dumps(dataclasses.asdict(target.convention))))


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


_TEMPLATE = '''#!/usr/bin/env python
"""{title}

Generated by fuzz/repro.py on {when}.
Environment when found: {env}

Case: {case_repr}

Report when found:
{report}

Run: python {filename} [--device cpu|cuda]
Exit: 1 the bug reproduces, 0 fixed, 2 cannot run here (this package must be importable:
pip install it, or put its checkout on PYTHONPATH).
"""
import argparse
import base64
import os
import sys

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--device", choices=("cpu", "cuda"), default=None)
DEVICE = parser.parse_args().device

try:
    import numpy as np
    import torch
    if DEVICE is None:
        DEVICE = "cuda" if torch.cuda.is_available() and os.environ.get("TRITON_INTERPRET") != "1" else "cpu"
    if DEVICE == "cpu":
        os.environ["TRITON_INTERPRET"] = "1"  # must precede the kernels' import
    from fuzz.cases import BatchCase, GatingCase, Logits, Options, ReuseCase, RouteCase, SortingCase  # noqa: F401
    from fuzz.properties import TargetFailure, check
    from fuzz.targets import get
    target = get({spec!r}, convention={convention})
except Exception as exc:  # noqa: BLE001
    print(f"cannot run this repro here: {{type(exc).__name__}}: {{exc}}")
    sys.exit(2)


def _raw(b64, dtype, shape):
    """An array from its raw bytes (keeps NaN payloads and -0.0)."""
    return np.frombuffer(base64.b64decode(b64), dtype=dtype).reshape(shape).copy()


case = {case_src}

print({spec!r}, "on", DEVICE, "-", {prop!r}, "property")
try:
    check({prop!r}, target, case, DEVICE)
except TargetFailure as failure:
    print(failure.report)
    sys.exit(1)
except Exception as exc:  # noqa: BLE001 -- the harness or the environment, not the target
    print(f"harness error (not a reproduction): {{type(exc).__name__}}: {{exc}}")
    sys.exit(2)
print("OK")
sys.exit(0)
'''


def write_repro(prop: str, target, case, report: str, out_dir, *, name: str | None = None,
                device: str = "cpu") -> tuple[Path, Path]:
    """Write ``<name>.py`` (standalone reproducer) and ``<name>.md`` (summary) into ``out_dir``."""
    from fuzz.properties import PROPERTIES
    if prop not in PROPERTIES:
        raise ValueError(f"prop must be one of {', '.join(PROPERTIES)}, got {prop!r}")
    if target.spec is None:
        raise ValueError(f"target {target.name!r} has no spec: fuzz.targets.get cannot rebuild it in a repro")
    name = name or re.sub(r"\W+", "_", f"repro_{prop}_{target.spec}").strip("_")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    env = environment(device)
    env_txt = ", ".join(f"{k} {v}" for k, v in env.items())
    when = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    title = f"{target.name} fails the {prop} property"
    size = ", ".join(f"{k}={v}" for k, v in case.size().items())
    py = out_dir / f"{name}.py"
    py.write_text(_TEMPLATE.format(
        title=title, when=when, env=env_txt, case_repr=textwrap.shorten(repr(case), 400).replace('"""', "\'\'\'"),
        report=textwrap.indent(str(report).replace('"""', "\'\'\'"), "    "), filename=py.name,
        spec=target.spec, convention=convention_source(target), case_src=case_source(case), prop=prop))
    md = out_dir / f"{name}.md"
    env_rows = "\n".join(f"| {k} | {v} |" for k, v in env.items())
    md.write_text(f"""# {title}

Found by the `{prop}` property ({when}); shrunk to {size}.

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
python {py.name}            # exit 1 while the bug reproduces, 0 once fixed, 2 if it cannot run
python {py.name} --device cuda
```

`{py.name}` embeds the case and needs only this package (installed, or its checkout on `PYTHONPATH`).

## Environment

| | |
|---|---|
{env_rows}
""")
    return py, md
