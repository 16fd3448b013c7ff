"""Device time of each kernel of a route call, per path (development aid, GPU only): where
the time goes. Median over 30 calls of torch.profiler device events, plus the graph time.

    python benchmarks/kernel_split.py [--tokens 1,256,16384] [--paths unfused] [--sort-warps 2,4]
                                      [--scan-columns 4,16] [--register-rows 2,16]

The sweeps re-plan with each value of a geometry setting, to pick it from measurements:
``--sort-warps`` (SORT_WARPS, the tiled sort's warps), ``--scan-columns`` (SCAN_COLUMNS,
experts per column-scan program), ``--register-rows`` (the fused single tile sorts from
registers up to this many rows).
"""
import argparse
import itertools
import pathlib
import statistics
import sys

import torch
from torch.profiler import ProfilerActivity, profile

HERE = pathlib.Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent), str(HERE)]

import fused_moe  # noqa: E402
from fused_moe import geometry, plans  # noqa: E402
from probe import graph_us  # noqa: E402

MODELS = {"DeepSeek-R1": (256, 8), "GPT-OSS-120B": (128, 4)}


def kernel_times(call, n=30):
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


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--tokens", default="1,16,64,256,1024,4096,16384")
    p.add_argument("--paths", default="fused,unfused")
    p.add_argument("--sort-warps", default=str(geometry.SORT_WARPS))
    p.add_argument("--scan-columns", default=str(geometry.SCAN_COLUMNS))
    p.add_argument("--register-rows", default=str(geometry.DISPATCH_THRESHOLDS["fused_register_sort"]))
    args = p.parse_args(argv)
    print(torch.cuda.get_device_name())
    for model, (E, K) in MODELS.items():
        for T in map(int, args.tokens.split(",")):
            x = torch.randn(T, E, device="cuda", dtype=torch.bfloat16)
            out = fused_moe.allocate_route_outputs(T, K, E, 32, "cuda")
            sweeps = itertools.product(args.paths.split(","), *(map(int, a.split(",")) for a in
                                       (args.sort_warps, args.scan_columns, args.register_rows)))
            for path, warps, columns, rows in sweeps:
                geometry.SORT_WARPS, geometry.SCAN_COLUMNS = warps, columns
                geometry.sort_from_registers = lambda block_t, rows=rows: block_t <= rows
                plans.clear_plans()
                call = lambda: fused_moe.route(x, K, path=path, out=out)  # noqa: E731
                times = kernel_times(call)
                shown = ", ".join(f"{name[:22]} {us:.2f}" for name, us in times.items())
                print(f"{model} T={T} {path} w{warps} c{columns} r{rows}: graph {graph_us(call):.2f} us, "
                      f"kernels {shown}", flush=True)


if __name__ == "__main__":
    main()
