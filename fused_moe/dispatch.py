"""Path choice for ``route(path="auto")``: a pure function of the shape and device.

The thresholds come from benchmarks/ (see docs/notes.md): up to FUSED_MAX_TOKENS
the fused single launch wins; beyond it the unfused path parallelises sorting.
"""
PATHS = ("auto", "fused", "unfused")

# Token counts where the kernels change strategy (fuzzers draw T on both sides of each).
DISPATCH_THRESHOLDS = {
    "fused_single_tile": 16,  # fused: one gating tile (E <= 256) -> no arrival counter
    "fused_max_tokens": 256,  # auto: fused up to here, unfused beyond
    "sort_single_program": 64,  # sorting: one program up to here, tiled histogram/scan/scatter beyond
}


def choose_path(path, T, E, K, device):
    if path not in PATHS:
        raise ValueError(f"path must be one of {', '.join(map(repr, PATHS))}; got {path!r}")
    if path != "auto":
        return path
    return "fused" if T <= DISPATCH_THRESHOLDS["fused_max_tokens"] else "unfused"
