"""The mutation lane (tox -e mutation): cosmic-ray over fused_moe/, a report, a verdict.

  python tools/mutation/run.py [--module fused_moe/plans.py ...] [--out mutation-out]
  python tools/mutation/run.py --module fused_moe/sorting_kernels.py --sample 40 --sample-seed 1

Inits a cosmic-ray session from tools/mutation/cosmic-ray.toml (narrowed to --module; for
``*_kernels.py`` modules cosmic-ray-kernels.toml, whose command runs kernels),
checks the test command passes unmutated, runs every mutant with the local distributor
(through the warm pytest of pytest_server.py) and writes report.md and report.json to
--out. Exit 1 when a survivor has no explanation in tools/mutation/survivors.toml.
cosmic-ray mutates the files on disk: do not edit fused_moe/ while it runs.
"""
import argparse
import hashlib
import json
import os
import random
import shlex
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import toml  # cosmic-ray's own TOML library (it reads the config with it)

sys.path.insert(0, str(Path(__file__).resolve().parent))
import report  # noqa: E402
from pytest_server import SOCKET_ENV  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
KERNEL_SUFFIX = "_kernels.py"  # only @triton.jit code: the host command never runs it
NOT_SAMPLED = "not sampled"


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--config", type=Path, default=None,
                   help="default: cosmic-ray-kernels.toml when every --module is a *_kernels.py file, else cosmic-ray.toml")
    p.add_argument("--module", action="append", default=[], metavar="PATH",
                   help="a file or folder under the config's module-path to mutate (repeatable; default all)")
    p.add_argument("--out", type=Path, default=Path("mutation-out"))
    p.add_argument("--survivors", type=Path, default=HERE / "survivors.toml")
    p.add_argument("--resume", action="store_true", help="run only the mutants --out's session has not run")
    p.add_argument("--rerun-survivors", action="store_true",
                   help="run again only the survivors of --out's session (after adding tests)")
    p.add_argument("--report-only", action="store_true", help="rebuild the report from --out's session")
    p.add_argument("--sample", type=int, metavar="N",
                   help="run only N mutants of a new session, drawn with --sample-seed; the rest are reported as not sampled")
    p.add_argument("--sample-seed", type=int, default=0)
    args = p.parse_args(argv)
    for m in args.module:
        if not (ROOT / m).exists():
            p.error(f"--module {m}: no such file or folder")
    kernels = [m.endswith(KERNEL_SUFFIX) for m in args.module]
    if args.config is None:
        if any(kernels) and not all(kernels):
            p.error(f"--module: *{KERNEL_SUFFIX} files and host files run separate commands; give them in separate runs")
        args.config = HERE / ("cosmic-ray-kernels.toml" if args.module and all(kernels) else "cosmic-ray.toml")
    if args.sample is not None and (args.sample < 1 or args.resume or args.rerun_survivors or args.report_only):
        p.error("--sample takes N >= 1, for a new session only")
    return args


def session_config(args):
    """The config with module-path narrowed to --module; ValueError for a module outside it."""
    cfg = toml.loads(args.config.read_text())
    section = cfg["cosmic-ray"]
    roots = [Path(m) for m in ([section["module-path"]] if isinstance(section["module-path"], str)
                               else section["module-path"])]
    for m in args.module:
        if not any(Path(m) == r or r in Path(m).parents for r in roots):
            raise ValueError(f"--module {m} is outside the config's module-path {[str(r) for r in roots]}")
    if args.module:
        section["module-path"] = args.module
    return cfg


def digest(paths):
    return {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(paths)}


def main(argv=None):
    args = parse_args(argv)
    os.chdir(ROOT)
    explained = report.load_explanations(args.survivors)  # a malformed file fails before the long run
    cfg = session_config(args)
    args.out.mkdir(parents=True, exist_ok=True)
    session, cfg_path = args.out / "session.sqlite", args.out / "session.toml"
    cfg_path.write_text(toml.dumps(cfg))
    timing_path = args.out / "timing.json"
    if args.report_only and not timing_path.exists():
        raise ValueError(f"--report-only: no finished run in {args.out}")
    if not args.report_only:
        if args.rerun_survivors:
            forget_survivors(session)
        again = args.resume or args.rerun_survivors
        runs = json.loads(timing_path.read_text()) if again and timing_path.exists() else []
        timing = execute(cfg, cfg_path, session, again, args.sample, args.sample_seed)
        timing["run"] = "rerun-survivors" if args.rerun_survivors else "resume" if args.resume else "full"
        timing_path.write_text(json.dumps(runs + [timing]))  # one entry per exec on this session
    rows = report.session_rows(session)
    timing = json.loads(timing_path.read_text())
    with sqlite3.connect(session) as db:
        (not_sampled,) = db.execute("SELECT COUNT(*) FROM work_results WHERE output = ?", (NOT_SAMPLED,)).fetchone()
    result = report.summarize(rows, explained, timing, not_sampled)
    (args.out / "report.json").write_text(json.dumps(result, indent=1) + "\n")
    (args.out / "report.md").write_text(report.markdown(result))
    overall = result["counts"].get("overall", {})
    print(f"mutation score {overall.get('score')}: {overall}; report in {args.out}/report.md")
    for i in result["unexplained"]:
        print(f"UNEXPLAINED SURVIVOR: {i}", file=sys.stderr)
    return 1 if result["unexplained"] else 0


def execute(cfg, cfg_path, session, resume, sample=None, sample_seed=0):
    section = cfg["cosmic-ray"]
    sources = [p for m in ([section["module-path"]] if isinstance(section["module-path"], str)
                           else section["module-path"]) for p in ([Path(m)] if Path(m).is_file()
                                                                    else Path(m).rglob("*.py"))]
    before = digest(sources)
    if not (resume and session.exists()):
        subprocess.run(["cosmic-ray", "init", "--force", str(cfg_path), str(session)], check=True)
        if cfg["cosmic-ray"].get("filters", {}).get("operators-filter"):
            subprocess.run(["cr-filter-operators", str(session), str(cfg_path)], check=True)
        if sample is not None:
            keep_sample(session, sample, sample_seed)
    with tempfile.TemporaryDirectory() as tmp:
        sock = os.path.join(tmp, "pytest.sock")
        server = subprocess.Popen([sys.executable, str(HERE / "pytest_server.py"), "serve", sock])
        try:
            while not os.path.exists(sock):
                if server.poll() is not None:
                    raise RuntimeError("the pytest server did not start")
                time.sleep(0.2)
            env = dict(os.environ, **{SOCKET_ENV: sock})
            start = time.monotonic()
            baseline = subprocess.run(shlex.split(section["test-command"]), env=env, capture_output=True, text=True)
            baseline_s = time.monotonic() - start
            if baseline.returncode != 0:
                raise RuntimeError(f"the test command fails unmutated:\n{baseline.stdout[-3000:]}")
            pending = _pending(session)
            start = time.monotonic()
            subprocess.run(["cosmic-ray", "exec", str(cfg_path), str(session)], env=env, check=True)
            exec_s = time.monotonic() - start
        finally:
            server.terminate()
            server.wait()
    if digest(sources) != before:
        raise RuntimeError("a mutated source was left on disk: `git checkout fused_moe/` before anything else")
    return dict(baseline_s=baseline_s, exec_s=exec_s, mutants=pending, per_mutant_s=exec_s / max(pending, 1))


def keep_sample(session, n, seed):
    """Mark all but n of the pending mutants (drawn by a seeded RNG) skipped as not sampled."""
    with sqlite3.connect(session) as db:
        pending = sorted(j for (j,) in db.execute(
            "SELECT job_id FROM work_items WHERE job_id NOT IN (SELECT job_id FROM work_results)"))
        chosen = set(random.Random(seed).sample(pending, min(n, len(pending))))
        db.executemany("INSERT INTO work_results (worker_outcome, output, test_outcome, diff, job_id) "
                       "VALUES ('SKIPPED', ?, NULL, NULL, ?)", [(NOT_SAMPLED, j) for j in pending if j not in chosen])


def forget_survivors(session):
    """Mark the survivors of a session pending again, so that exec reruns just them."""
    if not session.exists():
        raise ValueError(f"--rerun-survivors: no session at {session}")
    with sqlite3.connect(session) as db:
        db.execute("DELETE FROM work_results WHERE test_outcome = 'SURVIVED'")


def _pending(session):
    dump = subprocess.run(["cosmic-ray", "dump", str(session)], check=True, capture_output=True, text=True).stdout
    return sum(json.loads(line)[1] is None for line in dump.splitlines())


if __name__ == "__main__":
    sys.exit(main())
