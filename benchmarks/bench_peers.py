"""Our route against the best public peers, side by side in one run (issue "Kernels ahead of
every peer"): CUDA-graph replay time per call in us, no moe_buf, bf16 logits, U=32.

    python benchmarks/bench_peers.py [--baseline DIR] [--tokens 1,16,256] [--out FILE.md]

Columns: ours on each path (auto, fused, unfused), an older fused_moe for before/after
ratios (``--baseline DIR``: DIR holds a ``fused_moe`` package, e.g. ``git worktree add``
of an earlier commit), and every peer of benchmarks/peers.py that imports and passes its
check. Every pipeline is checked before it is timed: ours against the oracle's paths
(fused == unfused == auto bit for bit), the peers against torch.
"""
from __future__ import annotations

import argparse
import importlib.util
import pathlib
import sys

import torch

HERE = pathlib.Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent), str(HERE)]

import fused_moe  # noqa: E402
from peers import available  # noqa: E402
from probe import graph_us  # noqa: E402

MODELS = {"DeepSeek-R1": (256, 8), "GPT-OSS-120B": (128, 4)}
TOKENS = (1, 2, 4, 8, 12, 16, 64, 256, 1024, 4096, 16384)
U = 32
PATHS = ("auto", "fused", "unfused")


def load_baseline(directory):
    """The ``fused_moe`` package under ``directory``, imported as ``fused_moe_baseline``."""
    init = pathlib.Path(directory) / "fused_moe" / "__init__.py"
    spec = importlib.util.spec_from_file_location("fused_moe_baseline", init,
                                                  submodule_search_locations=[str(init.parent)])
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def ours(package, x, K, path):
    out = package.allocate_route_outputs(x.shape[0], K, x.shape[1], U, x.device)
    return lambda: package.route(x, K, unit_size=U, path=path, out=out)


def check_ours(x, K):
    """Paths bit for bit equal (the suite checks each against the oracle)."""
    results = [fused_moe.route(x, K, unit_size=U, path=p) for p in PATHS]
    n = int(results[0].num_valid_ids[0])
    for r in results[1:]:
        assert torch.equal(r.topk_ids, results[0].topk_ids) and torch.equal(r.topk_weights, results[0].topk_weights)
        assert torch.equal(r.sorted_token_ids[:n], results[0].sorted_token_ids[:n])
        assert torch.equal(r.sorted_expert_ids[: n // U], results[0].sorted_expert_ids[: n // U])
        assert torch.equal(r.num_valid_ids, results[0].num_valid_ids)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--baseline", help="directory holding an older fused_moe package")
    p.add_argument("--tokens", default=",".join(map(str, TOKENS)))
    p.add_argument("--out", type=pathlib.Path, help="also write the table here (Markdown)")
    args = p.parse_args(argv)
    tokens = [int(t) for t in args.tokens.split(",")]
    baseline = load_baseline(args.baseline) if args.baseline else None
    peers, missing = available()
    lines = [f"{torch.cuda.get_device_name()}, torch {torch.__version__}, triton "
             f"{importlib.import_module('triton').__version__}; graph us per call, no moe_buf, U={U}"]
    lines += [f"- {name}: {why}" for name, why in missing.items()]
    cols = [*PATHS, *(["baseline"] if baseline else []), *(peer.name for peer in peers)]
    head = "| model | T | path | " + " | ".join(cols) + " | ours / best peer | ours / baseline |"
    lines += ["", head, "|" + "---|" * (head.count("|") - 1)]
    print("\n".join(lines), flush=True)
    for model, (E, K) in MODELS.items():
        for T in tokens:
            x = torch.randn(T, E, device="cuda", dtype=torch.bfloat16)
            check_ours(x, K)
            for peer in peers:
                peer.check(x, K, U)
            r = {path: graph_us(ours(fused_moe, x, K, path)) for path in PATHS}
            if baseline:
                r["baseline"] = graph_us(ours(baseline, x, K, "auto"))
            for peer in peers:
                r[peer.name] = graph_us(peer.build(x, K, U))
            best_peer = min((r[peer.name] for peer in peers), default=None)
            vs_peer = f"{r['auto'] / best_peer:.2f}" if best_peer else "-"
            vs_base = f"{r['auto'] / r['baseline']:.2f}" if baseline else "-"
            path = fused_moe.choose_path("auto", T, E, K, x.device)
            row = f"| {model} | {T} | {path} | " + " | ".join(f"{r[c]:.2f}" for c in cols) + f" | {vs_peer} | {vs_base} |"
            lines.append(row)
            print(row, flush=True)
    if args.out:
        args.out.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
