"""moe_sorting against the oracle (SPEC section 2): exact, with canaries on every buffer."""
import numpy as np
import pytest
import torch

import fused_moe
import oracles
from fused_moe.geometry import DISPATCH_THRESHOLDS_ASSIGNMENTS
from oracles.layouts import vllm_from_ck

from .harness import (canaried_vllm_sorting_out, check_vllm_sorting, expected_vllm, fresh_seed, poisoned_sorting_out,
                      random_moe_buf, snapshot)


def _random_assignments(rng, T, K, E, *, out_of_range=False, duplicates=False, distinct=True):
    """Ids distinct per row (``distinct``, where E >= K: one permutation per row, slow past a
    million rows) or uniform, a repeat now and then (legal: each is an assignment)."""
    distinct = distinct and E >= K and T > 0
    ids = np.stack([rng.permutation(E)[:K] for _ in range(T)]) if distinct else rng.integers(0, E, (T, K))
    ids = ids.reshape(T, K).astype(np.int32)
    if duplicates and K > 1:
        ids[:, -1] = ids[:, 0]  # a repeated expert in every row: two assignments each
    if out_of_range:
        junk = np.array([-1, E, E + 1, E + 1000, -(2**31)], dtype=np.int32)  # E + 1: below the kernels' BLOCK_E
        hit = rng.random((T, K)) < 0.2
        ids[hit] = rng.choice(junk, size=int(hit.sum()))
        if T * K >= len(junk):
            ids.flat[rng.choice(T * K, len(junk), replace=False)] = junk  # each kind at least once
    weights = rng.standard_normal((T, K)).astype(np.float32)
    return ids, weights


def run_sorting(rng, T, K, E, U, device, *, mask=None, M=None, m_on_device=False, moe_buf=None, **kinds):
    ids, weights = _random_assignments(rng, T, K, E, **kinds)
    out = poisoned_sorting_out(T, K, E, U, device)
    before = snapshot(out)
    buf_before = None if moe_buf is None else moe_buf.cpu().clone()
    num_local = torch.tensor([M], dtype=torch.int32, device=device) if m_on_device else M
    fused_moe.moe_sorting(torch.from_numpy(ids).to(device), torch.from_numpy(weights).to(device), E,
                          unit_size=U, expert_mask=None if mask is None else torch.from_numpy(mask).to(device),
                          num_local_tokens=num_local, moe_buf=moe_buf, out=out)
    report = oracles.check_sorting(out, ids, weights, E, unit_size=U, expert_mask=mask, num_local_tokens=M,
                                   before=before)
    if moe_buf is not None:
        report = report.merged(oracles.check_moe_buf(buf_before, moe_buf.cpu(), M if M is not None else T))
    return report


# (T, K, E, U): seed shapes, then padding and expert-count edges.
CASES = [
    (16, 8, 256, 32),  # DeepSeek-R1 decode
    (16, 4, 128, 32),  # GPT-OSS-120B decode
    (64, 8, 256, 32),
    (1, 1, 1, 1),  # U = 1: no padding at all
    (4, 1, 1, 16),  # every token on one expert
    (5, 3, 6, 4),  # the CK documentation shape
    (33, 2, 3, 7),  # E and U not powers of two
    (200, 8, 257, 16),  # several sort chunks, E = 2**8 + 1
    (3, 127, 127, 2),  # K = E = 127, the largest K
    (9, 5, 2048, 64),
    (7, 2, 5, 2),  # U = 2: one padding slot per block
    (100, 6, 64, 32),  # four tiles of 32 rows, each placing only its own
]


@pytest.mark.parametrize("T,K,E,U", CASES, ids=[f"T{t}-K{k}-E{e}-U{u}" for t, k, e, u in CASES])
def test_matches_oracle(T, K, E, U, device):
    seed = fresh_seed()
    report = run_sorting(np.random.default_rng(seed), T, K, E, U, device)
    assert report.ok, f"seed={seed}\n{report}"


@pytest.mark.parametrize("kind", ["out_of_range", "duplicates"])
def test_dropped_and_duplicate_ids(kind, device):
    seed = fresh_seed()
    report = run_sorting(np.random.default_rng(seed), 21, 4, 12, 4, device, **{kind: True})
    assert report.ok, f"seed={seed}\n{report}"


@pytest.mark.parametrize("mask_kind", ["all-on", "all-off", "sparse", "signed"])
def test_expert_mask(mask_kind, device):
    """Any nonzero mask entry is an expert on this rank, negative ones too."""
    seed = fresh_seed()
    rng = np.random.default_rng(seed)
    E = 40
    mask = {"all-on": np.ones(E), "all-off": np.zeros(E), "sparse": rng.random(E) < 0.3,
            "signed": rng.choice([-1, 0, 2], E)}[mask_kind]
    report = run_sorting(rng, 25, 6, E, 8, device, mask=mask.astype(np.int32))
    assert report.ok, f"seed={seed}\n{report}"


def test_strided_topk_tensors(device):
    """topk_ids column-major (a transposed copy) and topk_weights every other column of a
    wider tensor: each read at its own strides."""
    seed = fresh_seed()
    rng = np.random.default_rng(seed)
    T, K, E, U = 9, 3, 8, 4
    ids, w = _random_assignments(rng, T, K, E)
    wide = torch.from_numpy(rng.random((T, 2 * K), dtype=np.float32))
    wide[:, ::2] = torch.from_numpy(w)
    ids_t = torch.from_numpy(ids.T.copy()).to(device).t()
    out = poisoned_sorting_out(T, K, E, U, device)
    before = snapshot(out)
    fused_moe.moe_sorting(ids_t, wide.to(device)[:, ::2], E, unit_size=U, out=out)
    report = oracles.check_sorting(out, ids, w, E, unit_size=U, before=before)
    assert report.ok, f"seed={seed}\n{report}"


@pytest.mark.parametrize("M", [0, 1, 7, 30])
@pytest.mark.parametrize("on_device", [False, True], ids=["host-int", "device-tensor"])
def test_local_tokens_and_moe_buf(M, on_device, device):
    """Rows >= M are garbage that must be ignored; moe_buf rows [0, M) zeroed, the rest untouched."""
    seed = fresh_seed()
    rng = np.random.default_rng(seed)
    buf = random_moe_buf(rng, 30, (7,), torch.bfloat16, device)  # 14-byte rows: not a multiple of 16
    report = run_sorting(rng, 30, 3, 16, 4, device, M=M, m_on_device=on_device, moe_buf=buf, out_of_range=True)
    assert report.ok, f"seed={seed}\n{report}"


@pytest.mark.parametrize("dtype,row", [(torch.uint8, (3,)), (torch.float32, (5, 3)), (torch.int64, (2,)),
                                       (torch.bfloat16, (7168,))], ids=["u8x3", "f32x5x3", "i64x2", "bf16x7168"])
def test_moe_buf_row_sizes(dtype, row, device):
    seed = fresh_seed()
    rng = np.random.default_rng(seed)
    buf = random_moe_buf(rng, 6, row, dtype, device)
    report = run_sorting(rng, 6, 2, 8, 4, device, M=5, moe_buf=buf)
    assert report.ok, f"seed={seed}\n{report}"


def test_moe_buf_zeroed_by_several_programs(device):
    """The tiled sort's zeroing programs after its tiles each zero their own block of words."""
    seed = fresh_seed()
    rng = np.random.default_rng(seed)
    buf = random_moe_buf(rng, 128, (64,), torch.float32, device)
    report = run_sorting(rng, 128, 2, 8, 4, device, moe_buf=buf)
    assert report.ok, f"seed={seed}\n{report}"


def test_device_local_tokens_out_of_range_is_clamped(device):
    """A bad device-side M is clamped to [0, T]: nothing is read or written out of bounds."""
    T, K, E, U = 5, 2, 4, 2
    ids = torch.zeros((T, K), dtype=torch.int32, device=device)
    out = poisoned_sorting_out(T, K, E, U, device)
    for bad, clamped in [(-3, 0), (1000, T)]:
        fused_moe.moe_sorting(ids, torch.ones((T, K), device=device), E, unit_size=U, out=out,
                              num_local_tokens=torch.tensor([bad], dtype=torch.int32, device=device))
        assert out.num_valid_ids.tolist() == [-(-clamped * K // U) * U, clamped]


SINGLE = fused_moe.DISPATCH_THRESHOLDS["sort_single_program"]


@pytest.mark.parametrize("T", [SINGLE, SINGLE + 1], ids=["single-program", "tiled"])
def test_int64_ids_match_int32(T, device):
    """int64 ids (torch.topk's dtype; a strided view here) sort exactly like the same ids as
    int32; an int64 id outside int32 is dropped, never wrapped (2**32 + e would wrap to e)."""
    seed = fresh_seed()
    rng = np.random.default_rng(seed)
    K, E, U = 3, 12, 4
    ids, weights = _random_assignments(rng, T, K, E, out_of_range=True)
    ids64 = ids.astype(np.int64)
    junk = (ids < 0) | (ids >= E)
    ids64[junk] = np.where(rng.random(int(junk.sum())) < 0.5, 2**32 + 1, -(2**40))
    wide = torch.zeros((T, K + 3), dtype=torch.int64)
    wide[:, 1:K + 1] = torch.from_numpy(ids64)
    w = torch.from_numpy(weights).to(device)
    outs = []
    for topk_ids in (torch.from_numpy(ids).to(device), wide.to(device)[:, 1:K + 1]):
        out = poisoned_sorting_out(T, K, E, U, device)
        before = snapshot(out)
        fused_moe.moe_sorting(topk_ids, w, E, unit_size=U, num_local_tokens=T - 1, out=out)
        report = oracles.check_sorting(out, ids64, weights, E, unit_size=U, num_local_tokens=T - 1, before=before)
        assert report.ok, f"seed={seed} ids {topk_ids.dtype}\n{report}"
        outs.append(out)
    for name, a, b in zip(fused_moe.SortingResult._fields, *outs):
        assert torch.equal(a.view(torch.int32), b.view(torch.int32)), f"seed={seed}: {name} differs int32/int64"


#: Past 2**24 flat assignments a float32 quotient f / K rounds (n*K - 1) / K up to n: a token
#: index computed in floating point reads the next row (tools/mutation/survivors.toml, the
#: two `t = f // K` mutants). T*K just past 2**24 with the CK layout's largest T class.
FLAT_PAST_2_24 = (2**22 + 6, 4)


@pytest.mark.gpu
@pytest.mark.slow
@pytest.mark.skipif(not torch.cuda.is_available(), reason="2**24 assignments: over an hour under the interpreter")
def test_flat_indices_past_2_24(device):
    T, K = FLAT_PAST_2_24
    assert T * K > 2**24 and T < 2**24  # past float32's exact integers; still a CK token index
    seed = fresh_seed()
    report = run_sorting(np.random.default_rng(seed), T, K, 256, 32, device, distinct=False)
    assert report.ok, f"seed={seed}\n{report}"


def test_numpy_integer_arguments(device):
    """NumPy integers stand for Python ints (the same plan, the same bits)."""
    seed = fresh_seed()
    ids, weights = _random_assignments(np.random.default_rng(seed), 9, 2, 8)
    ids, weights = torch.from_numpy(ids).to(device), torch.from_numpy(weights).to(device)
    ref = fused_moe.moe_sorting(ids, weights, 8, unit_size=4, num_local_tokens=5)
    got = fused_moe.moe_sorting(ids, weights, np.int64(8), unit_size=np.int32(4), num_local_tokens=np.uint8(5))
    n = int(ref.num_valid_ids[0])
    for a, b in ((ref.sorted_token_ids[:n], got.sorted_token_ids[:n]), (ref.num_valid_ids, got.num_valid_ids),
                 (ref.sorted_expert_ids[: n // 4], got.sorted_expert_ids[: n // 4])):
        assert torch.equal(a, b), f"seed={seed}"


# --------------------------------------------------------------------------- layout="vllm"


def run_vllm_sorting(rng, T, K, E, U, device, *, extra=0, mask=None, M=None, m_on_device=False, moe_buf=None,
                     ids_dtype=np.int32, **kinds):
    """moe_sorting(layout="vllm") into views of canaried buffers (``extra`` elements longer than
    the capacity), against vllm_from_ck(oracle); moe_buf as in the CK layout."""
    ids, weights = _random_assignments(rng, T, K, E, **kinds)
    ids = ids.astype(ids_dtype)
    views, full = canaried_vllm_sorting_out(T, K, E, U, device, extra)
    buf_before = None if moe_buf is None else moe_buf.cpu().clone()
    num_local = torch.tensor([M], dtype=torch.int32, device=device) if m_on_device else M
    got = fused_moe.moe_sorting(torch.from_numpy(ids).to(device), torch.from_numpy(weights).to(device), E,
                                unit_size=U, expert_mask=None if mask is None else torch.from_numpy(mask).to(device),
                                num_local_tokens=num_local, moe_buf=moe_buf, layout="vllm", out=views)
    assert isinstance(got, fused_moe.VllmSortingResult) and all(a is b for a, b in zip(got, views))
    report = check_vllm_sorting(views, full, expected_vllm(ids, weights, E, U, expert_mask=mask, num_local_tokens=M),
                                T, K)
    if moe_buf is not None:
        report = report.merged(oracles.check_moe_buf(buf_before, moe_buf.cpu(), M if M is not None else T))
    return report


# CASES plus the sorting thresholds: one program up to sort_single_program rows (one chunk up
# to sort_chunk_assignments, then the chunk loops), the tiled sort above.
CHUNK = DISPATCH_THRESHOLDS_ASSIGNMENTS["sort_chunk_assignments"]
VLLM_CASES = CASES + [
    (CHUNK // 8, 8, 64, 16),  # one program, exactly one chunk
    (CHUNK // 8 + 1, 8, 64, 16),  # one program, two chunks
    (SINGLE, 3, 40, 8),  # the last single-program T
    (SINGLE + 1, 3, 40, 8),  # the first tiled T
    (0, 4, 8, 4),  # no tokens: empty buffers, num_tokens_post_pad = [0]
]


@pytest.mark.parametrize("extra", [0, 1029], ids=["capacity", "longer-out"])
@pytest.mark.parametrize("T,K,E,U", VLLM_CASES, ids=[f"T{t}-K{k}-E{e}-U{u}" for t, k, e, u in VLLM_CASES])
def test_vllm_layout_matches_oracle(T, K, E, U, extra, device):
    seed = fresh_seed()
    rng = np.random.default_rng(seed)
    report = run_vllm_sorting(rng, T, K, E, U, device, extra=extra, ids_dtype=(np.int32, np.int64)[seed % 2],
                              out_of_range=T % 2 == 1)
    assert report.ok, f"seed={seed}\n{report}"


@pytest.mark.parametrize("M", [0, 7, 30])
@pytest.mark.parametrize("T", [30, SINGLE + 6], ids=["single-program", "tiled"])
@pytest.mark.parametrize("on_device", [False, True], ids=["host-int", "device-tensor"])
def test_vllm_layout_mask_local_tokens_moe_buf(T, M, on_device, device):
    """Expert mask (local ids), M rows (pad is still T*K), moe_buf zeroing: as in the CK layout."""
    seed = fresh_seed()
    rng = np.random.default_rng(seed)
    E = 16
    mask = (rng.random(E) < 0.6).astype(np.int32)
    buf = random_moe_buf(rng, T, (7,), torch.bfloat16, device)
    report = run_vllm_sorting(rng, T, 3, E, 4, device, extra=5, mask=mask, M=M, m_on_device=on_device, moe_buf=buf,
                              out_of_range=True)
    assert report.ok, f"seed={seed}\n{report}"


@pytest.mark.parametrize("T", [9, SINGLE + 1], ids=["single-program", "tiled"])
def test_vllm_layout_default_allocation(T, device):
    """Without out=: capacity-sized buffers, every element written."""
    seed = fresh_seed()
    rng = np.random.default_rng(seed)
    K, E, U = 2, 8, 4
    ids, weights = _random_assignments(rng, T, K, E)
    got = fused_moe.moe_sorting(torch.from_numpy(ids).to(device), torch.from_numpy(weights).to(device), E,
                                unit_size=U, layout="vllm")
    slots, blocks = fused_moe.capacity(T, K, E, U)
    assert isinstance(got, fused_moe.VllmSortingResult)
    assert [x.numel() for x in got] == [slots, blocks, 1] and all(x.dtype == torch.int32 for x in got)
    report = check_vllm_sorting(got, None, expected_vllm(ids, weights, E, U), T, K)
    assert report.ok, f"seed={seed}\n{report}"


def test_vllm_layout_is_the_ck_layout_converted(device):
    """The two layouts of one call agree: vllm == vllm_from_ck(the kernel's own CK output)."""
    seed = fresh_seed()
    rng = np.random.default_rng(seed)
    T, K, E, U = 37, 4, 24, 8
    ids, weights = (torch.from_numpy(a).to(device) for a in _random_assignments(rng, T, K, E, out_of_range=True))
    ck = fused_moe.moe_sorting(ids, weights, E, unit_size=U, num_local_tokens=30)
    P = int(ck.num_valid_ids[0])
    prefix = oracles.SortingResult(ck.sorted_token_ids[:P].cpu().numpy(), ck.sorted_weights[:P].cpu().numpy(),
                                   ck.sorted_expert_ids[: P // U].cpu().numpy(), ck.num_valid_ids.cpu().numpy())
    vllm = fused_moe.moe_sorting(ids, weights, E, unit_size=U, num_local_tokens=30, layout="vllm")
    report = check_vllm_sorting(vllm, None, vllm_from_ck(prefix, T, K), T, K)
    assert report.ok, f"seed={seed}\n{report}"


def _plant_tail_unwritten(full, P, n):
    full[0][n - 1] = 0x5A5A5A5A  # the tail fill stopped one slot short


def _plant_past_end(full, P, n):
    full[0][n] = -1  # the fill ran past the view


def _plant_block_not_minus_one(full, P, n):
    full[1][-8] = 0  # the last expert_ids element of the view is not -1


def _plant_pad_is_ck(full, P, n):
    full[0][P] = (4 << 24) | 20  # CK's sentinel instead of T * K


def _plant_post_pad(full, P, n):
    full[2][0] += 4


@pytest.mark.parametrize("plant", [_plant_tail_unwritten, _plant_past_end, _plant_block_not_minus_one,
                                   _plant_pad_is_ck, _plant_post_pad], ids=lambda f: f.__name__[7:])
def test_vllm_checker_rejects_planted_bugs(plant, device):
    """check_vllm_sorting passes the real output and fails each planted defect."""
    seed = fresh_seed()
    rng = np.random.default_rng(seed)
    T, K, E, U = 20, 4, 16, 4
    ids, weights = _random_assignments(rng, T, K, E)
    views, full = canaried_vllm_sorting_out(T, K, E, U, device, extra=3)
    fused_moe.moe_sorting(torch.from_numpy(ids).to(device), torch.from_numpy(weights).to(device), E, unit_size=U,
                          layout="vllm", out=views)
    expected = expected_vllm(ids, weights, E, U)
    assert check_vllm_sorting(views, full, expected, T, K).ok
    bad = tuple(x.cpu().clone() for x in full)
    P = int(expected.num_tokens_post_pad[0])
    assert P < views.sorted_token_ids.numel()
    plant(bad, P, views.sorted_token_ids.numel())
    bad_views = tuple(b[: v.numel()] for b, v in zip(bad, views))
    assert not check_vllm_sorting(bad_views, bad, expected, T, K).ok


def _sorting_call(device, **bad):
    kwargs = dict(topk_ids=torch.zeros((4, 2), dtype=torch.int32), topk_weights=torch.zeros((4, 2)),
                  num_experts=8, unit_size=4) | bad
    kwargs = {k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in kwargs.items()}
    return fused_moe.moe_sorting(kwargs.pop("topk_ids"), kwargs.pop("topk_weights"), kwargs.pop("num_experts"),
                                 **kwargs)


@pytest.mark.parametrize("bad,error,match", [
    (dict(num_experts=0), ValueError, "num_experts"),
    (dict(unit_size=0), ValueError, "unit_size"),
    (dict(topk_ids=torch.zeros((4, 2))), TypeError, "topk_ids"),
    (dict(topk_weights=torch.zeros((4, 3))), ValueError, "topk_weights"),
    (dict(topk_ids=torch.zeros((4, 128), dtype=torch.int32), topk_weights=torch.zeros((4, 128))),
     ValueError, "topk"),
    (dict(expert_mask=torch.ones(7, dtype=torch.int32)), ValueError, "expert_mask"),
    (dict(expert_mask=torch.ones(8)), TypeError, "expert_mask"),
    (dict(num_local_tokens=5), ValueError, "num_local_tokens"),
    (dict(num_local_tokens=-1), ValueError, "num_local_tokens"),
    (dict(num_local_tokens=torch.tensor([1])), TypeError, "num_local_tokens"),
    (dict(moe_buf=torch.zeros(3, 4)), ValueError, "moe_buf"),
    (dict(moe_buf=torch.zeros(4, 4).t()), ValueError, "moe_buf"),
    (dict(out=(torch.zeros(1),)), TypeError, "out"),
    (dict(topk_ids=torch.zeros((4, 2), dtype=torch.int16)), TypeError, "topk_ids"),
    (dict(num_experts=True), TypeError, "num_experts must be an int, got bool"),
    (dict(num_experts=8.0), TypeError, "num_experts must be an int"),
    (dict(unit_size=np.bool_(True)), TypeError, "unit_size must be an int"),
    (dict(num_local_tokens=True), TypeError, "num_local_tokens must be an int"),
    (dict(layout="VLLM"), ValueError, "layout must be one of 'ck', 'vllm'"),
    (dict(layout=None), ValueError, "layout"),
    (dict(layout="vllm", out=fused_moe.allocate_sorting_outputs(4, 2, 8, 4, "cpu")), TypeError,
     "VllmSortingResult"),
    (dict(out=fused_moe.allocate_sorting_outputs(4, 2, 8, 4, "cpu", layout="vllm")), TypeError, "SortingResult"),
], ids=["e0", "u0", "float-ids", "shape-mismatch", "k128", "mask-len", "mask-float", "m-gt-t", "m-neg",
        "m-int64", "buf-rows", "buf-strided", "out-tuple", "int16-ids", "e-bool", "e-float", "u-npbool", "m-bool",
        "layout-case", "layout-none", "vllm-with-ck-out", "ck-with-vllm-out"])
def test_rejects_bad_arguments(bad, error, match, device):
    with pytest.raises(error, match=match):
        _sorting_call(device, **bad)


@pytest.mark.parametrize("layout,field", [("ck", "sorted_token_ids"), ("vllm", "sorted_token_ids"),
                                          ("vllm", "expert_ids"), ("vllm", "num_tokens_post_pad")])
def test_rejects_small_out_buffer(layout, field, device):
    out = fused_moe.allocate_sorting_outputs(4, 2, 8, 4, device, layout=layout)
    short = out._replace(**{field: getattr(out, field)[:-1]})
    with pytest.raises(ValueError, match=field):
        _sorting_call(device, out=short, layout=layout)
