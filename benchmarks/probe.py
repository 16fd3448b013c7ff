"""Quick graph-mode timing probe (development aid; the full table is bench_route.py)."""
import sys

import torch
import triton

import fused_moe


def graph_us(fn, reps=20):
    fn()
    torch.cuda.synchronize()
    g = torch.cuda.CUDAGraph()
    with torch.cuda.graph(g):
        for _ in range(reps):
            fn()
    g.replay()
    torch.cuda.synchronize()
    times = []
    for _ in range(10):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record(); g.replay(); b.record(); torch.cuda.synchronize()
        times.append(a.elapsed_time(b) * 1000 / reps)
    return sorted(times)[len(times) // 2]


def main():
    print(torch.cuda.get_device_name(), triton.__version__)
    rows = []
    for E, K, D in [(256, 8, 7168), (128, 4, 2880)]:
        for T in [int(t) for t in sys.argv[1:]] or [1, 16, 64, 256, 1024, 4096, 16384]:
            x = torch.randn(T, E, device="cuda", dtype=torch.bfloat16)
            buf = torch.randn(T, D, device="cuda", dtype=torch.bfloat16)
            out = fused_moe.allocate_route_outputs(T, K, E, 32, "cuda")
            r = {}
            for path in ("fused", "unfused"):
                r[path] = graph_us(lambda: fused_moe.route(x, K, moe_buf=buf, path=path, out=out))
            r["nobuf-fused"] = graph_us(lambda: fused_moe.route(x, K, path="fused", out=out))
            r["nobuf-unfused"] = graph_us(lambda: fused_moe.route(x, K, path="unfused", out=out))
            r["zero_"] = graph_us(lambda: buf.zero_())
            rows.append((E, K, T, r))
            print(E, K, T, " ".join(f"{k}={v:.2f}" for k, v in r.items()), flush=True)


if __name__ == "__main__":
    main()
