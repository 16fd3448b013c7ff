"""Make the machine's own torch/triton/pytest/hypothesis visible inside a tox env.

GPU images ship torch and triton in their own (often virtual) environment, which a
tox venv's ``system_site_packages`` does not see when that environment is itself a
venv. This finds the first python3 on PATH outside the tox env that imports torch
and triton, and writes a .pth file pointing at its site-packages. Nothing is downloaded.
"""
import os
import pathlib
import shutil
import subprocess
import sys
import sysconfig

PROBE = "import torch, triton, pytest, hypothesis, site, sys; print('\\n'.join(site.getsitepackages()))"


def main():
    env_bin = pathlib.Path(sys.executable).parent.resolve()
    dirs = [d for d in os.environ.get("PATH", "").split(os.pathsep) if d and pathlib.Path(d).resolve() != env_bin]
    for name in ("python3", "python"):
        exe = shutil.which(name, path=os.pathsep.join(dirs))
        if exe is None:
            continue
        probe = subprocess.run([exe, "-c", PROBE], capture_output=True, text=True)
        if probe.returncode == 0:
            pth = pathlib.Path(sysconfig.get_paths()["purelib"]) / "system_gpu_stack.pth"
            pth.write_text(probe.stdout)
            print(f"using torch/triton from {exe}: {probe.stdout.split()}")
            return 0
    print("no python3 on PATH imports torch, triton, pytest and hypothesis: install them first", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
