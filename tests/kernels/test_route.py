"""route on every path: against the oracle, path against path (bitwise), run against run."""
import numpy as np
import pytest
import torch

import fused_moe
import oracles
from fuzz import properties as fp
from oracles.layouts import vllm_from_ck

from .harness import (canaried_vllm_route_out, check_vllm_sorting, expected_vllm, fresh_seed, poisoned_route,
                      random_logits, random_moe_buf, snapshot, upcast)

PATHS = ["fused", "unfused", "auto"]

# (T, E, K, U): the seed's decode shapes and the tile edges of the fused kernel.
SEED_T = [1, 2, 4, 8, 12, 16, 17, 64]
CASES = [(t, 256, 8, 32) for t in SEED_T] + [(t, 128, 4, 32) for t in SEED_T] + [
    (0, 8, 2, 4),  # empty batch: only num_valid_ids is written
    (3, 1, 1, 1),  # E = 1, U = 1
    (33, 3, 3, 5),  # K == E, odd U, many tiles of a tiny E
    (300, 60, 6, 16),  # several gating tiles and sort chunks: the last-arriver path
    (16, 128, 127, 4),  # one gating tile, but more assignments than one sort chunk
    (5, 2048, 8, 32),  # E = 2048: two-row gating tiles, so T = 5 already has three
    (1, 5, 2, 4),  # padding columns in a 16-bit selection tile (E = 5 of 8)
    (17, 1, 1, 1),  # E = 1 over two gating tiles
]


def run_route(logits, K, U, path, device, *, mask=None, M=None, m_on_device=False, moe_buf=None):
    T, E = logits.shape
    out, poisoned = poisoned_route(T, K, E, U, device)
    before = snapshot(out)
    bases_before = fp.guard_snapshot(poisoned)  # the canaries around every output
    buf_before = None if moe_buf is None else moe_buf.cpu().clone()
    num_local = torch.tensor([M], dtype=torch.int32, device=device) if m_on_device else M
    fused_moe.route(logits, K, unit_size=U, expert_mask=None if mask is None else torch.from_numpy(mask).to(device),
                    num_local_tokens=num_local, moe_buf=moe_buf, path=path, out=out)
    report = oracles.check_route(out, upcast(logits), K, unit_size=U, expert_mask=mask, num_local_tokens=M,
                                 before=before).merged(fp.guards(poisoned, bases_before))
    if moe_buf is not None:
        report = report.merged(oracles.check_moe_buf(buf_before, moe_buf.cpu(), T if M is None else M))
    return out, report


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("T,E,K,U", CASES, ids=[f"T{t}-E{e}-K{k}-U{u}" for t, e, k, u in CASES])
def test_matches_oracle(T, E, K, U, path, device):
    seed = fresh_seed()
    rng = np.random.default_rng(seed)
    logits = random_logits(rng, T, E, torch.bfloat16, device)
    buf = random_moe_buf(rng, T, (7,), torch.float16, device)
    _, report = run_route(logits, K, U, path, device, moe_buf=buf)
    assert report.ok, f"seed={seed} path={path}\n{report}"


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("T", [2, 20], ids=["register-sort", "tiled-sort"])
def test_float32_logits_match_oracle(T, path, device):
    """float32 logits select on 64-bit packed keys (16-bit ones on 32-bit keys): the other
    width of every selection and taken-slot test, on both sorts that read the gating tile."""
    seed = fresh_seed()
    logits = random_logits(np.random.default_rng(seed), T, 64, torch.float32, device)
    _, report = run_route(logits, 6, 8, path, device)
    assert report.ok, f"seed={seed} path={path}\n{report}"


@pytest.mark.parametrize("path", ["fused", "unfused"])
@pytest.mark.parametrize("T", [1, 20], ids=["register-sort", "tiled-sort"])
def test_float32_logits_with_padding_columns(T, path, device):
    """E = 5 of an 8-column tile: the padding columns' 64-bit key ranks below every real one
    and below the taken mark."""
    seed = fresh_seed()
    logits = random_logits(np.random.default_rng(seed), T, 5, torch.float32, device)
    _, report = run_route(logits, 2, 4, path, device)
    assert report.ok, f"seed={seed} path={path}\n{report}"


@pytest.mark.parametrize("path", ["fused", "unfused"])
def test_signed_expert_mask(path, device):
    """Any nonzero mask entry is an expert on this rank, negative ones too."""
    seed = fresh_seed()
    rng = np.random.default_rng(seed)
    logits = random_logits(rng, 20, 8, torch.bfloat16, device)
    mask = np.array([-1, 1, -1, 0, 1, -1, 0, 2], dtype=np.int32)
    _, report = run_route(logits, 2, 4, path, device, mask=mask)
    assert report.ok, f"seed={seed} path={path}\n{report}"


@pytest.mark.parametrize("path", ["fused", "unfused"])
def test_moe_buf_zeroed_by_several_programs(path, device):
    """A 40 KB moe_buf takes several zeroing programs after the gating tiles: each zeroes its
    own block of 8-byte words, and together every row."""
    seed = fresh_seed()
    rng = np.random.default_rng(seed)
    logits = random_logits(rng, 20, 8, torch.bfloat16, device)
    buf = random_moe_buf(rng, 20, (512,), torch.float32, device)
    _, report = run_route(logits, 2, 4, path, device, moe_buf=buf)
    assert report.ok, f"seed={seed} path={path}\n{report}"


@pytest.mark.parametrize("layout", ["ck", "vllm"])
@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("T,M", [(2, 1), (16, 9), (40, 23), (100, 77)],
                         ids=["register-sort", "single-tile", "single-program-sort", "tiled-sort"])
def test_mask_local_tokens_on_device(T, M, path, layout, device):
    seed = fresh_seed()
    rng = np.random.default_rng(seed)
    E = 64
    logits = random_logits(rng, T, E, torch.float16, device, stride_pad=3)
    mask = (rng.random(E) < 0.5).astype(np.int32)
    buf = random_moe_buf(rng, T, (3,), torch.uint8, device)
    options = dict(mask=mask, M=M, m_on_device=True, moe_buf=buf)
    if layout == "ck":
        _, report = run_route(logits, 6, 8, path, device, **options)
    else:
        _, report = run_vllm_route(logits, 6, 8, path, device, extra=3, **options)
    assert report.ok, f"seed={seed} path={path} layout={layout}\n{report}"


@pytest.mark.parametrize("T", [1, 16, 17, 300])
def test_paths_bitwise_equal_and_deterministic(T, device):
    """Every path gives the same bits, and so does every repeat."""
    seed = fresh_seed()
    logits = random_logits(np.random.default_rng(seed), T, 128, torch.bfloat16, device)
    runs = [fused_moe.route(logits, 4, path=p) for p in ("fused", "unfused", "fused", "auto")]
    n = int(runs[0].num_valid_ids[0])
    for run in runs[1:]:
        for name, a, b in zip(fused_moe.RouteResult._fields, runs[0], run):
            if name in ("sorted_token_ids", "sorted_weights"):
                a, b = a[:n], b[:n]
            elif name == "sorted_expert_ids":
                a, b = a[: n // 32], b[: n // 32]
            if a.dtype == torch.float32:
                a, b = a.view(torch.int32), b.view(torch.int32)
            assert torch.equal(a, b), f"seed={seed}: {name} differs between paths or runs"


# --------------------------------------------------------------------------- layout="vllm"


def run_vllm_route(logits, K, U, path, device, *, extra=0, mask=None, M=None, m_on_device=False, moe_buf=None):
    """route(layout="vllm") into views of canaried buffers: gating against the oracle, the
    sorting outputs against vllm_from_ck(oracle sorting of the kernel's own gating output)."""
    T, E = logits.shape
    out, full = canaried_vllm_route_out(T, K, E, U, device, extra)
    buf_before = None if moe_buf is None else moe_buf.cpu().clone()
    num_local = torch.tensor([M], dtype=torch.int32, device=device) if m_on_device else M
    mask_t = None if mask is None else torch.from_numpy(mask).to(device)
    got = fused_moe.route(logits, K, unit_size=U, expert_mask=mask_t, num_local_tokens=num_local, moe_buf=moe_buf,
                          path=path, layout="vllm", out=out)
    assert isinstance(got, fused_moe.VllmRouteResult) and all(a is b for a, b in zip(got, out))
    ids, weights = out.topk_ids.cpu().numpy(), out.topk_weights.cpu().numpy()
    report = oracles.check_gating(weights, ids, upcast(logits), K)
    expected = expected_vllm(ids, weights, E, U, expert_mask=mask, num_local_tokens=M)
    report = report.merged(check_vllm_sorting(out[2:], full, expected, T, K))
    if moe_buf is not None:
        report = report.merged(oracles.check_moe_buf(buf_before, moe_buf.cpu(), T if M is None else M))
    return out, report


def test_vllm_layout_expert_zero_first_in_a_tile(device):
    """vLLM weights are not packed into the presorted keys, so a tile whose first assignment
    goes to expert 0 has a key of exactly 0: still a kept entry."""
    seed = fresh_seed()
    logits = random_logits(np.random.default_rng(seed), 17, 128, torch.bfloat16, device)
    logits[0, 0] = 10.0
    _, report = run_vllm_route(logits, 4, 8, "fused", device)
    assert report.ok, f"seed={seed}\n{report}"


# The CASES plus both sides of every dispatch threshold (fused: register sort, single tile,
# last arriver; unfused: single-program and tiled sort; auto: fused_max_tokens).
_TH = fused_moe.DISPATCH_THRESHOLDS
VLLM_T = sorted({t for name in _TH for t in (_TH[name], _TH[name] + 1)})
VLLM_CASES = CASES + [(t, 64, 4, 8) for t in VLLM_T]


@pytest.mark.parametrize("path", ["fused", "unfused"])  # "auto" runs one of them (CK tests cover the choice)
@pytest.mark.parametrize("T,E,K,U", VLLM_CASES, ids=[f"T{t}-E{e}-K{k}-U{u}" for t, e, k, u in VLLM_CASES])
def test_vllm_layout_matches_oracle(T, E, K, U, path, device):
    seed = fresh_seed()
    rng = np.random.default_rng(seed)
    logits = random_logits(rng, T, E, torch.bfloat16, device)
    buf = random_moe_buf(rng, T, (7,), torch.float16, device)
    _, report = run_vllm_route(logits, K, U, path, device, extra=(0, 1029)[seed % 2], moe_buf=buf)
    assert report.ok, f"seed={seed} path={path}\n{report}"


@pytest.mark.parametrize("T", [1, 16, 17, 100])
def test_vllm_layout_same_routing_as_ck(T, device):
    """layout changes only how the sort is written: the same topk bits, and the vLLM buffers
    are the kernel's own CK output converted (vllm_from_ck), with default allocations."""
    seed = fresh_seed()
    logits = random_logits(np.random.default_rng(seed), T, 128, torch.bfloat16, device)
    for path in ("fused", "unfused"):
        ck = fused_moe.route(logits, 4, path=path)
        vllm = fused_moe.route(logits, 4, path=path, layout="vllm")
        assert torch.equal(ck.topk_ids, vllm.topk_ids), f"seed={seed} {path}"
        assert torch.equal(ck.topk_weights.view(torch.int32), vllm.topk_weights.view(torch.int32)), f"seed={seed}"
        P = int(ck.num_valid_ids[0])
        prefix = oracles.SortingResult(*(x.cpu().numpy() for x in (
            ck.sorted_token_ids[:P], ck.sorted_weights[:P], ck.sorted_expert_ids[: P // 32], ck.num_valid_ids)))
        assert [x.numel() for x in vllm[2:]] == [*fused_moe.capacity(T, 4, 128, 32), 1]
        report = check_vllm_sorting(vllm[2:], None, vllm_from_ck(prefix, T, 4), T, 4)
        assert report.ok, f"seed={seed} path={path}\n{report}"


@pytest.mark.parametrize("bad,error,match", [
    (dict(path="fast"), ValueError, "path"),
    (dict(topk=128), ValueError, "topk"),
    (dict(unit_size=-2), ValueError, "unit_size"),
    (dict(out=fused_moe.RouteResult(*([torch.zeros(1)] * 6))), ValueError, "topk_weights"),
    (dict(topk=True), TypeError, "topk must be an int, got bool"),
    (dict(unit_size=4.0), TypeError, "unit_size must be an int"),
    (dict(num_local_tokens=np.bool_(True)), TypeError, "num_local_tokens must be an int"),
    (dict(renormalize="no"), TypeError, "renormalize must be a bool"),
    (dict(renormalize=torch.tensor(True)), TypeError, "renormalize must be a bool"),
    (dict(layout="cK"), ValueError, "layout must be one of"),
    (dict(layout="vllm", out=fused_moe.allocate_route_outputs(4, 2, 200, 32, "cpu")), TypeError, "VllmRouteResult"),
    (dict(layout="vllm", out=fused_moe.allocate_route_outputs(3, 2, 200, 32, "cpu", layout="vllm")), ValueError,
     "topk_weights"),
], ids=["path", "k128", "unit", "out-shape", "k-bool", "unit-float", "m-bool", "renorm-str", "renorm-tensor",
        "layout", "vllm-with-ck-out", "vllm-out-shape"])
def test_rejects_bad_arguments(bad, error, match, device):
    kwargs = dict(topk=2) | bad
    with pytest.raises(error, match=match):
        fused_moe.route(torch.zeros(4, 200, device=device), kwargs.pop("topk"), **kwargs)


def test_numpy_integer_arguments(device):
    """NumPy integers and NumPy bools stand for Python ints and bools: the same bits."""
    seed = fresh_seed()
    logits = random_logits(np.random.default_rng(seed), 9, 16, torch.float32, device)
    for path in ("fused", "unfused"):
        ref = fused_moe.route(logits, 3, unit_size=4, renormalize=False, num_local_tokens=7, path=path)
        got = fused_moe.route(logits, np.int64(3), unit_size=np.int32(4), renormalize=np.False_,
                              num_local_tokens=np.int64(7), path=path)
        n = int(ref.num_valid_ids[0])
        for name, a, b in zip(fused_moe.RouteResult._fields, ref, got):
            a, b = (a[:n], b[:n]) if name in ("sorted_token_ids", "sorted_weights") else (a, b)
            a, b = (a[: n // 4], b[: n // 4]) if name == "sorted_expert_ids" else (a, b)
            assert torch.equal(a.view(torch.int32), b.view(torch.int32)), f"seed={seed} {path}: {name}"
    gate = fused_moe.topk_gating_softmax(logits, np.uint8(3), renormalize=np.True_)
    assert torch.equal(gate.topk_ids, fused_moe.topk_gating_softmax(logits, 3).topk_ids)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA graphs need a GPU")
@pytest.mark.parametrize("path", ["fused", "unfused"])
def test_cuda_graph_replay_with_new_inputs(path, device):
    """route captures in a CUDA graph and replays with new logits and a new device-side M."""
    T, E, K, U = 24, 256, 8, 32
    rng = np.random.default_rng(fresh_seed())
    logits = random_logits(rng, T, E, torch.bfloat16, device).contiguous()
    m = torch.tensor([T], dtype=torch.int32, device=device)
    buf = random_moe_buf(rng, T, (64,), torch.bfloat16, device)
    out = fused_moe.allocate_route_outputs(T, K, E, U, device)
    call = lambda: fused_moe.route(logits, K, unit_size=U, num_local_tokens=m, moe_buf=buf, path=path, out=out)
    call()  # compile and create cached state outside the capture
    torch.cuda.synchronize()
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        call()
    for M in (T, 0, 5, 17):
        logits.copy_(random_logits(rng, T, E, torch.bfloat16, device))
        m.fill_(M)
        buf.copy_(random_moe_buf(rng, T, (64,), torch.bfloat16, device))
        buf_before = buf.cpu().clone()
        graph.replay()
        torch.cuda.synchronize()
        report = oracles.check_route(out, upcast(logits), K, unit_size=U, num_local_tokens=M)
        report = report.merged(oracles.check_moe_buf(buf_before, buf.cpu(), M))
        assert report.ok, f"replay with M={M}\n{report}"
