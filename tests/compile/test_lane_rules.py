"""The compile lane's rules without compiling: limits, occupancy formulas, the fail / warn
policy and the default sample's cover (tools/lane/)."""
from types import SimpleNamespace

import pytest

from tools.lane import policy, sample, targets
from tools.lane.capture import Spec, Variant, token_ranges

pytestmark = pytest.mark.compile


def _variant(name="fused_route_kernel", tags=("seed",), constexprs=(), warps=4):
    """A Variant of a stand-in kernel whose arguments are the constexprs given."""
    names = [k for k, _ in constexprs]
    kernel = SimpleNamespace(__name__=name, arg_names=names, module="stand_in")
    spec = Spec(tuple((k, "constexpr") for k in names), tuple(((i,), v) for i, (_, v) in enumerate(constexprs)), ())
    variant = Variant(kernel, (("num_warps", warps),), {"cuda": spec, "hip": spec}, tags=set(tags))
    variant.add_origin("DeepSeek-R1 route(fused) bfloat16", 1)
    return variant


def _row(arch, **resources):
    base = {"arch": arch, "status": "ok", "lds": 0, "spills": 0, "scratch": 0, "occupancy": 64, "limiter": "registers"}
    if not arch.startswith("sm_"):
        base.update(vgpr_spill=0, sgpr_spill=0, occupancy=8)
    return {**base, **resources}


@pytest.mark.parametrize("arch", list(targets.ARCHS))
def test_lds_at_the_limit_passes_one_byte_over_fails(arch):
    limit = targets.ARCHS[arch].lds_limit
    assert policy.judge(_variant(), _row(arch, lds=limit)) == []
    (finding,) = policy.judge(_variant(), _row(arch, lds=limit + 1))
    assert finding.severity == "fail" and finding.rule == "LDS over the limit"
    assert f"uses {limit + 1} bytes" in finding.message and f"limit of {limit}" in finding.message


def test_limits_per_architecture():
    kib = {name: a.lds_limit // 1024 for name, a in targets.ARCHS.items()}
    assert kib == {"gfx942": 64, "gfx950": 160, "gfx90a": 64, "gfx1100": 64, "gfx1201": 64, "sm_90": 227, "sm_100": 227}
    waves = {name: a.warp_size for name, a in targets.ARCHS.items()}
    assert waves == {"gfx942": 64, "gfx950": 64, "gfx90a": 64, "gfx1100": 32, "gfx1201": 32, "sm_90": 32, "sm_100": 32}


@pytest.mark.parametrize("arch, row, severity", [
    ("gfx942", dict(spills=2, vgpr_spill=2, scratch=8), "fail"),  # VGPRs to scratch memory
    ("sm_90", dict(spills=16, scratch=16), "fail"),  # stack / local memory
])
def test_memory_spills_fail_in_hot_variants_and_warn_elsewhere(arch, row, severity):
    (hot,) = policy.judge(_variant(tags=("seed",)), _row(arch, **row))
    assert (hot.severity, hot.rule) == ("fail", "spill in a hot kernel")
    (fuzz_only,) = policy.judge(_variant(tags=("fuzz",)), _row(arch, **row))
    assert (fuzz_only.severity, fuzz_only.rule) == ("warn", "spill")
    (not_hot,) = policy.judge(_variant(name="loop_in_if_kernel", tags=("seed",)), _row(arch, **row))
    assert not_hot.severity == "warn"


def test_sgpr_spills_only_warn():
    (finding,) = policy.judge(_variant(), _row("gfx1201", sgpr_spill=5))
    assert (finding.severity, finding.rule) == ("warn", "SGPR spill")


def test_compile_error_fails_with_the_compiler_message():
    (finding,) = policy.judge(_variant(), {"arch": "gfx1100", "status": "error", "error": "CompilationError: boom"})
    assert finding.severity == "fail" and "on gfx1100 does not compile" in finding.message
    assert finding.detail == "CompilationError: boom"


def test_nvidia_occupancy_formula():
    sm_90 = targets.ARCHS["sm_90"]
    # 126 registers -> 128 per thread, 4096 per warp: 16 warps of registers, 4 blocks of 4 warps
    assert targets.nvidia_occupancy(sm_90, 126, 1024, 4) == (16, "registers")
    # 56 registers, 1 warp per block: 32 blocks at most
    assert targets.nvidia_occupancy(sm_90, 56, 1024, 1) == (32, "warp slots")
    # 100 KiB of shared memory: two blocks fit in 228 KiB with 1 KiB reserved each
    assert targets.nvidia_occupancy(sm_90, 32, 100 * 1024, 4) == (8, "shared memory")


def test_amd_occupancy_formula():
    gfx942, gfx1100 = targets.ARCHS["gfx942"], targets.ARCHS["gfx1100"]
    # 32 KiB per workgroup: 2 workgroups of 4 waves on a CU's 4 SIMDs -> 2 waves per SIMD
    assert targets.amd_occupancy(gfx942, 8, 32 * 1024, 4) == (2, "LDS")
    assert targets.amd_occupancy(gfx1100, 16, 32 * 1024, 4) == (4, "LDS")  # 128 KiB per WGP
    assert targets.amd_occupancy(gfx942, 7, 1024, 4) == (7, "registers")
    assert targets.amd_occupancy(gfx942, 8, 0, 4) == (8, "registers")


def test_token_ranges():
    assert token_ranges({1, 2, 3, 16, 32, 33}) == "1-3,16,32-33"
    assert token_ranges(range(0, 100, 2), limit=2) == "0,2,... (50 values)"


def test_sample_pins_the_benchmark_ends_then_covers_every_path():
    variants = [
        _variant(tags=("seed", "bench", "bench:decode"), constexprs=(("HAS_MASK", False), ("BLOCK_E", 256))),
        _variant(tags=("seed",), constexprs=(("HAS_MASK", False), ("BLOCK_E", 128))),  # nothing new
        _variant(tags=("fuzz",), constexprs=(("HAS_MASK", True), ("BLOCK_E", 64))),  # a path and the min
        _variant(tags=("fuzz",), constexprs=(("HAS_MASK", True), ("BLOCK_E", 512))),  # the max
        _variant(tags=("fuzz",), constexprs=(("HAS_MASK", True), ("BLOCK_E", 256)), warps=8),  # an option
    ]
    chosen = sample.select(variants, "paths")
    assert chosen[0] is variants[0] and variants[1] not in chosen
    assert {id(v) for v in chosen[1:]} == {id(v) for v in variants[2:]}
    assert sample.select(variants, "full") == variants
