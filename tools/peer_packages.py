"""Install the peers' routing modules for benchmarks/peers.py where their whole package cannot.

    pip download --no-deps amd-aiter -d .whl
    python tools/peer_packages.py --aiter-wheel .whl/amd_aiter-*.whl --out .ext/peers
    PYTHONPATH=.ext/peers python benchmarks/bench_peers.py

aiter's top-level ``__init__`` builds ROCm extensions, so ``import aiter`` fails on a CUDA
machine, while its Triton MoE routing is plain Triton. This unpacks only that subpackage
(and its ``_triton_kernels`` half) from the unmodified wheel, with empty ``__init__.py``
files for the parent packages. Nothing is copied into this repository.
"""
from __future__ import annotations

import argparse
import pathlib
import zipfile

AITER_MODULES = ("aiter/ops/triton/moe_routing/", "aiter/ops/triton/_triton_kernels/moe_routing/")


def install_aiter(wheel: pathlib.Path, out: pathlib.Path) -> list[str]:
    with zipfile.ZipFile(wheel) as archive:
        names = [n for n in archive.namelist() if n.startswith(AITER_MODULES) and n.endswith(".py")]
        if not names:
            raise SystemExit(f"{wheel} holds no {AITER_MODULES[0]}: not an aiter wheel with Triton routing")
        archive.extractall(out, names)
    for name in names:  # parent packages, empty: their real __init__ needs ROCm
        for parent in pathlib.PurePosixPath(name).parents:
            if str(parent) != ".":
                (out / parent / "__init__.py").touch(exist_ok=True)
    return names


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--aiter-wheel", type=pathlib.Path, required=True, help="an amd-aiter wheel (pip download)")
    p.add_argument("--out", type=pathlib.Path, default=pathlib.Path(".ext/peers"))
    args = p.parse_args(argv)
    names = install_aiter(args.aiter_wheel, args.out)
    print(f"{len(names)} aiter routing modules under {args.out}")


if __name__ == "__main__":
    main()
