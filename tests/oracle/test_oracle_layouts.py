"""The vLLM layout (oracles/layouts.py) and the CK layout convert into each other exactly."""
import numpy as np
from hypothesis import given, settings

import oracles
from fuzz.strategies import cases_for


@settings(max_examples=200)
@given(case=cases_for("sorting"))
def test_layout_conversion_round_trips(case):
    T, K = case.topk_ids.shape
    o = case.options
    M = T if o.num_local_tokens is None else o.num_local_tokens
    ck = oracles.moe_sorting(case.topk_ids, case.topk_weights, case.num_experts, unit_size=o.unit_size,
                             expert_mask=o.expert_mask, num_local_tokens=M)
    vllm = oracles.vllm_from_ck(ck, T, K)
    assert int(vllm.num_tokens_post_pad[0]) == int(ck.num_valid_ids[0])
    pads = vllm.sorted_token_ids == T * K
    assert np.array_equal(pads, ck.sorted_token_ids == oracles.sentinel(K, M))
    back = oracles.ck_from_vllm(vllm, case.topk_weights, T, K, M, o.unit_size)
    for name, a, b in zip(ck._fields, ck, back):
        assert a.dtype == b.dtype and a.tobytes() == b.tobytes(), name


def test_vllm_capacity_follows_vllm_small_batch_rule():
    # T*K < E: vLLM allocates at most T*K*U slots
    assert oracles.vllm_capacity(1, 2, 8, 4) == (8, 2)
    assert oracles.vllm_capacity(4, 2, 8, 4) == (4 * 2 + 8 * 3, 8)
