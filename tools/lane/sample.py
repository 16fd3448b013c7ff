"""Which variants a run compiles. Compiling one variant for the seven architectures takes
about 2-25 s of CPU here, and there are thousands of variants, so:

- ``paths`` (default): every code path and every size extreme of each kernel: each value of
  each bool / str constexpr, each launch option, each argument type and data alignment, the
  smallest and the largest value of each integer constexpr; plus the seed models' decode
  (T=1) and largest (T=16384) benchmark launches.
- ``values``: every value of every constexpr and every integer specialisation, plus every
  benchmark launch (about 160 variants).
- ``full``: every variant enumerated.

Both covers are greedy: after the pinned variants, the one covering most features not yet
covered, until every feature is; ties go to the first seen.
"""
from __future__ import annotations

import collections
import heapq

LEVELS = ("paths", "values", "full")
PINNED = {"paths": {"bench:decode", "bench:largest"}, "values": {"bench"}}


def value_features(variant) -> set:
    """Everything a variant can differ in: (kernel, what, argument, value), both families."""
    names = variant.kernel.arg_names
    out = {(variant.name, "option", name, value) for name, value in variant.options}
    for family, spec in variant.specs.items():
        out.update((variant.name, "constexpr", names[path[0]], repr(value)) for path, value in spec.constexprs)
        out.update((variant.name, "type", arg, kind) for arg, kind in spec.signature if kind != "constexpr")
        out.update((variant.name, f"{family} attrs", names[path[0]], attrs) for path, attrs in spec.attrs)
    return out


def _is_size(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def path_features(variants) -> dict:
    """variant id -> its code-path features (see the module docstring)."""
    extremes = collections.defaultdict(dict)  # (kernel, constexpr) -> {"min": value, "max": value}
    for v in variants:
        for name, value in v.constexprs.items():
            if _is_size(value):
                seen = extremes[(v.name, name)]
                seen["min"], seen["max"] = min(seen.get("min", value), value), max(seen.get("max", value), value)
    out = {}
    for v in variants:
        names = v.kernel.arg_names
        features = {f for f in value_features(v) if f[1] in ("option", "type")}
        for name, value in v.constexprs.items():
            if _is_size(value):
                features.update((v.name, end, name) for end, x in extremes[(v.name, name)].items() if value == x)
            else:
                features.add((v.name, "constexpr", name, repr(value)))
        for family, spec in v.specs.items():  # alignment of the data: vector widths
            kinds = dict(spec.signature)
            features.update((v.name, f"{family} alignment", names[path[0]], attrs) for path, attrs in spec.attrs
                            if kinds[names[path[0]]].startswith("*"))
        out[v.id] = features
    return out


def select(variants, level: str = "paths") -> list:
    variants = list(variants)
    if level == "full":
        return variants
    features = path_features(variants) if level == "paths" else {v.id: value_features(v) for v in variants}
    chosen = [v for v in variants if v.tags & PINNED[level]]
    covered = set().union(*(features[v.id] for v in chosen))
    # Lazy greedy: a variant's gain only shrinks as more is covered, so a stale gain is an
    # upper bound; recount the best one and take it if it still beats the next.
    heap = [(-len(features[v.id] - covered), order, v) for order, v in enumerate(variants)
            if not v.tags & PINNED[level]]
    heapq.heapify(heap)
    while heap:
        _, order, v = heapq.heappop(heap)
        gain = len(features[v.id] - covered)
        if gain == 0:
            continue
        if heap and (-gain, order) > heap[0][:2]:
            heapq.heappush(heap, (-gain, order, v))
            continue
        chosen.append(v)
        covered |= features[v.id]
    return chosen
