"""Device time of each kernel of a route call, per path (development aid, GPU only):
where the decode time goes. Median over 50 calls of torch.profiler device events."""
import statistics

import torch
from torch.profiler import ProfilerActivity, profile

import fused_moe


def kernel_times(call, n=50):
    call()
    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        for _ in range(n):
            call()
            torch.cuda.synchronize()
    by_name = {}
    for e in prof.events():
        if e.device_type != torch.autograd.DeviceType.CPU:
            by_name.setdefault(e.name, []).append(e.time_range.elapsed_us())
    return {name: statistics.median(ts) for name, ts in by_name.items()}


def main():
    dev = torch.device("cuda", 0)
    print(torch.cuda.get_device_name(dev))
    for E, K, D in [(256, 8, 7168), (128, 4, 2880)]:
        for T in (1, 4, 16):
            x = torch.randn(T, E, device=dev, dtype=torch.bfloat16)
            buf = torch.randn(T, D, device=dev, dtype=torch.bfloat16)
            w, ids = fused_moe.topk_gating_softmax(x, K)
            calls = {
                "gating alone": lambda: fused_moe.topk_gating_softmax(x, K),
                "sorting alone": lambda: fused_moe.moe_sorting(ids, w, E, moe_buf=buf),
                "route unfused": lambda: fused_moe.route(x, K, moe_buf=buf, path="unfused"),
                "route fused": lambda: fused_moe.route(x, K, moe_buf=buf, path="fused"),
            }
            for what, call in calls.items():
                times = kernel_times(call)
                shown = ", ".join(f"{name[:28]} {us:.2f}" for name, us in times.items())
                print(f"E={E} K={K} T={T:2d} {what:14s} sum {sum(times.values()):5.2f} us: {shown}", flush=True)


if __name__ == "__main__":
    main()
