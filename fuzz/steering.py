"""Targeted search toward the sizes where a target changes path.

A kernel's off-by-one hides at T next to a token boundary, or T*K next to an assignment
(chunk, tile) boundary, where it switches strategy. The strategies draw there on purpose
(the ``threshold`` token regime); :func:`steer` also tells Hypothesis's targeted phase
(``hypothesis.target``) how far each case is from each boundary, one label per boundary:
Hypothesis climbs toward each label's maximum, so every boundary gets its own climb (one
label for the nearest would be satisfied by whichever boundary is easiest). The
boundaries are the ones the target declares (:class:`fuzz.conventions.Domain`, copied
into the strategies' :class:`fuzz.strategies.Limits`), read when the campaign runs, never
hard-coded here.
"""
from __future__ import annotations


def token_label(b: int) -> str:
    return f"T near token boundary {b}"


def assignment_label(b: int) -> str:
    return f"T*K near assignment boundary {b}"


def observations(size: dict, limits) -> dict[str, int]:
    """label -> minus the distance of a case (its ``size()``: T and K) to each boundary
    ``limits`` declares. Boundaries beyond the drawn sizes are left out: unreachable, they
    would only pull cases toward the largest size."""
    T, K = size["T"], size["K"]
    reach_t = max(limits.max_tokens, limits.max_threshold_tokens)
    out = {token_label(b): -abs(T - b) for b in sorted(set(limits.token_boundaries)) if b <= reach_t}
    out.update({assignment_label(b): -abs(T * K - b) for b in sorted(set(limits.assignment_boundaries))
                if b <= limits.max_assignments})
    return out


def steer(case, limits) -> None:
    """Report the observations of ``case`` to Hypothesis (only inside a ``@given`` test)."""
    import hypothesis
    for label, value in observations(case.size(), limits).items():
        hypothesis.target(value, label=label)
