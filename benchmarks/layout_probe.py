"""Graph-mode cost of ``layout="vllm"`` against ``layout="ck"`` (development aid; docs/notes.md).

    python benchmarks/layout_probe.py [--ck-only] [T ...]

DeepSeek-R1 shape (E=256, K=8, U=32), bf16 logits, no moe_buf (zeroing would hide the
difference), capacity-sized out= buffers; route on both paths and moe_sorting on int32
and int64 ids. ``--ck-only`` runs what an older fused_moe without ``layout=`` accepts, so
the same script times the code before the change (PYTHONPATH pointing at it).
"""
import sys

import torch
import triton

import fused_moe
from probe import graph_us


def main():
    args = sys.argv[1:]
    ck_only = "--ck-only" in args
    Ts = [int(t) for t in args if t != "--ck-only"] or [1, 2, 16, 64, 256, 4096]
    layouts = ("ck",) if ck_only else ("ck", "vllm")
    print(torch.cuda.get_device_name(), triton.__version__, fused_moe.__file__, flush=True)
    E, K, U = 256, 8, 32
    for T in Ts:
        x = torch.randn(T, E, device="cuda", dtype=torch.bfloat16)
        g = fused_moe.topk_gating_softmax(x, K)
        ids64 = g.topk_ids.long()
        for layout in layouts:
            kw = {} if ck_only else {"layout": layout}
            out = fused_moe.allocate_route_outputs(T, K, E, U, "cuda", **kw)
            sort_out = fused_moe.allocate_sorting_outputs(T, K, E, U, "cuda", **kw)
            r = {p: graph_us(lambda: fused_moe.route(x, K, unit_size=U, path=p, out=out, **kw))
                 for p in ("fused", "unfused")}
            r["sort-i32"] = graph_us(lambda: fused_moe.moe_sorting(g.topk_ids, g.topk_weights, E, unit_size=U,
                                                                    out=sort_out, **kw))
            if not ck_only:
                r["sort-i64"] = graph_us(lambda: fused_moe.moe_sorting(ids64, g.topk_weights, E, unit_size=U,
                                                                        out=sort_out, **kw))
            print(f"T={T} layout={layout} " + " ".join(f"{k}={v:.2f}" for k, v in r.items()), flush=True)


if __name__ == "__main__":
    main()
