"""What fails the lane and what only warns, in one place.

Fail: a compile error (any variant, any architecture); LDS / shared memory above the
architecture's limit (targets.py); a register spill to memory in a hot variant (AMD: VGPR
spills or scratch; NVIDIA: stack or local memory).
Warn: a spill to memory anywhere else; AMD SGPR spills (into VGPR lanes, no memory traffic)
in a hot variant; a hot variant of a kernel whose grid grows with T below a quarter of the
architecture's maximum occupancy.
"""
from __future__ import annotations

from dataclasses import dataclass

from . import targets

#: The production kernels (fused_moe/*_kernels.py): every one is on the path of a route call.
HOT_KERNELS = frozenset({"topk_gating_kernel", "moe_sorting_kernel", "tile_histogram_kernel", "tile_scan_kernel",
                         "tile_place_kernel", "fused_route_kernel"})
#: Hot only at the shapes that serve: the seed models' variants. The same kernels at shapes
#: only the fuzzers reach (E = 384, K = 127, U = 1, ...) warn instead of failing.
HOT_SOURCE_TAG = "seed"
#: Kernels whose grid grows with the batch, so that occupancy matters. The others run their
#: work in one program (moe_sorting_kernel: program 0 sorts) or in BLOCK_E / 16 (tile_scan_kernel).
OCCUPANCY_MATTERS = frozenset({"topk_gating_kernel", "tile_histogram_kernel", "tile_place_kernel",
                               "fused_route_kernel"})
#: Kernels with code written for one warp / wavefront size, and why. None: every kernel
#: compiles unchanged for wave32 (RDNA, NVIDIA) and wave64 (CDNA), which the lane checks.
WARP_SIZE_SPECIFIC: dict[str, str] = {}
LOW_OCCUPANCY = 0.25  # of the architecture's maximum


@dataclass(frozen=True)
class Finding:
    severity: str  # "fail" | "warn"
    rule: str  # short name, for grouping
    variant: str
    kernel: str
    arch: str
    message: str  # one line: the variant, the architecture, what is wrong, where it came from
    detail: str = ""  # the compiler's message, for compile errors


def is_hot(variant) -> bool:
    return variant.name in HOT_KERNELS and HOT_SOURCE_TAG in variant.tags


def judge(variant, row: dict) -> list[Finding]:
    """The findings of one (variant, arch) row of the report."""
    arch = targets.ARCHS[row["arch"]]

    def finding(severity, rule, what, detail=""):
        message = f"{variant.id} on {arch.name} {what}; reached from {variant.origin()}"
        return Finding(severity, rule, variant.id, variant.name, arch.name, message, detail)

    if row["status"] != "ok":
        return [finding("fail", "compile error", "does not compile", row["error"])]
    out = []
    if row["lds"] > arch.lds_limit:
        out.append(finding("fail", "LDS over the limit",
                           f"uses {row['lds']} bytes of {'LDS' if arch.family == 'hip' else 'shared memory'} per "
                           f"workgroup, above {arch.name}'s limit of {arch.lds_limit} ({arch.lds_limit // 1024} KiB)"))
    hot = is_hot(variant)
    if row["spills"] or row["scratch"]:
        what = (f"spills to scratch ({row['vgpr_spill']} VGPRs, {row['scratch']} bytes per lane)"
                if arch.family == "hip" else f"spills ({row['scratch']} bytes of stack/local memory per thread)")
        out.append(finding("fail" if hot else "warn", "spill in a hot kernel" if hot else "spill", what))
    if hot and row.get("sgpr_spill"):
        out.append(finding("warn", "SGPR spill", f"spills {row['sgpr_spill']} SGPRs into VGPR lanes"))
    if hot and variant.name in OCCUPANCY_MATTERS and row["occupancy"] < LOW_OCCUPANCY * arch.max_occupancy:
        unit = "waves per SIMD" if arch.family == "hip" else "warps per SM"
        out.append(finding("warn", "low occupancy", f"reaches {row['occupancy']} {unit} of "
                           f"{arch.max_occupancy}, limited by {row['limiter']}"))
    return out
