"""Plan caching and direct launches (fused_moe/plans.py, launcher.py): a cached plan must
never stand in for a call it does not describe exactly."""
import importlib

import numpy as np
import pytest
import torch

import fused_moe
import oracles
from fused_moe.launcher import KernelLaunch
from fused_moe.sorting_kernels import moe_sorting_kernel

from .harness import fresh_seed, random_logits, random_moe_buf, upcast
from .test_route import run_route

route_module = importlib.import_module("fused_moe.route")


def seeded():
    seed = fresh_seed()
    return seed, np.random.default_rng(seed)


def assert_both_paths(logits, K, U, device, context, moe_buf=None, **kwargs):
    for path in ("fused", "unfused"):
        buf = None if moe_buf is None else moe_buf.clone()  # each path zeroes its own copy
        _, report = run_route(logits, K, U, path, device, moe_buf=buf, **kwargs)
        assert report.ok, f"{context} path={path}\n{report}"


def test_same_shape_other_alignment_runs_its_own_plan(device):
    """Same shape and strides, but the second tensor starts 2 bytes past a 16-byte boundary:
    Triton specializes on alignment, so it must not reuse the first call's kernel."""
    seed, rng = seeded()
    T, E, K = 3, 257, 8
    wide = random_logits(rng, T + 1, E, torch.bfloat16, device).contiguous()
    flat = wide.reshape(-1)
    aligned, shifted = flat[: T * E].view(T, E), flat[1: 1 + T * E].view(T, E)
    assert aligned.data_ptr() % 16 == 0 and shifted.data_ptr() % 16 == 2
    for logits in (aligned, shifted, aligned):
        assert_both_paths(logits, K, 4, device, f"seed={seed} address % 16 = {logits.data_ptr() % 16}")


def test_host_token_count_changes_between_calls(device):
    seed, rng = seeded()
    T, E, K = 12, 64, 4
    logits = random_logits(rng, T, E, torch.float32, device)
    for M in (12, 5, 0, 5, 12):
        assert_both_paths(logits, K, 8, device, f"seed={seed} M={M}", M=M)
    with pytest.raises(ValueError, match="num_local_tokens"):
        fused_moe.route(logits, K, num_local_tokens=T + 1)  # same shapes as a cached plan, bad value


def test_bad_arguments_still_raise_after_a_cached_call(device):
    logits = torch.zeros(4, 16, device=device)
    fused_moe.route(logits, 2)
    with pytest.raises(TypeError, match="topk"):
        fused_moe.route(logits, [2])  # unhashable: no key, the validating path
    with pytest.raises(TypeError, match="logits"):
        fused_moe.route(logits.cpu().numpy(), 2)
    with pytest.raises(TypeError, match="topk"):
        fused_moe.route(logits, True)  # == 1 and hashes like 1, but a bool
    with pytest.raises(TypeError, match="moe_buf"):
        fused_moe.route(logits, 2, moe_buf=np.zeros((4, 3)))


def test_moe_buf_without_a_triton_dtype_is_zeroed_as_bytes(device):
    seed, rng = seeded()
    T, E, K = 6, 32, 2
    logits = random_logits(rng, T, E, torch.float16, device)
    buf = random_moe_buf(rng, T, (5,), torch.complex64, device)
    assert_both_paths(logits, K, 4, device, f"seed={seed}", M=4, moe_buf=buf)


def test_bool_expert_mask(device):
    seed, rng = seeded()
    T, E, K = 5, 16, 3
    logits = random_logits(rng, T, E, torch.float32, device)
    mask = rng.random(E) < 0.5
    for path in ("fused", "unfused"):
        out = fused_moe.route(logits, K, unit_size=4, expert_mask=torch.from_numpy(mask).to(device), path=path)
        report = oracles.check_route(out, upcast(logits), K, unit_size=4, expert_mask=mask.astype(np.int32))
        assert report.ok, f"seed={seed} path={path}\n{report}"


def test_plan_cache_is_bounded(device, monkeypatch):
    monkeypatch.setattr(fused_moe.plans, "MAX_PLANS", 3)
    cache = route_module._plans
    for T in range(1, 8):
        fused_moe.route(torch.zeros(T, 8, device=device), 2)
        assert len(cache.plans) <= 3


def test_kernel_launch_names_unknown_and_missing_arguments():
    with pytest.raises(TypeError, match=r"unknown arguments \['nonsense'\], missing \[.*'w_ptr'"):
        KernelLaunch(moe_sorting_kernel, 1, 4, ("ids_ptr", "nonsense"), {})


class _FakeCompiled:
    function = packed_metadata = None

    def __init__(self, log):
        self.log = log

    def run(self, *args):
        self.log.append("direct")
        raise TypeError("launcher of another Triton version")


class _FakeKernel:
    """Stands in for a JITFunction: ``fn[grid](*args)`` logs and returns a compiled kernel."""
    arg_names = ["x_ptr", "n"]
    __name__ = "fake_kernel"

    def __init__(self):
        self.log = []

    def __getitem__(self, grid):
        def launch(*args, num_warps):
            self.log.append("jit")
            return _FakeCompiled(self.log)
        return launch


def test_direct_launch_falls_back_when_the_launcher_refuses(monkeypatch):
    """A Triton whose compiled-kernel launcher takes other arguments: the first direct launch
    raises TypeError before launching, and every launch goes the usual way from then on."""
    from fused_moe import launcher

    monkeypatch.setattr(launcher, "_DIRECT", True)
    monkeypatch.setattr(launcher.torch.cuda, "current_device", lambda: 0)
    monkeypatch.setattr(launcher, "current_stream", lambda device: 0)
    fake = _FakeKernel()
    launch = KernelLaunch(fake, 1, 4, ("x_ptr",), {"n": 3})
    launch("x")  # compiles through the JIT path
    launch("x")  # direct: refused, relaunched through the JIT path
    launch("x")  # direct launches now off
    assert fake.log == ["jit", "direct", "jit", "jit"]
    assert launcher._DIRECT is False


def test_renormalize_is_keyed_by_its_value(device):
    """A NumPy bool and a Python bool of the same value share a plan; the value picks it.
    A tensor flag (whose description holds only its layout) is refused, not keyed."""
    seed, rng = seeded()
    logits = random_logits(rng, 3, 16, torch.float32, device)
    for flag in (True, False, True):
        for make in (np.bool_, bool):
            got = fused_moe.topk_gating_softmax(logits, 2, renormalize=make(flag))
            report = oracles.check_gating(got.topk_weights, got.topk_ids, upcast(logits), 2, renormalize=flag)
            assert report.ok, f"seed={seed} renormalize={flag} as {type(make(flag)).__name__}\n{report}"
    with pytest.raises(TypeError, match="renormalize"):
        fused_moe.topk_gating_softmax(logits, 2, renormalize=torch.tensor(True))


def test_integer_arguments_are_keyed_by_value(device):
    """np.int64(K) and K share a plan; a one-element integer tensor counts by its value too."""
    seed, rng = seeded()
    logits = random_logits(rng, 3, 16, torch.float32, device)
    for k in (2, np.int64(3), torch.tensor(4), 2):
        got = fused_moe.topk_gating_softmax(logits, k)
        report = oracles.check_gating(got.topk_weights, got.topk_ids, upcast(logits), int(k))
        assert report.ok, f"seed={seed} topk={k!r}\n{report}"


def test_strided_expert_mask_is_refused(device):
    full = torch.ones(32, dtype=torch.int32, device=device)
    with pytest.raises(ValueError, match="expert_mask must be contiguous"):
        fused_moe.route(torch.zeros(4, 16, device=device), 2, expert_mask=full[::2])


def test_moe_buf_contiguous_with_a_strided_unit_dim(device):
    """Contiguous (the size-1 dim's stride does not count) but not viewable as bytes directly."""
    seed, rng = seeded()
    T, E, K = 5, 16, 2
    logits = random_logits(rng, T, E, torch.float16, device)
    buf = random_moe_buf(rng, 1, (T,), torch.complex64, device).t()
    assert buf.is_contiguous() and buf.stride(-1) != 1
    assert_both_paths(logits, K, 4, device, f"seed={seed}", moe_buf=buf)


def _workspaces(monkeypatch, call):
    """The int64/int32 workspaces ``call`` allocates through torch.empty (every other
    allocation, e.g. of outputs, has another dtype or is made before)."""
    sizes, empty = [], torch.empty

    def spy(*args, **kwargs):
        t = empty(*args, **kwargs)
        sizes.append((t.dtype, t.numel()))
        return t
    out = call()
    monkeypatch.setattr(torch, "empty", spy)
    call(out)
    monkeypatch.undo()
    return [s for s in sizes if s[0] in (torch.int64, torch.int32)]


@pytest.mark.parametrize(("T", "E", "K"), [(5, 64, 4), (40, 64, 4), (600, 60, 6), (33, 1, 1)])
def test_fused_route_workspace_is_its_keys_and_histograms(T, E, K, device, monkeypatch):
    """One tile allocates nothing (the kernel sorts in one program); several allocate exactly
    their presorted keys (int64) and histograms (int32, packed two to a word), plus one word:
    never less (the kernel would write past it), never more."""
    from fused_moe import geometry
    logits = torch.zeros(T, E, device=device)
    tile = geometry.fused_tile(T, K, E)

    def call(out=None):
        out = out or fused_moe.allocate_route_outputs(T, K, E, 4, device)
        fused_moe.route(logits, K, unit_size=4, path="fused", out=out)
        return out
    expected = [] if tile.tiles == 1 else [
        (torch.int64, tile.tiles * tile.block_n + tile.tiles * tile.gate.block_e // 2 + 1)]
    assert _workspaces(monkeypatch, call) == expected
