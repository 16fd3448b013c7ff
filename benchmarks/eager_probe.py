"""Where the host time of one eager ``route`` call goes (development aid, GPU only).

Prints host microseconds per call for the pieces of a T=1 DeepSeek-R1 route (E=256, K=8,
moe_buf 7168 bf16) next to an empty Triton kernel launched the usual way, then a cProfile
of the fused call sorted by own time.
"""
import cProfile
import pstats
import time

import torch
import triton

import fused_moe
from fused_moe import buffers, launcher, plans


@triton.jit
def _empty_kernel():
    pass


def host_us(fn, n=3000):
    for _ in range(50):
        fn()
    torch.cuda.synchronize()
    best = float("inf")
    for _ in range(5):
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        torch.cuda.synchronize()
        best = min(best, (time.perf_counter() - t0) / n * 1e6)
    return best


def main():
    dev = torch.device("cuda", 0)
    T, E, K, D = 1, 256, 8, 7168
    x = torch.randn(T, E, device=dev, dtype=torch.bfloat16)
    buf = torch.randn(T, D, device=dev, dtype=torch.bfloat16)
    out = fused_moe.allocate_route_outputs(T, K, E, 32, dev)
    pieces = {
        "empty kernel[(1,)]()": lambda: _empty_kernel[(1,)](),
        "route fused": lambda: fused_moe.route(x, K, moe_buf=buf, path="fused"),
        "route fused out=": lambda: fused_moe.route(x, K, moe_buf=buf, path="fused", out=out),
        "route unfused": lambda: fused_moe.route(x, K, moe_buf=buf, path="unfused"),
        "route unfused out=": lambda: fused_moe.route(x, K, moe_buf=buf, path="unfused", out=out),
        "allocate_route_outputs": lambda: fused_moe.allocate_route_outputs(T, K, E, 32, dev),
        "torch.empty x1": lambda: torch.empty(8, dtype=torch.int32, device=dev),
        "arrival_counter": lambda: buffers.arrival_counter(dev),
        "torch.cuda.current_stream": lambda: torch.cuda.current_stream(dev),
        "launcher.current_stream": lambda: launcher.current_stream(0),
        "6 x torch.empty": lambda: [torch.empty(8, dtype=torch.int32, device=dev) for _ in range(6)],
        "topk_gating_softmax": lambda: fused_moe.topk_gating_softmax(x, K),
        "empty + split into 6": lambda: torch.empty(64, dtype=torch.int32, device=dev).split([8, 8, 16, 16, 8, 8]),
        "describe(logits)": lambda: plans.describe(x),
    }
    print(torch.cuda.get_device_name(), "triton", triton.__version__, "torch", torch.__version__)
    for name, fn in pieces.items():
        print(f"{name:32s} {host_us(fn):8.2f} us")
    prof = cProfile.Profile()
    fn = pieces["route fused out="]
    prof.enable()
    for _ in range(2000):
        fn()
    prof.disable()
    torch.cuda.synchronize()
    pstats.Stats(prof).sort_stats("tottime").print_stats(25)


if __name__ == "__main__":
    main()
