"""Path choice for ``route(path="auto")``: a pure function of the shape and device.

The thresholds come from benchmarks/ (see docs/notes.md): the fused single launch wins
for one gating tile; beyond a few tiles the unfused path sorts every tile in parallel.
"""
PATHS = ("auto", "fused", "unfused")

# Token counts where the kernels change strategy (fuzzers draw T on both sides of each).
DISPATCH_THRESHOLDS = {
    "fused_register_sort": 2,  # fused, one tile: sorts from the gating registers up to here (tile height)
    "fused_single_tile": 16,  # fused: one gating tile (E <= 256) -> no arrival counter
    "fused_max_tokens": 128,  # auto: never fused beyond here (its last arriver places every tile)
    "sort_single_program": 64,  # sorting: one program up to here, tiled histogram/scan/scatter beyond
}
# Not a token count: assignments (T * K) one sorting program takes in a single chunk.
DISPATCH_THRESHOLDS_ASSIGNMENTS = {"sort_chunk_assignments": 256}


def choose_path(path, T, E, K, device):
    """"fused" while it measured no slower than "unfused" (H200, docs/notes.md): the one-tile
    decode case, and a few gating tiles when the unfused sort would need more than one chunk."""
    if path not in PATHS:
        raise ValueError(f"path must be one of {', '.join(map(repr, PATHS))}; got {path!r}")
    if path != "auto":
        return path
    if T <= DISPATCH_THRESHOLDS["fused_single_tile"]:
        return "fused"
    one_chunk = T * K <= DISPATCH_THRESHOLDS_ASSIGNMENTS["sort_chunk_assignments"]
    return "fused" if T <= DISPATCH_THRESHOLDS["fused_max_tokens"] and not one_chunk else "unfused"
