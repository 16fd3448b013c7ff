"""What fails the lane and what only warns, in one place.

Fail: a compile error (any variant, any architecture); LDS / shared memory above the
architecture's limit (targets.py); a register spill in a hot variant.
Warn: a spill anywhere else; a hot variant below a quarter of the architecture's maximum
occupancy.
"""
from __future__ import annotations

from dataclasses import dataclass

from . import targets

#: The production kernels (fused_moe/*_kernels.py): every one is on the path of a route call.
HOT_KERNELS = frozenset({"topk_gating_kernel", "moe_sorting_kernel", "tile_histogram_kernel", "tile_offsets_kernel",
                         "tile_scatter_kernel", "fused_route_kernel"})
#: Hot only at the shapes that serve: the seed models' variants. The same kernels at shapes
#: only the fuzzers reach (E = 384, K = 127, U = 1, ...) warn instead of failing.
HOT_SOURCE_TAG = "seed"
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
    message: str


def is_hot(variant) -> bool:
    return variant.name in HOT_KERNELS and HOT_SOURCE_TAG in variant.tags


def judge(variant, row: dict) -> list[Finding]:
    """The findings of one (variant, arch) row of the report."""
    arch = targets.ARCHS[row["arch"]]
    where = f"{variant.id} on {arch.name} (reached from {variant.origin()})"

    def finding(severity, rule, message):
        return Finding(severity, rule, variant.id, variant.name, arch.name, f"{message}: {where}")

    if row["status"] != "ok":
        return [finding("fail", "compile error", f"does not compile: {row['error']}")]
    out = []
    if row["lds"] > arch.lds_limit:
        out.append(finding("fail", "LDS over the limit",
                           f"uses {row['lds']} bytes of {'LDS' if arch.family == 'hip' else 'shared memory'} per "
                           f"workgroup, above {arch.name}'s limit of {arch.lds_limit} ({arch.lds_limit // 1024} KiB)"))
    if row["spills"]:
        hot = is_hot(variant)
        what = (f"spills ({row['vgpr_spill']} VGPR, {row['sgpr_spill']} SGPR; {row['scratch']} scratch bytes per lane)"
                if arch.family == "hip" else f"spills ({row['scratch']} bytes of stack/local memory per thread)")
        out.append(finding("fail" if hot else "warn", "spill in a hot kernel" if hot else "spill", what))
    if is_hot(variant) and row["occupancy"] < LOW_OCCUPANCY * arch.max_occupancy:
        unit = "waves per SIMD" if arch.family == "hip" else "warps per SM"
        out.append(finding("warn", "low occupancy", f"occupancy {row['occupancy']} {unit} of "
                           f"{arch.max_occupancy}, limited by {row['limiter']}"))
    return out
