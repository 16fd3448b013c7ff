"""Bug-report bundles: one folder per distinct failure, ready to attach to an issue.

``<out>/repros/<target>-<signature>/`` holds:

- ``case.npz`` + ``case.json``: the exact shrunk inputs (:func:`fuzz.cases.save_case`);
- ``bundle.json``: target (name and convention), property, signature, kind, seed, when;
- ``repro.py``: the case embedded plus one call of the property (:mod:`fuzz.repro`);
  exit 1 while the bug is there, 0 once fixed, 2 when it cannot run;
- ``report.md``: a title naming the symptom, the shrunk size with every parameter,
  the diff, the environment (versions, Triton backend, GPU and driver or the
  interpreter, Hypothesis version, seed, git commit of the code under test and
  whether its tree was dirty), the ``@example(...)`` line and portable replay commands.

A bundle is never overwritten: a failure whose folder exists keeps the old bundle when
it still reproduces, else lands beside it with a numeric suffix. :func:`replay` reruns a
bundle from its files alone (``python -m fuzz replay``; tests/regressions).
"""
from __future__ import annotations

import dataclasses
import datetime
import json
import os
import platform
import re
import subprocess
import sys
from pathlib import Path

from fuzz import repro
from fuzz.cases import load_case, save_case

#: Replay outcomes, as exit codes.
REPRODUCES, FIXED, CANNOT_RUN = 1, 0, 2


def _git_state(path: Path) -> str:
    """``<commit>`` or ``<commit> (dirty)`` of the git checkout holding ``path``, else "not in git"."""
    folder = path if path.is_dir() else path.parent
    try:
        commit = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=folder, capture_output=True,
                                text=True, timeout=10)
        if commit.returncode:
            return "not in git"
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=folder,
                               capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "not in git"
    return commit.stdout.strip() + (" (dirty)" if dirty else "")


def _code_path(target) -> Path:
    import inspect
    try:
        return Path(inspect.getfile(target.fn)).resolve()
    except (TypeError, OSError):
        return repro.ROOT


def environment(target, device: str, seed) -> dict[str, str]:
    """Where the failure was found: versions, backend, device, seed, code under test."""
    import hypothesis
    import numpy as np
    import torch
    import triton
    interpreting = os.environ.get("TRITON_INTERPRET") == "1" or device == "cpu"
    env = {"python": platform.python_version(), "torch": torch.__version__, "triton": triton.__version__,
           "numpy": np.__version__, "hypothesis": hypothesis.__version__, "platform": platform.platform()}
    if interpreting:
        env["backend"] = "Triton interpreter (TRITON_INTERPRET=1) on the CPU"
    else:
        props = torch.cuda.get_device_properties(torch.cuda.current_device())
        backend = "hip" if torch.version.hip else "cuda"
        env["backend"] = f"{backend} {torch.version.hip or torch.version.cuda}"
        env["gpu"] = props.name
        env["driver"] = _driver_version()
    env["seed"] = "random" if seed is None else str(seed)
    env["code under test"] = f"{target.spec} at {_git_state(_code_path(target))}"
    env["this suite"] = _git_state(repro.ROOT)
    return env


def _driver_version() -> str:
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=10)
        return out.stdout.strip().splitlines()[0] if out.returncode == 0 else "unknown"
    except (OSError, subprocess.SubprocessError, IndexError):
        return "unknown"


def folder_name(target, signature: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", f"{target.spec}-{signature}").strip("_")


def _title(target, prop: str, failure) -> str:
    return f"{target.spec}: {failure.kind} ({prop} property)"


def _parameters(case) -> str:
    size = case.size()
    options = getattr(case, "options", None) or getattr(getattr(case, "calls", (None,))[0], "options", None)
    if options is not None:
        size["M"] = size.get("T") if options.num_local_tokens is None else options.num_local_tokens
        size["mask"] = "yes" if options.expert_mask is not None else "no"
        size["moe_buf"] = options.moe_buf or "none"
    for name in ("renormalize",):
        if hasattr(case, name):
            size[name] = getattr(case, name)
    if hasattr(case, "logits"):
        size["dtype"] = case.logits.dtype
    return ", ".join(f"{k}={v}" for k, v in size.items())


def write_bundle(root, prop: str, target, case, failure, *, device: str = "cpu", seed=None) -> tuple[Path, bool]:
    """Write the bundle of ``failure`` under ``root``; -> (folder, written). An existing bundle
    that still reproduces is kept (written False); one that no longer does gets a sibling."""
    base = Path(root) / folder_name(target, failure.signature)
    folder, n = base, 1
    while folder.exists():
        if replay(folder, device=device)[0] == REPRODUCES:
            return folder, False
        n += 1
        folder = base.with_name(f"{base.name}-{n}")
    folder.mkdir(parents=True)
    save_case(case, folder)
    when = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    meta = {"target": target.spec, "convention": dataclasses.asdict(target.convention), "property": prop,
            "signature": failure.signature, "kind": failure.kind, "seed": seed, "found": when, "device": device}
    (folder / "bundle.json").write_text(json.dumps(meta, indent=1) + "\n")
    (folder / "repro.py").write_text(repro.script(prop, target, case, str(failure.report), when=when))
    env = environment(target, device, seed)
    env_rows = "\n".join(f"| {k} | {v} |" for k, v in env.items())
    (folder / "report.md").write_text(f"""# {_title(target, prop, failure)}

Found by the `{prop}` property of the MoE routing fuzzer on {when}, shrunk to:
{_parameters(case)}.

## What differs

```
{failure.report}
```

## Case

```
{case!r}
```

As a Hypothesis example for a test of the `{prop}` property:

```python
@example(case={repro.case_source(case, "    ").strip()})
```

## Replay

```
python repro.py                  # exit 1 while the bug is there, 0 once fixed, 2 if it cannot run here
python repro.py --device cuda
python -m fuzz replay .          # from the case files (case.npz, case.json, bundle.json)
```

Both need the `fused-moe-routing` package (`pip install fused-moe-routing`, or its checkout on
`PYTHONPATH`) and the code under test importable as `{target.spec}`.

## Environment

| | |
|---|---|
{env_rows}
""")
    return folder, True


def replay(folder, *, device: str | None = None) -> tuple[int, str]:
    """Rerun a bundle from its files: (REPRODUCES | FIXED | CANNOT_RUN, what it printed)."""
    from fuzz import conventions, targets
    from fuzz.properties import TargetFailure, check
    folder = Path(folder)
    try:
        meta = json.loads((folder / "bundle.json").read_text())
        case = load_case(folder)
        conv = conventions.load(meta["convention"]) if meta.get("convention") else None
        target = targets.get(meta["target"], convention=conv)
        if conv is not None and not isinstance(target, dict):  # a group's members keep their own
            target = dataclasses.replace(target, convention=conv)
    except Exception as exc:  # noqa: BLE001 -- a bundle that cannot load says so, never "reproduced"
        return CANNOT_RUN, f"{folder}: cannot load: {type(exc).__name__}: {exc}"
    device = device or ("cuda" if _gpu() else "cpu")
    try:
        check(meta["property"], target, case, device)
    except TargetFailure as failure:
        same = " (same kind)" if failure.signature == meta["signature"] else f" (now: {failure.kind})"
        return REPRODUCES, f"{folder}: REPRODUCES{same}\n{failure.report}"
    except Exception as exc:  # noqa: BLE001
        return CANNOT_RUN, f"{folder}: harness error: {type(exc).__name__}: {exc}"
    return FIXED, f"{folder}: passes now (fixed?)"


def _gpu() -> bool:
    import torch
    return torch.cuda.is_available() and os.environ.get("TRITON_INTERPRET") != "1"


def replay_main(argv) -> int:
    """``python -m fuzz replay DIR...``: 1 if any bundle reproduces, 2 if any cannot run, else 0."""
    import argparse
    parser = argparse.ArgumentParser(prog="python -m fuzz replay", description="replay bug-report bundles")
    parser.add_argument("folders", nargs="+", metavar="DIR", help="bundle folders, or folders of bundles")
    parser.add_argument("--device", choices=("cpu", "cuda"), default=None)
    args = parser.parse_args(argv)
    if args.device == "cpu" or (args.device is None and not _gpu()):
        from fuzz import interpreter
        interpreter.select()
    bundles = []
    for f in map(Path, args.folders):
        bundles += [f] if (f / "bundle.json").exists() else sorted(p.parent for p in f.glob("*/bundle.json"))
    if not bundles:
        print("python -m fuzz replay: error: no bundle (a folder with bundle.json) found", file=sys.stderr)
        return CANNOT_RUN
    codes = []
    for b in bundles:
        code, text = replay(b, device=args.device)
        codes.append(code)
        print(text, flush=True)
    return CANNOT_RUN if CANNOT_RUN in codes else REPRODUCES if REPRODUCES in codes else FIXED
