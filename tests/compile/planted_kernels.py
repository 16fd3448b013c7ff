"""Kernels planted to prove the compile lane bites (tests/compile/test_compile_lane.py).
Each ``record_*`` function is an ``--extra`` source for tools/compile_lane.py: it launches
its kernel with meta tensors while the lane records the launch."""
import torch
import triton
import triton.language as tl

META = torch.device("meta")


@triton.jit
def lds_transpose_kernel(
    x_ptr,  # (BLOCK_M, BLOCK_N) float32: input
    y_ptr,  # (BLOCK_N, BLOCK_M) float32: output, x transposed
    BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr,
):
    """Grid (1,). A 128 x 256 float32 tile stored transposed goes through LDS / shared
    memory: 64 KiB on sm_90 (fits its 227 KiB), 128 KiB on gfx942 (over its 64 KiB)."""
    i_m = tl.arange(0, BLOCK_M)[:, None]
    i_n = tl.arange(0, BLOCK_N)[None, :]
    tl.store(y_ptr + i_n * BLOCK_M + i_m, tl.load(x_ptr + i_m * BLOCK_N + i_n))


@triton.jit
def loop_type_change_kernel(
    o_ptr,  # (P,) int32: output, one value per program
    b_ptr,  # (2,) int32: input, loop bounds [start, stop)
):
    """Grid (P,). The SPEC section 4 construct (a loop with bounds loaded at run time, in a
    branch only some programs take) with a bug Triton cannot trace: the loop-carried ``acc``
    starts as an int and becomes a float inside the loop (``scf.for`` needs one type)."""
    pid = tl.program_id(0)
    zs = tl.load(b_ptr)
    ze = tl.load(b_ptr + 1)
    acc = 0
    if pid != 0:
        for z in range(zs, ze):
            acc += tl.load(o_ptr + z).to(tl.float32)
    tl.store(o_ptr + pid, acc)


def record_lds_overflow(recorder):
    x = torch.empty(128 * 256, device=META)
    with recorder.session():
        recorder.call("planted: 128x256 float32 transpose through LDS", None,
                      lambda: lds_transpose_kernel[(1,)](x, x, BLOCK_M=128, BLOCK_N=256), tags=("planted",))


def record_untraceable_loop(recorder):
    o, b = torch.empty(4, dtype=torch.int32, device=META), torch.empty(2, dtype=torch.int32, device=META)
    with recorder.session():
        recorder.call("planted: runtime loop under `if pid != 0` changing its carried type", None,
                      lambda: loop_type_change_kernel[(4,)](o, b), tags=("planted",))
