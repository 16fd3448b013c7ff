"""A cosmic-ray session's results as a report: counts per module, survivors matched to
their explanations in survivors.toml.

A survivor's id is ``module :: operator :: source line`` (stripped), with `` #n`` for the
n-th mutant of one operator on one line: stable across edits elsewhere in the file, which
an occurrence number is not.
"""
import json
import subprocess
import tomllib
from collections import Counter, defaultdict
from pathlib import Path

OUTCOMES = ("killed", "timeout", "survived", "incompetent")
KINDS = ("equivalent", "gpu-only", "performance-only", "unreachable")


def load_explanations(path):
    """{id: entry} from survivors.toml; ValueError on a malformed entry."""
    data = tomllib.loads(Path(path).read_text()) if Path(path).exists() else {}
    explained = {}
    for entry in data.get("survivor", []):
        if not isinstance(entry, dict) or set(entry) != {"id", "kind", "reason"}:
            raise ValueError(f"{path}: each [[survivor]] needs exactly id, kind and reason, got {entry!r}")
        if entry["kind"] not in KINDS:
            raise ValueError(f"{path}: {entry['id']!r}: kind must be one of {', '.join(KINDS)}")
        if not str(entry["reason"]).strip():
            raise ValueError(f"{path}: {entry['id']!r} has an empty reason")
        if entry["id"] in explained:
            raise ValueError(f"{path}: {entry['id']!r} is explained twice")
        explained[entry["id"]] = entry
    return explained


def session_rows(session):
    """One dict per mutant that ran, from ``cosmic-ray dump``."""
    dump = subprocess.run(["cosmic-ray", "dump", str(session)], check=True, capture_output=True, text=True).stdout
    rows, lines_of = [], {}
    for line in dump.splitlines():
        item, result = json.loads(line)
        if result is None or result["worker_outcome"] in ("no-test", "skipped"):
            continue
        (mutation,) = item["mutations"]
        module, (lineno, col) = mutation["module_path"], mutation["start_pos"]
        source = lines_of.setdefault(module, Path(module).read_text().splitlines())
        rows.append(dict(
            job=item["job_id"], module=module, line=lineno, col=col,
            operator=mutation["operator_name"].removeprefix("core/"), occurrence=mutation["occurrence"],
            outcome=_outcome(result), source=source[lineno - 1].strip(),
            mutated=" / ".join(d[1:].strip() for d in (result.get("diff") or "").splitlines()
                               if d.startswith("+") and not d.startswith("+++")),
        ))
    rows.sort(key=lambda r: (r["module"], r["line"], r["col"], r["operator"], r["occurrence"]))
    seen = Counter()
    for r in rows:
        base = f"{r['module']} :: {r['operator']} :: {r['source']}"
        seen[base] += 1
        r["id"] = base if seen[base] == 1 else f"{base} #{seen[base]}"
    return rows


def _outcome(result):
    if result["worker_outcome"] != "normal" or result["test_outcome"] == "incompetent":
        return "incompetent"
    if result["test_outcome"] == "killed":
        return "timeout" if result.get("output") == "timeout" else "killed"
    return "survived"


def summarize(rows, explained, timing, not_sampled=0):
    """The JSON report: counts per module and overall, every survivor with its explanation;
    not_sampled: mutants a --sample run left unexecuted (not in the counts)."""
    per_module = defaultdict(Counter)
    for r in rows:
        per_module[r["module"]][r["outcome"]] += 1
    per_module["overall"] = sum(per_module.values(), Counter())
    counts = {m: {o: c[o] for o in OUTCOMES} | {"score": _score(c)} for m, c in per_module.items()}
    survivors = []
    for r in rows:
        if r["outcome"] == "survived":
            entry = explained.get(r["id"])
            survivors.append(r | {"kind": entry and entry["kind"], "reason": entry and entry["reason"]})
    ids = {r["id"] for r in rows}
    return dict(counts=counts, survivors=survivors, timing=timing, not_sampled=not_sampled,
                unexplained=[s["id"] for s in survivors if s["reason"] is None],
                stale_explanations=sorted(set(explained) - ids))


def _score(c):
    """Detected / (detected + survived); a timeout counts as detected (cosmic-ray's rule)."""
    detected = c["killed"] + c["timeout"]
    return round(detected / (detected + c["survived"]), 4) if detected + c["survived"] else None


def markdown(report):
    out = ["# Mutation score", "",
           "score = (killed + timeout) / (killed + timeout + survived); incompetent mutants are not counted.", "",
           "| module | killed | timeout | survived | incompetent | score |", "|---|---|---|---|---|---|"]
    for module, c in report["counts"].items():
        out.append(f"| {module} | " + " | ".join(str(c[o]) for o in (*OUTCOMES, "score")) + " |")
    out.append("")
    if report.get("not_sampled"):
        out += [f"A sample: {report['not_sampled']} more mutants were not sampled (not run, not counted).", ""]
    for t in report["timing"]:
        out.append(f"- {t['run']} run: {t['mutants']} mutants in {t['exec_s']:.0f} s ({t['per_mutant_s']:.2f} s each); "
                   f"unmutated test run {t['baseline_s']:.1f} s")
    out += ["", f"## Survivors ({len(report['survivors'])})", ""]
    for s in report["survivors"]:
        out += [f"- `{s['module']}:{s['line']}` {s['operator']} (occurrence {s['occurrence']})",
                f"  - line: `{s['source']}`", f"  - mutant: `{s['mutated']}`",
                f"  - {s['kind']}: {s['reason']}" if s["reason"] else "  - **UNEXPLAINED**"]
    if report["stale_explanations"]:
        out += ["", "Explanations matching no survivor of this run (killed now, or outside --module):", ""]
        out += [f"- `{i}`" for i in report["stale_explanations"]]
    return "\n".join(out) + "\n"
