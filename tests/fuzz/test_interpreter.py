"""fuzz/interpreter.py: the interpreter lane's shortcuts give Triton's own answers (the
whole CPU suite runs with them; these pin the operations they replace)."""
import numpy as np
import pytest
import torch
import triton
import triton.language as tl

from fuzz import interpreter


@pytest.fixture(autouse=True)
def interpreted(device):
    if device != "cpu":
        pytest.skip("the shortcuts are for the Triton interpreter (CPU lane)")
    assert interpreter.install() and interpreter.install()  # in place, and idempotent


@triton.jit
def _max_combine(a, b):
    return tl.maximum(a, b)


@triton.jit
def _reductions(x_ptr, xor0_ptr, xor1_ptr, xor_all_ptr, sorted_ptr, max_ptr, R: tl.constexpr, C: tl.constexpr):
    i_r = tl.arange(0, R)[:, None]
    i_c = tl.arange(0, C)[None, :]
    x = tl.load(x_ptr + i_r * C + i_c)
    tl.store(xor0_ptr + tl.arange(0, C), tl.xor_sum(x, axis=0))
    tl.store(xor1_ptr + tl.arange(0, R), tl.xor_sum(x, axis=1))
    tl.store(xor_all_ptr, tl.xor_sum(tl.reshape(x, [R * C]), axis=0))
    tl.store(sorted_ptr + i_r * C + i_c, tl.sort(x, dim=1))  # a helper of tl.standard, twice per launch
    tl.store(sorted_ptr + R * C + i_r * C + i_c, tl.sort(x, dim=1, descending=True))
    tl.store(max_ptr + tl.arange(0, R), tl.reduce(x, 1, _max_combine))  # a combine it does not shortcut


@pytest.mark.parametrize("seed", [0, 1])
def test_xor_reductions_sorts_and_other_reductions_match_numpy(seed):
    R, C = 8, 16
    x = np.random.default_rng(seed).integers(-2**31, 2**31 - 1, size=(R, C), dtype=np.int64).astype(np.int32)
    out = {name: torch.full(shape, -7, dtype=torch.int32) for name, shape in
           (("xor0", (C,)), ("xor1", (R,)), ("xor_all", (1,)), ("sorted", (2, R, C)), ("max", (R,)))}
    for _ in range(2):  # a second launch starts from Triton's restored language modules
        _reductions[(1,)](torch.from_numpy(x), *out.values(), R=R, C=C)
        assert np.array_equal(out["xor0"].numpy(), np.bitwise_xor.reduce(x, axis=0))
        assert np.array_equal(out["xor1"].numpy(), np.bitwise_xor.reduce(x, axis=1))
        assert out["xor_all"].item() == np.bitwise_xor.reduce(x, axis=None)
        assert np.array_equal(out["sorted"][0].numpy(), np.sort(x, axis=1))
        assert np.array_equal(out["sorted"][1].numpy(), np.sort(x, axis=1)[:, ::-1])
        assert np.array_equal(out["max"].numpy(), x.max(axis=1))
