"""Quality of the fuzzers, measured on the planted-bug corpus (``fuzz/planted.py``).

For every planted bug and every property that must find it: a hunt with the SAME property
the kernel tests run (``fuzz.properties.hunt``, the CI budget ``HUNT_EXAMPLES``) finds it,
fails with the planted SYMPTOM (``TargetFailure.kind``, the first kind of difference the
checkers report), and shrinks to the case pinned below -- Hypothesis's own ``quality/``
suite style: "finds this bug and shrinks it to this". Where the shrinker does not reach
the true minimum the pin says ``minimal=False`` and the comment above it names the minimum:
a gap in ``fuzz/strategies.py`` to close (or a shrink the strategies cannot express).
For every planted target a CONTROL -- the same code with its knob off -- passes
``CONTROL_EXAMPLES`` examples, so a bug found is the bug planted, not the harness.

Determinism: a hunt pins its seed (``fuzz.properties.HUNT_SEED``) and uses no example
database, so these tests replay the same examples whatever Hypothesis profile
``MOE_FUZZ_PROFILE`` loads. Under ``derandomize`` alone (the ci profile) they would be
stable in CI but not under dev, where ``sorting_global_block_ids`` once shrank to K=5;
``test_hunts_do_not_depend_on_the_loaded_profile`` holds that line.
"""
import os
import subprocess
import sys
from typing import NamedTuple

import numpy as np
import pytest
from quality_pins import INF, NAN, NEG_NAN, mismatches

from fuzz import bundles, planted, repro, targets
from fuzz import properties as fp
from fuzz import settings as fuzz_settings

pytestmark = [pytest.mark.quality, pytest.mark.slow]  # tox -e slow: the fast tier stays under 5 min

CASES = [(p.name, prop) for p in planted.PLANTED for prop in p.properties]
IDS = [f"{name}-{prop}" for name, prop in CASES]
#: Examples a control (knob off) must pass: half the hunt budget, enough to draw every regime
#: the bug needed (the slowest bug is found after 132 examples; its control sees 100 too).
CONTROL_EXAMPLES = 100


class Pin(NamedTuple):
    kind: str  # the planted symptom: TargetFailure.kind of the shrunk case
    minimal: bool  # whether the pinned case is the true minimum
    values: dict  # what quality_pins.observed() of the shrunk case must show


def pin(kind: str, minimal: bool = True, **values) -> Pin:
    return Pin(kind, minimal, values)


#: (bug, property) -> the shrunk case of a hunt with the pinned seed.
PINS = {
    ('gating_ties_to_higher_index', 'gating'): pin('wrong ids', size={'T': 1, 'E': 2, 'K': 1}, dtype='float32',
        strided=(0, 0), renormalize=True, logits=[[0.0, 0.0]]),
    ('gating_ties_to_higher_index', 'route'): pin('gating: wrong ids', size={'T': 1, 'E': 2, 'K': 1, 'U': 1},
        dtype='float32', strided=(0, 0), renormalize=True, logits=[[0.0, 0.0]], options='U=1, out=poisoned'),
    ('gating_nan_row_id_minus_one', 'gating'): pin('out-of-range ids', size={'T': 1, 'E': 1, 'K': 1},
        dtype='float32', strided=(0, 0), renormalize=True, logits=[[NEG_NAN]]),
    # not the minimum, which is the same without M
    ('gating_nan_row_id_minus_one', 'route'): pin('gating: out-of-range ids', minimal=False,
        size={'T': 1, 'E': 1, 'K': 1, 'U': 1}, dtype='float32', strided=(0, 0), renormalize=True, logits=[[NAN]],
        options='U=1, M=0, out=poisoned'),
    ('gating_nan_repeats_id', 'gating'): pin('wrong ids', size={'T': 1, 'E': 2, 'K': 1}, dtype='float32',
        strided=(0, 0), renormalize=True, logits=[[0.0, NEG_NAN]]),
    # not the minimum, which is K=1, [[0, nan]], no M
    ('gating_nan_repeats_id', 'route'): pin('gating: rows with repeated ids', minimal=False,
        size={'T': 1, 'E': 2, 'K': 2, 'U': 1}, dtype='float32', strided=(0, 0), renormalize=True,
        logits=[[NAN, NAN]], options='U=1, M=0, out=poisoned'),
    ('gating_not_renormalized', 'gating'): pin('weights out of tolerance', size={'T': 1, 'E': 2, 'K': 1},
        dtype='float32', strided=(0, 0), renormalize=True, logits=[[0.0, -1.0]]),
    ('gating_not_renormalized', 'route'): pin('gating: weights out of tolerance',
        size={'T': 1, 'E': 2, 'K': 1, 'U': 1}, dtype='float32', strided=(0, 0), renormalize=True,
        logits=[[0.0, -1.0]], options='U=1, out=poisoned'),
    ('gating_renormalize_forced', 'gating'): pin('weights out of tolerance', size={'T': 1, 'E': 2, 'K': 1},
        dtype='float32', strided=(0, 0), renormalize=False, logits=[[0.0, -1.0]]),
    ('gating_renormalize_forced', 'route'): pin('gating: weights out of tolerance',
        size={'T': 1, 'E': 2, 'K': 1, 'U': 1}, dtype='float32', strided=(0, 0), renormalize=False,
        logits=[[0.0, -1.0]], options='U=1, out=poisoned'),
    ('gating_raw_logit_weights', 'gating'): pin('weights out of tolerance', size={'T': 1, 'E': 1, 'K': 1},
        dtype='float32', strided=(0, 0), renormalize=False, logits=[[0.0]]),
    ('gating_raw_logit_weights', 'route'): pin('gating: weights out of tolerance',
        size={'T': 1, 'E': 1, 'K': 1, 'U': 1}, dtype='float32', strided=(0, 0), renormalize=False, logits=[[0.0]],
        options='U=1, out=poisoned'),
    ('gating_batch_dependent', 'batch'): pin('depends on the batch', size={'T': 1, 'E': 1, 'K': 1}, dtype='float32',
        strided=(0, 0), renormalize=True, logits=[[0.0]], rows=[0], other_batch=17),
    ('gating_padded_lane_wins_tie', 'gating'): pin('out-of-range ids', size={'T': 1, 'E': 3, 'K': 1},
        dtype='float32', strided=(0, 0), renormalize=True, logits=[[-INF, -INF, -INF]]),
    # not the minimum, which is K=1, [[-inf, -inf, -inf]], no M
    ('gating_padded_lane_wins_tie', 'route'): pin('gating: out-of-range ids', minimal=False,
        size={'T': 1, 'E': 3, 'K': 3, 'U': 1}, dtype='float32', strided=(0, 0), renormalize=True,
        logits=[[NAN, -13.21048641204834, 64.04226684570312]], options='U=1, M=0, out=poisoned'),
    # not the minimum, which is E=2, [[-nan, nan]]
    ('gating_negative_nan_key', 'gating'): pin('wrong ids', minimal=False, size={'T': 1, 'E': 5, 'K': 1},
        dtype='float32', strided=(0, 0), renormalize=True, logits=[[NEG_NAN, NEG_NAN, NEG_NAN, NAN, NAN]]),
    # not the minimum, which is the same without the mask
    ('gating_negative_nan_key', 'route'): pin('gating: wrong ids', minimal=False,
        size={'T': 1, 'E': 2, 'K': 1, 'U': 1}, dtype='float32', strided=(0, 0), renormalize=True,
        logits=[[NEG_NAN, NAN]], options='U=1, mask=[1, 1](int32), out=poisoned'),
    ('gating_bitonic_nonpow2_k', 'gating'): pin('wrong ids', size={'T': 1, 'E': 5, 'K': 3}, dtype='float32',
        strided=(0, 0), renormalize=True, logits=[[2.0, 1.0, -1.0, -2.0, 0.0]]),
    # not the minimum, which is E=5, K=3
    ('gating_bitonic_nonpow2_k', 'route'): pin('gating: wrong ids', minimal=False,
        size={'T': 1, 'E': 8, 'K': 5, 'U': 1}, dtype='float32', strided=(0, 0), renormalize=True,
        logits=[[3.0, 2.0, 1.0, 0.0, -2.0, -3.0, -4.0, -1.0]], options='U=1, out=poisoned'),
    # not the minimum, which is K=1, [[-1, 0]]
    ('gating_all_negative_init_zero', 'gating'): pin('rows with repeated ids', minimal=False,
        size={'T': 1, 'E': 2, 'K': 2}, dtype='float32', strided=(0, 0), renormalize=True, logits=[[0.0, -1.0]]),
    # not the minimum, which is K=1, [[-1, 0]]
    ('gating_all_negative_init_zero', 'route'): pin('gating: rows with repeated ids', minimal=False,
        size={'T': 1, 'E': 2, 'K': 2, 'U': 1}, dtype='float32', strided=(0, 0), renormalize=True,
        logits=[[0.0, -1.0]], options='U=1, out=poisoned'),
    ('gating_reads_own_output', 'gating'): pin('NaN weights', size={'T': 1, 'E': 1, 'K': 1}, dtype='float32',
        strided=(0, 0), renormalize=True, logits=[[0.0]]),
    # not the minimum, which is K=1, [[-1, 0]]
    ('gating_unwritten_candidate_slots', 'gating'): pin('rows with repeated ids', minimal=False,
        size={'T': 1, 'E': 2, 'K': 2}, dtype='float32', strided=(0, 0), renormalize=True, logits=[[0.0, -1.0]]),
    # not the minimum, which is K=1, [[-1, 0]]
    ('gating_unwritten_candidate_slots', 'route'): pin('gating: rows with repeated ids', minimal=False,
        size={'T': 1, 'E': 2, 'K': 2, 'U': 1}, dtype='float32', strided=(0, 0), renormalize=True,
        logits=[[0.0, -1.0]], options='U=1, out=poisoned'),
    ('gating_nan_clamped_to_zero', 'gating'): pin('wrong ids', size={'T': 1, 'E': 2, 'K': 1}, dtype='float32',
        strided=(0, 0), renormalize=True, logits=[[NEG_NAN, 0.0]]),
    # not the minimum, which is T=1, [[nan, 0]], no M: stuck at T=17 in the threshold token regime
    ('gating_nan_clamped_to_zero', 'route'): pin('gating: wrong ids', minimal=False,
        size={'T': 17, 'E': 2, 'K': 1, 'U': 1}, dtype='float32', strided=(0, 0), renormalize=True,
        options='U=1, M=14, out=poisoned'),
    ('gating_padding_lane_index_zero', 'gating'): pin('rows with repeated ids', size={'T': 1, 'E': 2, 'K': 2},
        dtype='float32', strided=(0, 0), renormalize=True, logits=[[-INF, -INF]]),
    ('gating_padding_lane_index_zero', 'route'): pin('gating: rows with repeated ids',
        size={'T': 1, 'E': 2, 'K': 2, 'U': 1}, dtype='float32', strided=(0, 0), renormalize=True,
        logits=[[0.0, NEG_NAN]], options='U=1, out=poisoned'),
    ('gating_finite_mask_sentinel', 'gating'): pin('rows with repeated ids', size={'T': 1, 'E': 2, 'K': 2},
        dtype='float32', strided=(0, 0), renormalize=True, logits=[[0.0, -1.0]]),
    ('gating_finite_mask_sentinel', 'route'): pin('gating: rows with repeated ids',
        size={'T': 1, 'E': 2, 'K': 2, 'U': 1}, dtype='float32', strided=(0, 0), renormalize=True,
        logits=[[0.0, -1.0]], options='U=1, out=poisoned'),
    ('gating_16bit_dtype_misread', 'gating'): pin('weights out of tolerance', size={'T': 1, 'E': 2, 'K': 1},
        dtype='float16', strided=(0, 0), renormalize=False, logits=[[0.0, -1.0]]),
    ('gating_16bit_dtype_misread', 'route'): pin('gating: weights out of tolerance',
        size={'T': 1, 'E': 2, 'K': 1, 'U': 1}, dtype='float16', strided=(0, 0), renormalize=False,
        logits=[[0.0, -1.0]], options='U=1, out=poisoned'),
    # not the minimum, which is K=1 with renormalize=False
    ('gating_row_stride_ignored', 'gating'): pin('weights out of tolerance', minimal=False,
        size={'T': 2, 'E': 2, 'K': 2}, dtype='float32', strided=(1, 0), renormalize=True,
        logits=[[0.0, -1.0], [0.0, -1.0]]),
    # not the minimum, which is K=1 with renormalize=False
    ('gating_row_stride_ignored', 'route'): pin('gating: weights out of tolerance', minimal=False,
        size={'T': 2, 'E': 2, 'K': 2, 'U': 1}, dtype='float32', strided=(1, 0), renormalize=True,
        logits=[[0.0, -1.0], [0.0, -1.0]], options='U=1, out=poisoned'),
    ('sorting_pad_extra_block', 'sorting'): pin('num_valid_ids wrong', size={'T': 1, 'E': 1, 'K': 1, 'U': 1},
        ids=[[0]], options='U=1, out=poisoned'),
    ('sorting_pad_extra_block', 'route'): pin('sorting: num_valid_ids wrong', size={'T': 1, 'E': 1, 'K': 1, 'U': 1},
        dtype='float32', strided=(0, 0), renormalize=True, logits=[[0.0]], options='U=1, out=poisoned'),
    # not the minimum, which is T=0
    ('sorting_empty_expert_block', 'sorting'): pin('sorted_token_ids canaries overwritten', minimal=False,
        size={'T': 1, 'E': 1, 'K': 1, 'U': 1}, ids=[[1]], options='U=1, M=0, out=poisoned'),
    ('sorting_empty_expert_block', 'route'): pin('sorting: num_valid_ids wrong',
        size={'T': 0, 'E': 1, 'K': 1, 'U': 1}, dtype='float32', strided=(0, 0), renormalize=True, logits=[],
        options='U=1, out=poisoned'),
    ('sorting_global_block_ids', 'sorting'): pin('sorted_expert_ids differences',
        size={'T': 1, 'E': 2, 'K': 1, 'U': 1}, ids=[[1]], options='U=1, mask=[0, 1](int32), out=poisoned'),
    # not the minimum, which is K=1, logits [[-1, 0]]
    ('sorting_global_block_ids', 'route'): pin('sorting: sorted_expert_ids differences', minimal=False,
        size={'T': 1, 'E': 2, 'K': 2, 'U': 1}, dtype='float32', strided=(0, 0), renormalize=True,
        logits=[[0.0, -1.0]], options='U=1, mask=[0, 1](int32), out=poisoned'),
    # not the minimum, which is T=2, M=1, U=2: stuck at T=17 in the threshold token regime
    ('sorting_sentinel_T', 'sorting'): pin('sorted_token_ids differences', minimal=False,
        size={'T': 17, 'E': 1, 'K': 1, 'U': 2}, options='U=2, M=15, out=poisoned'),
    # not the minimum, which is T=2, M=1, U=2: stuck at T=17 in the threshold token regime
    ('sorting_sentinel_T', 'route'): pin('sorting: sorted_token_ids differences', minimal=False,
        size={'T': 17, 'E': 1, 'K': 1, 'U': 2}, dtype='float32', strided=(0, 0), renormalize=True,
        options='U=2, M=15, out=poisoned'),
    # not the minimum, which is E=1, U=1, ids [[0, 0], [0, 0]]
    ('sorting_slot_major', 'sorting'): pin('sorted_token_ids differences', minimal=False,
        size={'T': 2, 'E': 2, 'K': 2, 'U': 2}, ids=[[-1, 0], [0, 0]], options='U=2, out=poisoned'),
    # not the minimum, which is E=2, K=2, logits [[0, -1], [-1, 0]]
    ('sorting_slot_major', 'route'): pin('sorting: sorted_token_ids differences', minimal=False,
        size={'T': 2, 'E': 3, 'K': 3, 'U': 1}, dtype='float32', strided=(0, 0), renormalize=True,
        logits=[[1.0, 0.0, -1.0], [1.0, -1.0, 0.0]], options='U=1, out=poisoned'),
    ('sorting_drop_past_tile', 'sorting'): pin('experts with wrong counts', size={'T': 17, 'E': 1, 'K': 1, 'U': 1},
        options='U=1, out=poisoned'),
    ('sorting_drop_past_tile', 'route'): pin('sorting: experts with wrong counts',
        size={'T': 17, 'E': 1, 'K': 1, 'U': 1}, dtype='float32', strided=(0, 0), renormalize=True,
        options='U=1, out=poisoned'),
    # not the minimum, which is E=1, ids [[0, 0]]
    ('sorting_collapse_duplicates', 'sorting'): pin('experts with wrong counts', minimal=False,
        size={'T': 1, 'E': 2, 'K': 2, 'U': 1}, ids=[[0, 0]], options='U=1, out=poisoned'),
    ('sorting_drop_last_chunk', 'sorting'): pin('experts with wrong counts', size={'T': 1, 'E': 1, 'K': 1, 'U': 1},
        ids=[[0]], options='U=1, out=poisoned'),
    ('sorting_drop_last_chunk', 'route'): pin('sorting: experts with wrong counts',
        size={'T': 1, 'E': 1, 'K': 1, 'U': 1}, dtype='float32', strided=(0, 0), renormalize=True, logits=[[0.0]],
        options='U=1, out=poisoned'),
    ('sorting_last_pad_unwritten', 'sorting'): pin('sorted_token_ids differences',
        size={'T': 1, 'E': 1, 'K': 1, 'U': 2}, ids=[[0]], options='U=2, out=poisoned'),
    ('sorting_last_pad_unwritten', 'route'): pin('sorting: sorted_token_ids differences',
        size={'T': 1, 'E': 1, 'K': 1, 'U': 2}, dtype='float32', strided=(0, 0), renormalize=True, logits=[[0.0]],
        options='U=2, out=poisoned'),
    ('sorting_moe_buf_rows_short', 'sorting'): pin('rows not zeroed', size={'T': 1, 'E': 1, 'K': 1, 'U': 1},
        ids=[[0]], options='U=1, moe_buf=float32x1, out=poisoned'),
    ('sorting_moe_buf_rows_short', 'route'): pin('sorting: rows not zeroed', size={'T': 1, 'E': 1, 'K': 1, 'U': 1},
        dtype='float32', strided=(0, 0), renormalize=True, logits=[[0.0]],
        options='U=1, moe_buf=float32x1, out=poisoned'),
    ('sorting_moe_buf_tail', 'sorting'): pin('rows not zeroed', size={'T': 1, 'E': 1, 'K': 1, 'U': 1}, ids=[[0]],
        options='U=1, moe_buf=float32x1, out=poisoned'),
    ('sorting_moe_buf_tail', 'route'): pin('sorting: rows not zeroed', size={'T': 1, 'E': 1, 'K': 1, 'U': 1},
        dtype='float32', strided=(0, 0), renormalize=True, logits=[[0.0]],
        options='U=1, moe_buf=float32x1, out=poisoned'),
    ('sorting_moe_buf_all_rows', 'sorting'): pin('rows >= M touched', size={'T': 1, 'E': 1, 'K': 1, 'U': 1},
        ids=[[1]], options='U=1, M=0, moe_buf=float32x1, out=poisoned'),
    ('sorting_moe_buf_all_rows', 'route'): pin('sorting: rows >= M touched', size={'T': 1, 'E': 1, 'K': 1, 'U': 1},
        dtype='float32', strided=(0, 0), renormalize=True, logits=[[12.57302188873291]],
        options='U=1, M=0, moe_buf=float32x1, out=poisoned'),
    # not the minimum, which is E=1, K=1, ids [[-1]]
    ('sorting_negative_id_before_buffer', 'sorting'): pin('written before the buffer start', minimal=False,
        size={'T': 1, 'E': 2, 'K': 2, 'U': 1}, ids=[[0, -1]], options='U=1, out=poisoned'),
    # not the minimum, which is E=1, K=1, ids [[-1]], mask [1]
    ('sorting_negative_id_wraps_mask', 'sorting'): pin('assignments present the wrong number of times',
        minimal=False, size={'T': 1, 'E': 2, 'K': 2, 'U': 1}, ids=[[0, -1]],
        options='U=1, mask=[1, 1](int32), out=poisoned'),
    ('sorting_mask_as_expert_map', 'sorting'): pin('sorted_expert_ids differences',
        size={'T': 1, 'E': 1, 'K': 1, 'U': 1}, ids=[[0]], options='U=1, mask=[1](int32), out=poisoned'),
    ('sorting_mask_as_expert_map', 'route'): pin('sorting: sorted_expert_ids differences',
        size={'T': 1, 'E': 1, 'K': 1, 'U': 1}, dtype='float32', strided=(0, 0), renormalize=True, logits=[[0.0]],
        options='U=1, mask=[1](int32), out=poisoned'),
    ('sorting_overread_input', 'sorting'): pin('num_valid_ids wrong', size={'T': 1, 'E': 1, 'K': 1, 'U': 1},
        ids=[[0]], options='U=1, out=poisoned'),
    ('sorting_path_threshold_grid', 'sorting'): pin('experts with wrong counts',
        size={'T': 25, 'E': 1, 'K': 1, 'U': 1}, options='U=1, out=poisoned'),
    ('sorting_capacity_not_block_multiple', 'sorting'): pin('written past the buffer end',
        size={'T': 0, 'E': 1, 'K': 1, 'U': 2}, ids=[], options='U=2, out=poisoned'),
    ('sorting_capacity_not_block_multiple', 'route'): pin('written past the buffer end',
        size={'T': 0, 'E': 1, 'K': 1, 'U': 2}, dtype='float32', strided=(0, 0), renormalize=True, logits=[],
        options='U=2, out=poisoned'),
    ('sorting_weights_ftz', 'sorting'): pin('sorted_weights differences', size={'T': 1, 'E': 1, 'K': 1, 'U': 1},
        ids=[[0]], options='U=1, out=poisoned', weight_bits=['0x7f800001']),
    ('vllm_tail_blocks_zero', 'sorting'): pin('tail blocks not -1', size={'T': 1, 'E': 1, 'K': 1, 'U': 1}, ids=[[1]],
        options='U=1, M=0, out=poisoned'),
    # not the minimum, which is T=1, M=0
    ('vllm_tail_blocks_zero', 'route'): pin('sorting: tail blocks not -1', minimal=False,
        size={'T': 2, 'E': 1, 'K': 1, 'U': 2}, dtype='float32', strided=(0, 0), renormalize=True,
        logits=[[0.0], [0.0]], options='U=2, out=poisoned'),
    # not the minimum, which is E=1, K=1, ids [[-1]]
    ('vllm_invalid_ids_bucket', 'sorting'): pin('assignments present the wrong number of times', minimal=False,
        size={'T': 1, 'E': 2, 'K': 2, 'U': 1}, ids=[[0, -1]], options='U=1, out=poisoned'),
    # not the minimum, which is E=1, K=2, ids [[0, 0], [0, 0]]
    ('vllm_flat_index_transposed', 'sorting'): pin('sorted_token_ids differences', minimal=False,
        size={'T': 2, 'E': 3, 'K': 3, 'U': 1}, ids=[[-1, 0, 0], [0, 1, -1]], options='U=1, out=poisoned'),
    ('vllm_flat_index_transposed', 'route'): pin('sorting: sorted_token_ids differences',
        size={'T': 2, 'E': 2, 'K': 2, 'U': 1}, dtype='float32', strided=(0, 0), renormalize=True,
        logits=[[0.0, -1.0], [0.0, -1.0]], options='U=1, out=poisoned'),
    ('route_plan_keyed_by_shape', 'reuse'): pin('sorting: experts with wrong counts',
        size={'T': 1, 'E': 1, 'K': 1, 'U': 1, 'calls': 3},
        options=['U=1, mask=[0](int32), out=poisoned', 'U=1, out=poisoned', 'U=1, mask=[0](int32), out=poisoned']),
    ('route_m_captured_at_plan', 'reuse'): pin('sorting: sorted_token_ids canaries overwritten',
        size={'T': 1, 'E': 1, 'K': 1, 'U': 1, 'calls': 3},
        options=['U=1, out=poisoned', 'U=1, M=0, out=poisoned', 'U=1, out=poisoned']),
    ('paths_fused_weights_ulp', 'paths'): pin('topk_weights differs', size={'T': 1, 'E': 1, 'K': 1, 'U': 1},
        dtype='float32', strided=(0, 0), renormalize=True, logits=[[0.0]], options='U=1, out=poisoned'),
}


def test_the_corpus_has_forty_bug_classes_each_with_a_source():
    assert len(planted.PLANTED) >= 40
    assert len(planted.BY_NAME) == len(planted.PLANTED)
    for p in planted.PLANTED:
        assert "#" in p.source or "seen in review" in p.source, p.name
        assert "Source: " in p.target.__doc__ and "Source: " in p.control.__doc__, p.name
        assert p.target is not p.control


def test_every_property_and_both_layouts_have_a_planted_bug():
    assert {prop for p in planted.PLANTED for prop in p.properties} == set(fp.PROPERTIES)
    assert {p.layout for p in planted.PLANTED} == {"ck", "vllm"}


def test_every_hunt_is_pinned():
    assert set(PINS) == set(CASES)


@pytest.mark.runs_targets
@pytest.mark.parametrize(("name", "prop"), CASES, ids=IDS)
def test_planted_bug_is_found_with_its_symptom_and_shrinks_to_its_pin(name, prop):
    p, expected = planted.BY_NAME[name], PINS[(name, prop)]
    target = planted.target_for(p, prop)
    found = fp.hunt(prop, target, max_examples=p.examples or fp.HUNT_EXAMPLES)
    assert found.case is not None, f"{name} survived {p.examples or fp.HUNT_EXAMPLES} examples of {prop}"
    assert found.failure.kind == expected.kind, \
        f"{name}: {prop} failed with {found.failure.kind!r}, not the planted {expected.kind!r}:\n{found.failure}"
    if expected.minimal:  # the true minimum: any run of the shrinker must reach exactly it
        wrong = mismatches(expected.values, found.case)
    else:  # pinned where this Hypothesis version's shrinker stopped: no larger than that
        wrong = {k: (v, found.case.size().get(k)) for k, v in expected.values["size"].items()
                 if found.case.size().get(k, v) > v}
    assert not wrong, (f"{name} shrank to {found.case!r}, not to its pin "
                       f"({'the minimum' if expected.minimal else 'not the minimum'}): (pinned, found) {wrong}")
    with pytest.raises(fp.TargetFailure) as again:  # the case alone reproduces it
        fp.check(prop, target, found.case)
    assert again.value.kind == expected.kind


@pytest.mark.runs_targets
@pytest.mark.parametrize(("name", "prop"), CASES, ids=IDS)
def test_control_with_the_knob_off_passes(name, prop):
    found = fp.hunt(prop, planted.target_for(planted.BY_NAME[name], prop, on=False), max_examples=CONTROL_EXAMPLES)
    assert found.case is None, f"{name}/fixed fails {prop}: {found.failure}"
    assert found.examples == CONTROL_EXAMPLES


def test_hunts_do_not_depend_on_the_loaded_profile():
    """The flake this pins: under the random dev profile sorting_global_block_ids once shrank to K=5."""
    p = planted.BY_NAME["sorting_global_block_ids"]
    previous = fuzz_settings.current()
    try:
        found = {}
        for profile in fuzz_settings.PROFILES:
            fuzz_settings.load(profile)
            found[profile] = repr(fp.failing_case("sorting", planted.target_for(p, "sorting")))
    finally:
        fuzz_settings.load(previous)
    assert len(set(found.values())) == 1, found


_HUNT_IN_A_FRESH_PROCESS = """
import os, sys
os.environ["TRITON_INTERPRET"] = "1"
if sys.argv[1] == "with-kernels":
    import fused_moe  # more local modules: Hypothesis mines constants from every one it sees
from fuzz import planted, properties as fp
p = planted.BY_NAME["sorting_sentinel_T"]
print(repr(fp.failing_case("sorting", planted.target_for(p, "sorting"))))
"""


def test_hunts_do_not_depend_on_the_modules_imported_before_them():
    """Hypothesis draws constants mined from the source of the local modules loaded so far: a
    hunt in a process that had imported fused_moe once shrank elsewhere (fuzz.properties
    empties that pool during a hunt)."""
    pytest.importorskip("fused_moe")
    found = {subprocess.run([sys.executable, "-c", _HUNT_IN_A_FRESH_PROCESS, mode], capture_output=True, text=True,
                            timeout=300, env=_env(), check=True).stdout for mode in ("bare", "with-kernels")}
    assert len(found) == 1, found


@pytest.mark.runs_targets
def test_the_path_threshold_bug_shows_just_past_its_declared_boundary_only():
    from fuzz.cases import Options, SortingCase
    p = planted.BY_NAME["sorting_path_threshold_grid"]
    target = planted.target_for(p, "sorting")
    assert planted.PATH_THRESHOLD in target.convention.domain.token_boundaries
    for T in range(1, 41):
        case = SortingCase(np.zeros((T, 1), np.int32), np.ones((T, 1), np.float32), 1, Options(unit_size=1))
        if T == planted.PATH_THRESHOLD + 1:
            with pytest.raises(fp.TargetFailure):
                fp.check("sorting", target, case)
        else:
            fp.check("sorting", target, case)


def test_the_over_read_faults_on_an_input_with_nothing_past_it():
    """Unguarded (an exactly sized input) the planted over-read raises, as a GPU faults at a page end."""
    import torch
    fn = planted.BY_NAME["sorting_overread_input"].target
    with pytest.raises(RuntimeError, match="illegal memory access"):
        fn(torch.zeros((1, 1), dtype=torch.int32), torch.ones((1, 1)), 1, unit_size=1)


def _env():
    """The repro needs this package importable (installed, or its checkout on PYTHONPATH)."""
    return {**os.environ, "PYTHONPATH": str(bundles.repro.ROOT)}


@pytest.mark.parametrize("name", ["sorting_moe_buf_tail", "gating_ties_to_higher_index", "gating_batch_dependent",
                                  "route_plan_keyed_by_shape"])
def test_bundle_of_a_planted_bug_replays_standalone(name, tmp_path):
    p = planted.BY_NAME[name]
    prop = p.properties[0]
    target = planted.target_for(p, prop)
    case = fp.failing_case(prop, target)
    with pytest.raises(fp.TargetFailure) as failure:
        fp.check(prop, target, case, "cpu")
    folder, written = bundles.write_bundle(tmp_path, prop, target, case, failure.value)
    assert written and {f.name for f in folder.iterdir()} == {"case.npz", "case.json", "bundle.json", "repro.py",
                                                              "report.md"}
    run = subprocess.run([sys.executable, "repro.py"], capture_output=True, text=True, cwd=folder, timeout=300,
                         env=_env())
    assert run.returncode == 1, run.stdout + run.stderr
    assert "FAILED" in run.stdout, run.stdout
    assert bundles.replay(folder)[0] == bundles.REPRODUCES
    text = (folder / "report.md").read_text()
    assert failure.value.kind in text and "@example(case=" in text and "hypothesis" in text and "T=" in text
    assert "M=" in text or prop in ("gating", "batch"), "sorting options name M"
    # never overwritten: the same failure again keeps the bundle
    assert bundles.write_bundle(tmp_path, prop, target, case, failure.value) == (folder, False)


def test_repro_of_a_correct_target_exits_zero(tmp_path):
    from fuzz.cases import Options, SortingCase
    case = SortingCase(np.array([[0, 1], [1, 1]], np.int32), np.array([[0.5, -0.0], [1.0, 2.0]], np.float32), 3,
                       Options(unit_size=2, moe_buf=("bfloat16", 7), num_local_tokens=1, m_on_device=True))
    (tmp_path / "repro.py").write_text(repro.script("sorting", targets.get("oracle-sorting"), case, "(none)",
                                                    when="now"))
    run = subprocess.run([sys.executable, "repro.py"], capture_output=True, text=True, cwd=tmp_path, timeout=300,
                         env=_env())
    assert run.returncode == 0, run.stdout + run.stderr
