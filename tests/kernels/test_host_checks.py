"""Host-side checks pinned at their edges (fused_moe/buffers.py, validation.py, gating.py):
each test here kills a mutant the kernel tests let through (tools/mutation/, tox -e mutation)."""
import pytest
import torch

import fused_moe
from fused_moe import buffers


def test_capacity_limit_is_int32_max():
    """2**31 - 1 sorted slots are addressable with int32 offsets, 2**31 are not."""
    assert buffers.check_capacity(2**31 - 1, 1, 1, 1) == (2**31 - 1, 2**31 - 1)
    with pytest.raises(ValueError, match="int32"):
        buffers.check_capacity(2**31, 1, 1, 1)


def test_out_must_be_contiguous_even_when_long_enough(device):
    out = list(fused_moe.allocate_sorting_outputs(4, 2, 8, 4, device))
    out[0] = torch.empty(2 * out[0].numel(), dtype=torch.int32, device=device)[::2]
    with pytest.raises(ValueError, match="sorted_token_ids must be contiguous"):
        buffers.check_sorting_out(tuple(out), 4, 2, 8, 4, torch.device(device))


def test_vllm_tail_lengths_are_each_buffers_own():
    """out= buffers of different lengths: each kernel tail ends at its own buffer's end."""
    out = (torch.empty(40, dtype=torch.int32), torch.empty(7, dtype=torch.int32), torch.empty(1, dtype=torch.int32))
    assert buffers.tail_lengths(out, 4, 2, 8, 4, "vllm") == dict(n_sorted=40, n_blocks=7)
    assert buffers.tail_lengths(None, 4, 2, 8, 4, "vllm") == dict(zip(("n_sorted", "n_blocks"),
                                                                       fused_moe.capacity(4, 2, 8, 4)))
    assert buffers.tail_lengths(out, 4, 2, 8, 4, "ck") == dict(n_sorted=0, n_blocks=0)


def test_arrival_counter_off_cuda_is_one_cached_zero():
    """A non-CUDA device never asks CUDA for a stream (meta stands in for any such device)."""
    for device in (torch.device("cpu"), torch.device("meta")):
        counter = buffers.arrival_counter(device)
        assert counter.shape == (1,) and counter.dtype == torch.int32 and counter.device == device
        assert buffers.arrival_counter(device) is counter
    assert buffers.arrival_counter(torch.device("cpu")).item() == 0


def test_single_expert_gating(device):
    out = fused_moe.topk_gating_softmax(torch.randn(3, 1, device=device), 1)
    assert out.topk_ids.tolist() == [[0]] * 3 and out.topk_weights.tolist() == [[1.0]] * 3


def test_sorting_out_needs_match_the_layout(device):
    """Each layout's out= is judged by its own fields: an exact-capacity vLLM out is taken, a CK
    out without both num_valid_ids words and a vLLM one without num_tokens_post_pad are not."""
    vllm = fused_moe.allocate_sorting_outputs(4, 2, 8, 4, device, layout="vllm")
    dev = vllm.sorted_token_ids.device  # "cuda:0", as the calls pass a tensor's device
    assert buffers.check_sorting_out(vllm, 4, 2, 8, 4, dev, "vllm") == vllm
    ck = fused_moe.allocate_sorting_outputs(4, 2, 8, 4, device)
    with pytest.raises(ValueError, match="num_valid_ids"):
        buffers.check_sorting_out((*ck[:3], ck[3][:1]), 4, 2, 8, 4, dev)
    with pytest.raises(ValueError, match="num_tokens_post_pad"):
        buffers.check_sorting_out((*vllm[:2], vllm[2][:0]), 4, 2, 8, 4, dev, "vllm")


def test_plan_key_holds_the_alignment_not_the_address(device):
    """Two buffers at 16-byte-aligned addresses share a plan (no plan per allocation); one 2 bytes
    past the same boundary does not (Triton specializes on alignment)."""
    from fused_moe.plans import plan_key
    flat = torch.zeros(64, dtype=torch.float16, device=device)
    a, b, shifted = flat[0:8], flat[16:24], flat[1:9]
    assert a.data_ptr() % 16 == 0 and b.data_ptr() % 16 == 0 and shifted.data_ptr() - a.data_ptr() == 2
    assert plan_key(a, 2) == plan_key(b, 2)
    assert plan_key(a, 2) != plan_key(shifted, 2)


def test_clear_plans_empties_every_cache(device):
    import importlib
    route_plans = importlib.import_module("fused_moe.route")._plans
    fused_moe.topk_gating_softmax(torch.zeros(2, 4, device=device), 1)
    fused_moe.route(torch.zeros(2, 4, device=device), 1)
    assert route_plans.plans
    fused_moe.plans.clear_plans()
    assert all(not cache.plans for cache in fused_moe.plans._CACHES)


@pytest.mark.parametrize("flag", [0, 1, 0.0, "yes", None])
def test_flags_are_bools_not_truthy_values(flag):
    from fused_moe.validation import as_flag
    with pytest.raises(TypeError, match="renormalize must be a bool"):
        as_flag("renormalize", flag)


def test_moe_buf_word_is_the_widest_that_divides_row_and_address(device):
    """(word bytes, words per row) as moe_buf_arg documents it, for aligned and offset buffers."""
    from fused_moe.validation import moe_buf_arg
    base = torch.zeros(256, dtype=torch.uint8, device=device)
    assert base.data_ptr() % 8 == 0
    ref = base

    def rows(offset, T, row_bytes):
        return base[offset: offset + T * row_bytes].view(T, row_bytes)

    assert moe_buf_arg(rows(0, 4, 16), 4, ref) == (8, 2)
    assert moe_buf_arg(rows(0, 4, 12), 4, ref) == (4, 3)
    assert moe_buf_arg(rows(0, 4, 6), 4, ref) == (2, 3)
    assert moe_buf_arg(rows(0, 4, 3), 4, ref) == (1, 3)
    assert moe_buf_arg(rows(4, 4, 16), 4, ref) == (4, 4)  # the address, not the row, limits it
    assert moe_buf_arg(rows(1, 4, 16), 4, ref) == (1, 16)
    assert moe_buf_arg(rows(0, 6, 16), 4, ref) == (8, 2)  # more rows than tokens is fine
    assert moe_buf_arg(base[:8].view(torch.int16), 4, ref) == (2, 1)  # 1-D: one element per token
    with pytest.raises(ValueError, match="at least T=4 rows, got 3$"):
        moe_buf_arg(rows(0, 3, 16), 4, ref)
    with pytest.raises(ValueError, match="first dimension is tokens"):
        moe_buf_arg(torch.tensor(1.0, device=device), 1, ref)


def test_sorting_takes_the_largest_packable_topk(device):
    """K = 127 fills the 7-bit slot field: taken (one token to each of 127 experts)."""
    K = 127
    ids = torch.arange(K, dtype=torch.int32, device=device).view(1, K)
    out = fused_moe.moe_sorting(ids, torch.ones(1, K, device=device), K, unit_size=4)
    assert out.num_valid_ids.tolist() == [K * 4, 1]


@pytest.mark.parametrize("value", [None, "0", "true"])
def test_cpu_tensors_need_the_interpreter(value, monkeypatch):
    """Only TRITON_INTERPRET=1 lets a CPU tensor through (it is read per call, not at import)."""
    from fused_moe.validation import check_tensor
    monkeypatch.setenv("TRITON_INTERPRET", "1")
    check_tensor("logits", torch.zeros(2))
    if value is None:
        monkeypatch.delenv("TRITON_INTERPRET")
    else:
        monkeypatch.setenv("TRITON_INTERPRET", value)
    with pytest.raises(ValueError, match="logits is on the CPU"):
        check_tensor("logits", torch.zeros(2))


def test_plan_cache_keeps_plans_up_to_its_bound(device, monkeypatch):
    """One plan per new shape until MAX_PLANS, then the cache starts over (no plan thrown away early)."""
    import importlib
    monkeypatch.setattr(fused_moe.plans, "MAX_PLANS", 3)
    cache = importlib.import_module("fused_moe.gating")._plans
    fused_moe.plans.clear_plans()
    sizes = []
    for T in range(1, 6):
        fused_moe.topk_gating_softmax(torch.zeros(T, 4, device=device), 1)
        sizes.append(len(cache.plans))
    assert sizes == [1, 2, 3, 1, 2]


class _Kernel:
    """The two attributes KernelLaunch reads of a JITFunction before any launch."""
    arg_names = ["x_ptr", "n"]
    __name__ = "stand_in_kernel"


@pytest.mark.parametrize("values", [(), ("x", "y")], ids=["too-few", "too-many"])
def test_kernel_launch_counts_per_call_arguments(values):
    from fused_moe.launcher import KernelLaunch
    launch = KernelLaunch(_Kernel(), 0, 4, ("x_ptr",), {"n": 3})
    with pytest.raises(TypeError, match="1 per-call arguments expected, got"):
        launch(*values)


def test_launch_hooks_count_when_installed():
    """A plain callable hook, or a HookChain with calls, sends launches through Triton."""
    from fused_moe.launcher import _hooked

    class Chain:
        def __init__(self, calls):
            self.calls = calls

    assert _hooked(lambda *args: None) and _hooked(Chain([print]))
    assert not _hooked(None) and not _hooked(Chain([]))


@pytest.mark.parametrize("field,bad", [
    ("topk_weights", lambda x: x.int()),  # wrong dtype
    ("topk_weights", lambda x: torch.zeros(x.shape[0], x.shape[1] + 1, device=x.device)),  # wider
    ("topk_ids", lambda x: torch.zeros(x.shape[1], x.shape[0], dtype=x.dtype, device=x.device).t()),  # strided
])
def test_route_out_gating_buffers_are_checked(field, bad, device):
    out = fused_moe.allocate_route_outputs(4, 2, 8, 4, device)
    out = out._replace(**{field: bad(getattr(out, field))})
    with pytest.raises(ValueError, match=f"out.{field} must be a contiguous"):
        buffers.check_route_out(out, 4, 2, 8, 4, out.topk_weights.device)


def test_sorting_out_dtypes_are_checked(device):
    out = fused_moe.allocate_sorting_outputs(4, 2, 8, 4, device)
    out = out._replace(sorted_weights=out.sorted_weights.view(torch.int32))
    with pytest.raises(TypeError, match="out.sorted_weights must be a torch.float32 tensor"):
        buffers.check_sorting_out(out, 4, 2, 8, 4, out.sorted_token_ids.device)


def test_local_tokens_tensor_has_exactly_one_int32(device):
    from fused_moe.validation import local_tokens_arg
    ref = torch.zeros(1, device=device)
    m = torch.tensor([3], dtype=torch.int32, device=device)
    assert local_tokens_arg(m, 5, ref) == (m, 0)
    assert local_tokens_arg(None, 5, ref) == (None, 5) and local_tokens_arg(4, 5, ref) == (None, 4)
    for bad in (m[:0], torch.tensor([3, 4], dtype=torch.int32, device=device), m.long()):
        with pytest.raises(TypeError, match="exactly one element"):
            local_tokens_arg(bad, 5, ref)


def test_check_int_names_the_range():
    from fused_moe.validation import check_int
    with pytest.raises(ValueError, match=r"^unit_size must be >= 1, got 0$"):
        check_int("unit_size", 0, 1)
    with pytest.raises(ValueError, match=r"^num_local_tokens must be >= 0 and <= 5, got 6$"):
        check_int("num_local_tokens", 6, 0, 5)


def test_expert_mask_goes_to_the_kernel_as_bytes_or_as_is(device):
    from fused_moe.validation import kernel_pointers
    dummy = torch.zeros(1, device=device)
    bools = torch.tensor([True, False, True], device=device)
    ints = torch.tensor([1, 0, 1], dtype=torch.int32, device=device)
    mask, _, _ = kernel_pointers(bools, None, None, dummy)
    assert mask.dtype == torch.uint8 and mask.tolist() == [1, 0, 1]
    assert kernel_pointers(ints, None, None, dummy)[0] is ints
    assert kernel_pointers(None, None, None, dummy)[0] is dummy
    m = torch.tensor([2], dtype=torch.int32, device=device)
    assert kernel_pointers(None, m, None, dummy)[1] is m  # the kernel reads M on the device
    assert kernel_pointers(None, 2, None, dummy)[1] is dummy and kernel_pointers(None, None, None, dummy)[1] is dummy


def test_token_limit_is_24_bits():
    from fused_moe.validation import check_tokens
    check_tokens(2**24 - 1)
    for T in (2**24, 2**24 + 1):
        with pytest.raises(ValueError, match="2\\*\\*24"):
            check_tokens(T)


def test_kernel_launch_refuses_unknown_or_missing_alone():
    from fused_moe.launcher import KernelLaunch
    with pytest.raises(TypeError, match=r"unknown arguments \['y'\], missing \[\]"):
        KernelLaunch(_Kernel(), 1, 4, ("x_ptr", "y"), {"n": 3})
    with pytest.raises(TypeError, match=r"unknown arguments \[\], missing \['n'\]"):
        KernelLaunch(_Kernel(), 1, 4, ("x_ptr",), {})


def test_gating_arguments_after_topk_are_keyword_only(device):
    with pytest.raises(TypeError):
        fused_moe.topk_gating_softmax(torch.zeros(2, 4, device=device), 1, False)


def test_gating_names_an_empty_expert_axis(device):
    with pytest.raises(ValueError, match=r"num_experts \(logits.shape\[1\]\) must be >= 1, got 0"):
        fused_moe.topk_gating_softmax(torch.zeros(2, 0, device=device), 1)


def test_only_cpu_tensors_are_refused_without_the_interpreter(monkeypatch):
    from fused_moe.validation import check_tensor
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)  # unset on a GPU lane
    check_tensor("logits", torch.zeros(2, device="meta"))  # another device: the caller's business


@pytest.mark.parametrize("shape", [(8,), (2, 4, 4)], ids=["1d", "3d"])
def test_logits_must_be_2d(shape, device):
    with pytest.raises(ValueError, match="logits must be 2-D"):
        fused_moe.topk_gating_softmax(torch.zeros(shape, device=device), 1)


@pytest.mark.parametrize("n", [7, 9])
def test_expert_mask_needs_exactly_num_experts(n, device):
    from fused_moe.validation import expert_mask_arg
    ref = torch.zeros(1, device=device)
    with pytest.raises(ValueError, match="num_experts=8 entries"):
        expert_mask_arg(torch.ones(n, dtype=torch.int32, device=device), 8, ref)


def test_vllm_layout_sorts_like_ck(device):
    """The vLLM layout's padded total and block experts are the CK layout's."""
    ids = torch.tensor([[0, 3], [3, 1], [2, 0]], dtype=torch.int32, device=device)
    w = torch.ones(3, 2, device=device)
    ck = fused_moe.moe_sorting(ids, w, 4, unit_size=4)
    vllm = fused_moe.moe_sorting(ids, w, 4, unit_size=4, layout="vllm")
    P = ck.num_valid_ids[0].item()
    assert vllm.num_tokens_post_pad.tolist() == [P] == [16]
    assert vllm.expert_ids[: P // 4].tolist() == ck.sorted_expert_ids[: P // 4].tolist()


def test_empty_batch_launches_nothing(device):
    out = fused_moe.topk_gating_softmax(torch.zeros(0, 4, device=device), 2)
    assert out.topk_ids.shape == (0, 2)
    buf = torch.ones(0, 3, device=device)
    sorted_ = fused_moe.moe_sorting(torch.zeros(0, 2, dtype=torch.int32, device=device),
                                    torch.zeros(0, 2, device=device), 4, unit_size=4, moe_buf=buf)
    assert sorted_.num_valid_ids.tolist() == [0, 0]


@pytest.mark.parametrize("layout,sizes", [("ck", lambda s, b: [s, s, b, 2]), ("vllm", lambda s, b: [s, b, 1])])
def test_allocated_outputs_are_capacity_sized(layout, sizes, device):
    slots, blocks = fused_moe.capacity(5, 3, 8, 4)
    out = fused_moe.allocate_route_outputs(5, 3, 8, 4, device, layout=layout)
    assert [tuple(x.shape) for x in out[:2]] == [(5, 3), (5, 3)]
    assert [x.numel() for x in out[2:]] == sizes(slots, blocks)
    assert [x.dtype for x in out[:2]] == [torch.float32, torch.int32]


def test_plan_key_is_none_for_an_undescribable_tensor():
    """A sparse tensor has no strides: no key (the validating path takes the call), no exception."""
    from fused_moe.plans import plan_key
    assert plan_key(torch.zeros(2, 2).to_sparse(), 1) is None
    assert plan_key(torch.zeros(2, 2), 1) is not None


def test_route_out_needs_every_buffer(device):
    out = fused_moe.allocate_route_outputs(4, 2, 8, 4, device)
    with pytest.raises(TypeError, match="out must be a RouteResult"):
        buffers.check_route_out(tuple(out[:5]), 4, 2, 8, 4, torch.device(device))


def test_topk_limit_is_inclusive():
    """K = 127 fits the 7-bit slot field of route's sorted ids; 128 does not."""
    from fused_moe.validation import MAX_TOPK_SORTED, check_topk
    check_topk(127, 200, MAX_TOPK_SORTED)
    with pytest.raises(ValueError, match="packed in 7 bits"):
        check_topk(128, 200, MAX_TOPK_SORTED)


def test_sorting_and_route_arguments_after_the_tensors_are_keyword_only(device):
    ids, w = torch.zeros(2, 1, dtype=torch.int32, device=device), torch.ones(2, 1, device=device)
    with pytest.raises(TypeError):
        fused_moe.moe_sorting(ids, w, 4, 4)
    with pytest.raises(TypeError):
        fused_moe.route(torch.zeros(2, 4, device=device), 1, 4)


def test_default_unit_size_is_32(device):
    logits = torch.arange(12.0, device=device).reshape(3, 4)
    default, explicit = fused_moe.route(logits, 2), fused_moe.route(logits, 2, unit_size=32)
    assert default.num_valid_ids.tolist() == explicit.num_valid_ids.tolist() == [64, 3]
    assert default.sorted_token_ids.numel() == fused_moe.capacity(3, 2, 4, 32)[0]
    sorted_ = fused_moe.moe_sorting(default.topk_ids, default.topk_weights, 4)
    assert sorted_.num_valid_ids.tolist() == [64, 3] and sorted_.sorted_expert_ids.numel() == explicit.sorted_expert_ids.numel()


def test_sorting_takes_one_expert_one_slot_unit_one(device):
    out = fused_moe.moe_sorting(torch.zeros(3, 1, dtype=torch.int32, device=device), torch.ones(3, 1, device=device),
                                1, unit_size=1)
    assert out.num_valid_ids.tolist()[0] == 3 and out.sorted_expert_ids[:3].tolist() == [0, 0, 0]


def test_sorting_refuses_no_slot_and_narrower_weights(device):
    with pytest.raises(ValueError, match=r"topk \(topk_ids.shape\[1\]\) must be >= 1"):
        fused_moe.moe_sorting(torch.zeros(2, 0, dtype=torch.int32, device=device), torch.zeros(2, 0, device=device), 4)
    with pytest.raises(ValueError, match="shape of topk_ids"):
        fused_moe.moe_sorting(torch.zeros(2, 3, dtype=torch.int32, device=device), torch.zeros(2, 2, device=device), 4)
