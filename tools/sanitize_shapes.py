"""Run the kernels over representative shapes through the fuzz properties, for
``compute-sanitizer`` (tox -e sanitize): every path and layout, both seed models, the
dispatch edges, a mask, M on the device and a moe_buf whose rows are not 16-byte multiples.
Exits 1 if a property fails; the sanitizer's own exit code reports memory errors and races."""
import argparse
import sys

import numpy as np


def cases(quick: bool):
    from fuzz.cases import Logits, Options, RouteCase, round_to
    rng = np.random.default_rng(0)
    models = ((256, 8), (128, 4))
    tokens = (1, 16, 17, 300, 600) if quick else (1, 2, 3, 16, 17, 64, 65, 129, 300, 600, 4096)  # 600: column scan
    for E, K in models:
        for T in tokens:
            x = round_to(rng.standard_normal((T, E)) * 3, "bfloat16")  # Logits.values: exact in the dtype
            mask = (rng.random(E) < 0.8).astype(np.int32)
            for opts in (Options(unit_size=32),
                         Options(unit_size=16, expert_mask=mask, num_local_tokens=max(T - 1, 0), m_on_device=True,
                                 moe_buf=("bfloat16", 7))):
                yield RouteCase(Logits(x, "bfloat16"), K, True, opts)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer shapes (racecheck and initcheck are slow)")
    args = parser.parse_args()
    from fuzz import properties as fp
    from fuzz import targets
    names = [f"route-{p}{layout}" for p in ("fused", "unfused") for layout in ("", "-vllm")]
    failures = 0
    for case in cases(args.quick):
        for name in names:
            try:
                fp.route_property(targets.get(name), case, "cuda")
            except fp.TargetFailure as failure:
                failures += 1
                print(f"{name} {case.size()}: {failure.report}", flush=True)
    print(f"sanitize_shapes: {failures} property failures", flush=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
