"""Known findings: a ledger of bugs already reported, so a campaign says "known" instead of "new".

A ledger is a TOML file of ``[[finding]]`` tables:

.. code-block:: toml

    [[finding]]
    target = "sglang.moe_sorting_small"
    signature = "sorting-raised-interpretererror"   # TargetFailure.signature: property and kind
    link = "https://github.com/..."                  # required: where it is reported or located
    note = "T*K = 0 passes the support check, then tl.arange(0, 0) fails"

A failure matches an entry by (target, signature). Signatures name the kind of
difference, not the place, so an entry also covers other failures of that kind on
that target: keep entries narrow, and remove them once the bug is fixed (a campaign
flags entries whose target ran but which it did not see).
"""
from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path

#: The ledger shipped with the suite (findings in the external targets).
DEFAULT = Path(__file__).with_name("known_findings.toml")


@dataclass(frozen=True)
class Known:
    target: str
    signature: str
    link: str
    note: str = ""


def load(path=DEFAULT) -> tuple[Known, ...]:
    """The ledger's entries; ValueError naming the entry for a missing field or link."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ValueError(f"ledger {path}: {exc}") from None
    entries = []
    for i, row in enumerate(data.get("finding", [])):
        missing = [k for k in ("target", "signature", "link") if not str(row.get(k, "")).strip()]
        if missing:
            raise ValueError(f"ledger {path}: finding {i + 1} has no {', '.join(missing)} (a link is required)")
        if not str(row["link"]).startswith(("https://", "http://")):
            raise ValueError(f"ledger {path}: finding {i + 1}: link must be an http(s) URL, got {row['link']!r}")
        unknown = sorted(set(row) - {"target", "signature", "link", "note"})
        if unknown:
            raise ValueError(f"ledger {path}: finding {i + 1} has unknown field(s) {unknown}")
        entries.append(Known(row["target"], row["signature"], row["link"], row.get("note", "")))
    return tuple(entries)


def match(ledger, target: str, signature: str) -> Known | None:
    return next((k for k in ledger if k.target == target and k.signature == signature), None)
