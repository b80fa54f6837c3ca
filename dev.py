#!/usr/bin/env python3
"""Set up clickhaul in ./.venv (once, and again when pyproject.toml changes) and run a command in it.

python3 dev.py demo      # install, then `clickhaul demo`
python3 dev.py test      # install with test extras, then run the whole test suite
python3 dev.py clickhaul run pirsch ...   # any clickhaul command
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PYTHON = BIN / ("python.exe" if os.name == "nt" else "python")


def ensure_environment(extras: str) -> None:
    if sys.version_info < (3, 11):  # noqa: UP036 - dev.py may be started by an older python3
        sys.exit(f"clickhaul needs Python 3.11 or newer; this is {sys.version.split()[0]}")
    if not PYTHON.exists():
        print(f"creating virtual environment in {VENV}", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    fingerprint = hashlib.sha256((ROOT / "pyproject.toml").read_bytes() + extras.encode()).hexdigest()
    stamp = VENV / f".clickhaul-installed-{extras or 'base'}"
    if stamp.exists() and stamp.read_text() == fingerprint:
        return
    print(f"installing clickhaul{f'[{extras}]' if extras else ''} into {VENV} (first run only)", flush=True)
    target = f".[{extras}]" if extras else "."
    subprocess.run(
        [str(PYTHON), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "-e", target],
        cwd=ROOT,
        check=True,
    )
    stamp.write_text(fingerprint)


def main(argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__)
        return 0
    command, rest = argv[0], argv[1:]
    if command == "test":
        ensure_environment("test")
        args = rest or ["-n", "auto"]
        return subprocess.call([str(PYTHON), "-m", "pytest", *args], cwd=ROOT)
    ensure_environment("test" if (VENV / ".clickhaul-installed-test").exists() else "")
    if command == "clickhaul":
        command, rest = rest[0] if rest else "--help", rest[1:]
    return subprocess.call([str(BIN / "clickhaul"), command, *rest])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
