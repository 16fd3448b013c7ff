"""The architectures the lane compiles for, their limits, and the occupancy each compiled
kernel implies.

Limits (bytes of LDS / shared memory):
- AMD: what Triton itself allows a kernel, ``TargetInfo::getSharedMemorySize`` in
  third_party/amd/lib/TritonAMDGPUToLLVM/TargetInfo.cpp: 160 KiB on CDNA4 (gfx950), 64 KiB
  on every other target here (CDNA2 gfx90a, CDNA3 gfx942, RDNA3 gfx1100, RDNA4 gfx1201;
  RDNA's 128 KiB per WGP is shared by the workgroups on it, one may take 64 KiB). Triton's
  HIP driver refuses a larger kernel at load time, on the GPU only: hence this lane.
- NVIDIA: CUDA C++ Programming Guide, "Technical Specifications per Compute Capability",
  compute capabilities 9.0 (H100/H200) and 10.0 (B200): 227 KiB per block (opt-in, which
  Triton does), 228 KiB per SM, 1 KiB of it reserved per resident block, 64 K 32-bit
  registers and at most 64 warps and 32 blocks per SM.

Occupancy:
- AMD, waves per SIMD = min(R, L). R is LLVM's own figure for the target, the ``; Occupancy``
  line of the amdgcn (it counts VGPR, AGPR and SGPR allocation granules and the workgroup
  size). L = floor(LDS per CU / LDS of one workgroup) * waves per workgroup / SIMDs per CU,
  the LDS bound LLVM cannot see (Triton's LDS is allocated at launch); CDNA has 4 SIMDs per
  CU, RDNA 4 SIMD32 per WGP (workgroup processor mode, the default).
- NVIDIA, warps per SM = warps per block * min(32, floor(65536 / (ceil(regs * 32 / 256) * 256)
  / warps per block), floor(228 KiB / (shared + 1 KiB)), floor(64 / warps per block)): the
  occupancy calculator's register (256 per warp granule), shared-memory and slot limits.
"""
from __future__ import annotations

from dataclasses import dataclass

from triton.backends.compiler import GPUTarget

KIB = 1024


@dataclass(frozen=True)
class Arch:
    name: str
    target: GPUTarget
    lds_limit: int  # bytes one workgroup / block may use
    lds_per_unit: int  # bytes per CU (CDNA), WGP (RDNA) or SM (NVIDIA): shared by resident workgroups
    simds: int  # SIMDs sharing that LDS (AMD); 1 on NVIDIA
    max_occupancy: int  # waves per SIMD (AMD) or warps per SM (NVIDIA)

    @property
    def family(self) -> str:
        return self.target.backend

    @property
    def warp_size(self) -> int:
        return self.target.warp_size


def _amd(name, wave, lds_limit, lds_per_unit, max_waves):
    return Arch(name, GPUTarget("hip", name, wave), lds_limit, lds_per_unit, 4, max_waves)


def _nvidia(capability):
    return Arch(f"sm_{capability}", GPUTarget("cuda", capability, 32), 227 * KIB, 228 * KIB, 1, 64)


ARCHS = {a.name: a for a in (
    _amd("gfx942", 64, 64 * KIB, 64 * KIB, 8),  # MI300X/MI325X (CDNA3)
    _amd("gfx950", 64, 160 * KIB, 160 * KIB, 8),  # MI350X/MI355X (CDNA4)
    _amd("gfx90a", 64, 64 * KIB, 64 * KIB, 8),  # MI210/MI250X (CDNA2)
    _amd("gfx1100", 32, 64 * KIB, 128 * KIB, 16),  # RX 7900 / W7900 (RDNA3)
    _amd("gfx1201", 32, 64 * KIB, 128 * KIB, 16),  # RX 9070 / R9700 (RDNA4)
    _nvidia(90),  # H100 / H200
    _nvidia(100),  # B200
)}

NV_REGISTERS_PER_SM = 64 * KIB
NV_REGISTER_GRANULE = 256  # registers per warp
NV_RESERVED_SHARED = 1 * KIB  # per resident block
NV_MAX_BLOCKS = 32


def amd_occupancy(arch: Arch, llvm_occupancy: int, lds: int, waves_per_workgroup: int) -> tuple[int, str]:
    """-> (waves per SIMD, what limits it)."""
    if lds == 0:
        return llvm_occupancy, "registers"
    by_lds = (arch.lds_per_unit // lds) * waves_per_workgroup // arch.simds
    return (llvm_occupancy, "registers") if llvm_occupancy <= by_lds else (by_lds, "LDS")


def nvidia_occupancy(arch: Arch, registers: int, shared: int, warps_per_block: int) -> tuple[int, str]:
    """-> (warps per SM, what limits it)."""
    per_warp = -(-max(registers, 1) * 32 // NV_REGISTER_GRANULE) * NV_REGISTER_GRANULE
    limits = {
        "registers": NV_REGISTERS_PER_SM // per_warp // warps_per_block,
        "shared memory": arch.lds_per_unit // (shared + NV_RESERVED_SHARED),
        "warp slots": min(NV_MAX_BLOCKS, arch.max_occupancy // warps_per_block),
    }
    limiter = min(limits, key=limits.get)
    return limits[limiter] * warps_per_block, limiter
