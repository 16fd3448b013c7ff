"""Compile one variant for one architecture (in a worker process) and read what it uses.

Resources come from the compiled artefacts, not from a device:
- AMD: the amdgcn's kernel metadata (``.vgpr_count``, ``.agpr_count``, ``.sgpr_count``, the
  spill counts, ``.private_segment_fixed_size`` = scratch per lane, ``.group_segment_fixed_size``
  = static LDS) and its ``; Occupancy`` line; plus the LDS Triton allocates at launch
  (``metadata.shared``).
- NVIDIA: ``cuobjdump -res-usage`` of the cubin (REG, SHARED, STACK, LOCAL; the tool ships
  in the Triton wheel). Triton inlines every call and keeps tensors in registers, so stack or
  local memory is spilling (or a register array indexed at run time: as slow).
"""
from __future__ import annotations

import contextlib
import importlib
import io
import re
import subprocess
import tempfile
import time
from typing import NamedTuple

from . import targets


class Job(NamedTuple):
    variant: str  # Variant.id
    module: str  # where the kernel lives
    kernel: str
    spec: object  # capture.Spec of the arch's family
    options: tuple  # launch options: num_warps, ...
    arch: str


def _kernel(job: Job):
    return getattr(importlib.import_module(job.module), job.kernel)


_AMD_FIELDS = {  # amdgcn metadata key -> result field
    "vgpr_count": "vgpr", "agpr_count": "agpr", "sgpr_count": "sgpr", "vgpr_spill_count": "vgpr_spill",
    "sgpr_spill_count": "sgpr_spill", "private_segment_fixed_size": "scratch", "group_segment_fixed_size": "static_lds",
}


def amd_resources(amdgcn: str, shared: int, num_warps: int, arch: targets.Arch) -> dict:
    found = dict(re.findall(r"^\s*-?\s*\.(\w+):\s+(\d+)\s*$", amdgcn, re.M))
    out = {field: int(found.get(key, 0)) for key, field in _AMD_FIELDS.items()}
    occupancy = re.search(r"^; Occupancy: (\d+)", amdgcn, re.M)
    # Triton's LDS is one dynamic allocation at launch; any static LDS LLVM added comes on top.
    out["lds"] = shared + out.pop("static_lds")
    out["spills"] = out["vgpr_spill"]  # to scratch memory; SGPRs spill into VGPR lanes
    out["occupancy"], out["limiter"] = targets.amd_occupancy(arch, int(occupancy.group(1)), out["lds"], num_warps)
    return out


def nvidia_resources(cubin: bytes, shared: int, num_warps: int, arch: targets.Arch) -> dict:
    from triton import knobs
    with tempfile.NamedTemporaryFile(suffix=".cubin") as f:
        f.write(cubin)
        f.flush()
        usage = subprocess.run([knobs.nvidia.cuobjdump.path, "-res-usage", f.name], capture_output=True, text=True,
                               check=True).stdout
    found = {k: int(v) for k, v in re.findall(r"\b(REG|SHARED|STACK|LOCAL):(\d+)", usage)}
    out = {"regs": found["REG"], "lds": max(shared, found["SHARED"]),  # the same buffer, declared static
           "scratch": found["STACK"] + found["LOCAL"]}
    out["spills"] = out["scratch"]
    out["occupancy"], out["limiter"] = targets.nvidia_occupancy(arch, out["regs"], out["lds"], num_warps)
    return out


def _ends(text: str, head: int = 2, tail: int = 8) -> str:
    """The first and last lines of a compiler message: Triton's name the error, then show
    the source up to the failing line, then the cause."""
    lines = [line for line in text.strip().splitlines() if line.strip()]
    if len(lines) <= head + tail:
        return "\n".join(lines)
    return "\n".join(lines[:head] + [f"... ({len(lines) - head - tail} lines)"] + lines[-tail:])


def compile_job(job: Job) -> dict:
    """-> the row of the report for (variant, arch): resources, or the error."""
    import triton
    from triton.compiler import ASTSource

    arch = targets.ARCHS[job.arch]
    row = {"variant": job.variant, "kernel": job.kernel, "arch": job.arch}
    options = dict(job.options)
    start = time.perf_counter()
    try:
        src = ASTSource(_kernel(job), dict(job.spec.signature), dict(job.spec.constexprs),
                        {path: [list(a) for a in attrs] for path, attrs in job.spec.attrs})
        # ptxas failures also print the whole PTX: the exception already says what failed
        with contextlib.redirect_stdout(io.StringIO()):
            compiled = triton.compile(src, target=arch.target, options=options)
    except Exception as e:  # noqa: BLE001 - every failure is a finding to report
        row.update(status="error", error=f"{type(e).__name__}: {_ends(str(e))}")
    else:
        num_warps, shared = compiled.metadata.num_warps, compiled.metadata.shared
        if arch.family == "hip":
            row.update(amd_resources(compiled.asm["amdgcn"], shared, num_warps, arch))
        else:
            row.update(nvidia_resources(compiled.asm["cubin"], shared, num_warps, arch))
        row.update(status="ok", num_warps=num_warps)
    row["seconds"] = round(time.perf_counter() - start, 2)
    return row
