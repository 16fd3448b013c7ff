"""OUT/compile_report.json (every row, every finding) and OUT/compile_report.md (verdict,
findings, headline per architecture and per kernel, then one line per variant)."""
from __future__ import annotations

import collections
import json
from pathlib import Path

from . import policy, targets
from .capture import token_ranges

MAX_LISTED = 20  # findings of one rule listed in the Markdown (the JSON has them all)


def _regs(row: dict) -> str:
    if row["arch"].startswith("sm_"):
        return str(row["regs"])
    agpr = f"+{row['agpr']}a" if row["agpr"] else ""
    return f"{row['vgpr']}{agpr}v/{row['sgpr']}s"


def _reg_count(row: dict) -> int:
    return row["regs"] if "regs" in row else row["vgpr"] + row["agpr"]


def _cell(row: dict) -> str:
    if row["status"] != "ok":
        return "**ERROR**"
    spill = f", **spill {row['spills']}**" if row["spills"] else ""
    return f"{_regs(row)}, {row['lds']} B, occ {row['occupancy']}{spill}"


def _constexpr_text(variant, varying: set) -> str:
    """Constexprs that differ between this kernel's variants (the rest are in the JSON)."""
    return " ".join(f"{k}={v}" for k, v in variant.constexprs.items() if k in varying) or "-"


def _varying(variants) -> dict:
    values = collections.defaultdict(lambda: collections.defaultdict(set))
    for v in variants:
        for k, value in v.constexprs.items():
            values[v.name][k].add(repr(value))
    return {name: {k for k, vals in by_arg.items() if len(vals) > 1} for name, by_arg in values.items()}


def _per_arch(rows) -> list[str]:
    lines = ["| arch | wave | compiled | errors | max registers (variant) | max LDS / limit (variant) | spills "
             "| min occupancy of a kernel whose grid grows with T (variant, limiter) |", "|---" * 8 + "|"]
    for arch in targets.ARCHS.values():
        mine = [r for r in rows if r["arch"] == arch.name]
        ok = [r for r in mine if r["status"] == "ok"]
        if not mine:
            continue
        if not ok:
            lines.append(f"| {arch.name} | {arch.warp_size} | 0 | {len(mine)} | - | - | - | - |")
            continue
        regs = max(ok, key=_reg_count)
        lds = max(ok, key=lambda r: r["lds"])
        parallel = [r for r in ok if r["kernel"] in policy.OCCUPANCY_MATTERS] or ok
        occ = min(parallel, key=lambda r: r["occupancy"])
        unit = "waves/SIMD" if arch.family == "hip" else "warps/SM"
        lines.append(
            f"| {arch.name} | {arch.warp_size} | {len(ok)} | {len(mine) - len(ok)} | {_regs(regs)} ({regs['variant']}) "
            f"| {lds['lds']} / {arch.lds_limit} ({lds['variant']}) | {sum(1 for r in ok if r['spills'])} "
            f"| {occ['occupancy']} of {arch.max_occupancy} {unit} ({occ['variant']}, {occ['limiter']}) |")
    return lines


def _span(values) -> str:
    lo, hi = min(values), max(values)
    return str(lo) if lo == hi else f"{lo}-{hi}"


def _per_kernel(rows) -> list[str]:
    lines = ["| kernel | arch | variants | registers | LDS bytes | scratch bytes | occupancy |", "|---" * 7 + "|"]
    groups = collections.defaultdict(list)
    for r in rows:
        if r["status"] == "ok":
            groups[(r["kernel"], r["arch"])].append(r)
    for (kernel, arch), rs in sorted(groups.items(), key=lambda kv: (kv[0][0], list(targets.ARCHS).index(kv[0][1]))):
        lines.append(f"| {kernel} | {arch} | {len(rs)} | {_span([_reg_count(r) for r in rs])} "
                     f"| {_span([r['lds'] for r in rs])} | {_span([r['scratch'] for r in rs])} "
                     f"| {_span([r['occupancy'] for r in rs])} |")
    return lines


def _findings(findings) -> list[str]:
    lines = []
    by_rule = collections.defaultdict(list)
    for f in findings:
        by_rule[(f.severity, f.rule)].append(f)
    for (severity, rule), fs in sorted(by_rule.items()):
        lines.append(f"### {severity.upper()}: {rule} ({len(fs)})")
        for f in fs[:MAX_LISTED]:
            lines.append(f"- {f.message}")
            if f.detail:
                lines += ["", "  ```", *(f"  {line}" for line in f.detail.splitlines()), "  ```"]
        if len(fs) > MAX_LISTED:
            lines.append(f"- ... and {len(fs) - MAX_LISTED} more (compile_report.json)")
    return lines


def _variant_table(variants, rows, archs) -> list[str]:
    cells = {(r["variant"], r["arch"]): _cell(r) for r in rows}
    varying = _varying(variants)
    lines = ["Cells: registers (AMD VGPR[+AGPR]/SGPR, NVIDIA per thread), LDS / shared bytes, occupancy.", "",
             "| variant | warps | constexprs that vary | reached from | " + " | ".join(archs) + " |",
             "|---|---|---|---|" + "---|" * len(archs)]
    for v in variants:
        warps, constexprs = dict(v.options).get("num_warps", 4), _constexpr_text(v, varying.get(v.name, set()))
        lines.append(f"| {v.id} | {warps} | {constexprs} | {v.origin()} | "
                     + " | ".join(cells.get((v.id, a), "") for a in archs) + " |")
    return lines


def write(out: Path, meta: dict, variants, rows, findings) -> None:
    out.mkdir(parents=True, exist_ok=True)
    failed = [f for f in findings if f.severity == "fail"]
    warned = [f for f in findings if f.severity == "warn"]
    data = {
        "meta": meta,
        "archs": {a.name: {"target": str(a.target), "lds_limit": a.lds_limit, "lds_per_unit": a.lds_per_unit,
                           "max_occupancy": a.max_occupancy} for a in targets.ARCHS.values()},
        "variants": [{"id": v.id, "kernel": v.name, "module": v.kernel.module, "options": dict(v.options),
                      "constexprs": {k: repr(x) for k, x in v.constexprs.items()},
                      "signature": dict(v.specs["cuda"].signature), "tags": sorted(v.tags),
                      "origins": {label: token_ranges(ts) for label, ts in v.origins.items()}} for v in variants],
        "results": rows,
        "findings": [f.__dict__ for f in findings],
    }
    (out / "compile_report.json").write_text(json.dumps(data, indent=1, default=str))
    verdict = "FAIL" if failed else "PASS"
    md = [f"# Compile lane: {verdict}", "",
          f"{len(variants)} variants of {meta['variants_enumerated']} enumerated (sample: {meta['sample']}), "
          f"{len(rows)} compiles for {', '.join(meta['archs'])} in {meta['seconds']:.0f} s "
          f"with {meta['jobs']} processes; Triton {meta['triton']}.", "",
          f"Enumerated: {meta['enumerated_by_source']}.", "",
          f"{len(failed)} failures, {len(warned)} warnings. Hot kernels (spills fail): "
          f"{', '.join(sorted(policy.HOT_KERNELS))}, at the seed models' shapes. Warp-size specific kernels: "
          f"{', '.join(f'{k} ({why})' for k, why in policy.WARP_SIZE_SPECIFIC.items()) or 'none'}.", "",
          "Occupancy: waves per SIMD on AMD, warps per SM on NVIDIA (formulas: tools/lane/targets.py).", ""]
    if findings:
        md += ["## Findings", ""] + _findings(findings) + [""]
    md += ["## Per architecture", ""] + _per_arch(rows) + ["", "## Per kernel and architecture", ""] + _per_kernel(rows)
    md += ["", "## Variants", ""] + _variant_table(variants, rows, meta["archs"])
    (out / "compile_report.md").write_text("\n".join(md) + "\n")
