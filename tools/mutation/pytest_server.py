"""A warm pytest for mutation runs.

Every mutant runs the same pytest selection in a fresh process, and most of a short run is
start-up: importing torch, triton, NumPy, Hypothesis and pytest (about 5 s on a shared
core, against a second or two of tests). ``serve`` imports those once; each ``run`` is then
a fork of the server that imports the project (fused_moe, as mutated on disk) from source
and calls ``pytest.main``. No project module is imported before the fork, so a mutant is
always seen.

  python tools/mutation/pytest_server.py serve SOCKET        # run.py starts and stops it
  python tools/mutation/pytest_server.py run -- PYTEST_ARGS  # the test command of a mutant

``run`` uses the server at $MOE_MUTATION_SOCKET and, without one, runs pytest in its own
process: the same command works by hand, only slower. The child is killed when the client
goes away (cosmic-ray's timeout kills the client's process group).
"""
import json
import os
import select
import signal
import socket
import sys
import tempfile

SOCKET_ENV = "MOE_MUTATION_SOCKET"


def _child(request, out_fd):
    os.setpgid(0, 0)  # its own group: a timeout kills whatever pytest started too
    os.dup2(out_fd, 1)
    os.dup2(out_fd, 2)
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    sys.dont_write_bytecode = True  # a mutant's bytecode must never be cached on disk
    sys.path[:0] = [request["cwd"]]
    import pytest
    code = pytest.main(request["args"])
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(int(code))


def _serve_one(conn):
    request = json.loads(conn.makefile("rb").readline())
    with tempfile.TemporaryFile() as out:
        pid = os.fork()
        if pid == 0:
            try:
                _child(request, out.fileno())
            finally:
                os._exit(70)
        try:
            os.setpgid(pid, pid)  # here too: a kill right after the fork must reach the child's group
        except OSError:
            pass  # the child got there first
        while True:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                break
            if select.select([conn], [], [], 0.05)[0]:  # readable before a reply: the client is gone
                os.killpg(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                return
        out.seek(0)
        reply = {"code": os.waitstatus_to_exitcode(status), "output": out.read().decode(errors="replace")}
    conn.sendall(json.dumps(reply).encode() + b"\n")


def serve(path):
    import hypothesis  # noqa: F401  the slow imports, done once
    import numpy  # noqa: F401
    import pytest  # noqa: F401
    import torch
    import triton  # noqa: F401
    import triton.language  # noqa: F401
    torch.set_num_threads(1)  # the lane's rule: one core
    server = socket.socket(socket.AF_UNIX)
    server.bind(path)
    server.listen(1)
    while True:
        conn, _ = server.accept()
        with conn:
            try:
                _serve_one(conn)
            except (OSError, ValueError):
                pass  # a client that vanished mid-reply, or sent garbage: next one


def run(args):
    path = os.environ.get(SOCKET_ENV)
    request = {"args": args, "cwd": os.getcwd(), "env": dict(os.environ)}
    try:
        conn = socket.socket(socket.AF_UNIX)
        conn.connect(path or "")
    except OSError:  # no server: a cold run, same result
        import pytest
        return int(pytest.main(args))
    conn.sendall(json.dumps(request).encode() + b"\n")
    reply = json.loads(conn.makefile("rb").readline() or b'{"code": 70, "output": "server died"}')
    sys.stdout.write(reply["output"])
    return reply["code"]


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) == 2 and argv[0] == "serve":
        return serve(argv[1])
    if argv[:2] == ["run", "--"]:
        return run(argv[2:])
    sys.stderr.write(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main())
