"""The default run's variants: the benchmark's shapes, then a greedy cover of everything a
variant can differ in, so every value the host code gives a constexpr, every launch option,
every argument type and every alignment / integer specialisation is compiled at least once
for each kernel. ``--full`` compiles every variant instead.
"""
from __future__ import annotations


def features(variant) -> set:
    """What a variant can differ in: (kernel, what, argument, value) tuples, both families."""
    names = variant.kernel.arg_names
    out = {(variant.name, "option", name, value) for name, value in variant.options}
    for family, spec in variant.specs.items():
        out.update((variant.name, "constexpr", names[path[0]], repr(value)) for path, value in spec.constexprs)
        out.update((variant.name, "type", arg, kind) for arg, kind in spec.signature if kind != "constexpr")
        out.update((variant.name, f"{family} attrs", names[path[0]], attrs) for path, attrs in spec.attrs)
    return out


def select(variants, pinned_tag: str = "bench") -> list:
    """Variants tagged ``pinned_tag`` first (in first-seen order), then, greedily, the one
    covering most features not yet covered, until every feature is; ties go to the first seen."""
    chosen = [v for v in variants if pinned_tag in v.tags]
    covered = set().union(*map(features, chosen)) if chosen else set()
    rest = {v.id: (v, features(v)) for v in variants if pinned_tag not in v.tags}
    while rest:
        best_id, (best, gain) = max(rest.items(), key=lambda item: len(item[1][1] - covered))
        if not gain - covered:
            break
        chosen.append(best)
        covered |= gain
        del rest[best_id]
    return chosen
