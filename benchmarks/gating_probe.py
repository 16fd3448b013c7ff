"""Where the gating kernel's time goes (development aid, GPU only; docs/notes.md, v7).

    python benchmarks/gating_probe.py [--baseline DIR]

Times, per model, the production ``topk_gating_softmax`` (and an older fused_moe's, with
``--baseline``) against a candidate selection written here: ``tl.topk`` over the packed
[BLOCK_T, BLOCK_E] tile, giving the [BLOCK_T, BLOCK_K] winners in slot order at once, so
nothing is extracted slot by slot and only a [BLOCK_T, BLOCK_K] tile is stored. The
candidate is checked against the production kernel (ids and weights bit for bit) first.
"""
import argparse
import pathlib
import sys

import torch
import triton
import triton.language as tl

HERE = pathlib.Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent), str(HERE)]

import fused_moe  # noqa: E402
from fused_moe.gating_kernels import _fixed_point_sum, _ordered_key, _ordered_key16, _unnormalised  # noqa: E402
from kernel_split import kernel_times  # noqa: E402

MODELS = {"DeepSeek-R1": (256, 8), "GPT-OSS-120B": (128, 4)}


@triton.jit
def topk_candidate(logits_ptr, weights_ptr, ids_ptr, T, E, K: tl.constexpr, BLOCK_T: tl.constexpr,
                   BLOCK_E: tl.constexpr, BLOCK_K: tl.constexpr):
    i_t = tl.program_id(0) * BLOCK_T + tl.arange(0, BLOCK_T)
    i_e = tl.arange(0, BLOCK_E)
    m_e = i_e < E
    raw = tl.load(logits_ptr + i_t[:, None].to(tl.int64) * E + i_e[None, :], mask=(i_t < T)[:, None] & m_e[None, :],
                  other=float("-inf"))
    x = raw.to(tl.float32)
    x = tl.where(x != x, float("-inf"), x)
    x = tl.where(x == 0.0, 0.0, x)
    low = (BLOCK_E - 1 - i_e)[None, :]
    if raw.dtype.primitive_bitwidth == 16:
        packed = (tl.where(m_e[None, :], _ordered_key16(x, raw.dtype), -32768) << 16) | low
        top = tl.topk(packed, BLOCK_K, dim=1)
        key = top >> 16
        bits = (key ^ ((key >> 15) & 0x7FFF)).to(tl.int16).to(raw.dtype, bitcast=True)
        x_sel = bits.to(tl.float32)
        col = BLOCK_E - 1 - (top & 0xFFFF)
    else:
        packed = (tl.where(m_e[None, :], _ordered_key(x), -2147483648).to(tl.int64) << 32) | low.to(tl.int64)
        top = tl.topk(packed, BLOCK_K, dim=1)
        key = (top >> 32).to(tl.int32)
        x_sel = (key ^ ((key >> 31) & 0x7FFFFFFF)).to(tl.float32, bitcast=True)
        col = BLOCK_E - 1 - (top & 0xFFFFFFFF).to(tl.int32)
    i_k = tl.arange(0, BLOCK_K)[None, :]
    x_sel = tl.where(i_k < K, x_sel, float("-inf"))
    x_max = tl.max(x_sel, axis=1)
    p = tl.where(i_k < K, _unnormalised(x_sel, x_max), 0.0)
    w = p / _fixed_point_sum(p)[:, None]
    i_t2 = tl.program_id(0) * BLOCK_T + tl.arange(0, BLOCK_T)[:, None]
    m = (i_t2 < T) & (i_k < K)
    tl.store(ids_ptr + i_t2 * K + i_k, col, mask=m)
    tl.store(weights_ptr + i_t2 * K + i_k, w, mask=m)


def candidate(x, K, warps):
    T, E = x.shape
    block_e = triton.next_power_of_2(E)
    block_t = max(1, min(16, 4096 // block_e))
    w = torch.empty(T, K, device=x.device)
    ids = torch.empty(T, K, dtype=torch.int32, device=x.device)
    grid = (triton.cdiv(T, block_t),)
    return lambda: topk_candidate[grid](x, w, ids, T, E, K, block_t, block_e, triton.next_power_of_2(K),
                                        num_warps=warps), (w, ids)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--baseline")
    p.add_argument("--tokens", default="16,16384")
    args = p.parse_args(argv)
    base = None
    if args.baseline:
        from bench_peers import load_baseline
        base = load_baseline(args.baseline)
    print(torch.cuda.get_device_name())
    for model, (E, K) in MODELS.items():
        for T in map(int, args.tokens.split(",")):
            for dtype in (torch.bfloat16, torch.float32):
                x = torch.randn(T, E, device="cuda", dtype=dtype)
                ref = fused_moe.topk_gating_softmax(x, K)
                row = {"prod": sum(kernel_times(lambda: fused_moe.topk_gating_softmax(x, K)).values())}
                if base:
                    row["baseline"] = sum(kernel_times(lambda: base.topk_gating_softmax(x, K)).values())
                for warps in (1, 2, 4, 8):
                    call, (w, ids) = candidate(x, K, warps)
                    call()
                    ok = torch.equal(ids, ref.topk_ids) and torch.equal(w, ref.topk_weights)
                    row[f"topk w{warps}"] = sum(kernel_times(call).values())
                    row[f"topk w{warps}"] = f"{row[f'topk w{warps}']:.2f}{'' if ok else ' WRONG'}"
                shown = " ".join(f"{k} {v:.2f}" if isinstance(v, float) else f"{k} {v}" for k, v in row.items())
                print(f"{model} T={T} {str(dtype)[6:]}: {shown}", flush=True)


if __name__ == "__main__":
    main()
