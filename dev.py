#!/usr/bin/env python3
"""Set up clickhaul in ./.venv (once, and again when pyproject.toml changes) and run a command in it.

python3 dev.py demo      # install, then `clickhaul demo`
python3 dev.py test      # install with test extras, then run the whole test suite
python3 dev.py test --fast   # the inner loop: everything but the `slow` tests (chaos, kills, PostgreSQL, Airflow)
python3 dev.py calendar  # the date-dependent tests (marker `calendar`) as of each hard day (DST, year ends, leap day)
python3 dev.py calendar 2027-03-28 2028-02-29   # ... as of these days (CLICKHAUL_TODAY)
python3 dev.py clickhaul run pirsch ...   # any clickhaul command
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tempfile
import time
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


# The days a calendar bug shows on: Europe's and the US's DST changes and the day after each, year ends, a leap day
# and the day after it, the last day of a 30-day month; and one instant where UTC and Europe are in different years.
HARD_DAYS = (
    "2027-03-14", "2027-03-15", "2027-03-28", "2027-03-29", "2027-10-31", "2027-11-01", "2027-11-07", "2027-11-08",
    "2027-01-01", "2027-12-31", "2028-02-29", "2028-03-01", "2027-04-30", "2027-12-31T23:30:00+00:00",
)  # fmt: skip


def calendar_files() -> list[str]:
    """The test files that hold `calendar` tests: each day's run imports only these (collecting all costs seconds)."""
    listed = subprocess.run(
        [str(PYTHON), "-m", "pytest", "-q", "--collect-only", "-m", "calendar", "-p", "no:cacheprovider"],
        cwd=ROOT, capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    return sorted({line.split("::")[0] for line in listed.splitlines() if "::" in line})


def run_calendar(days: list[str], parallel: int = 3) -> int:
    """The tests marked `calendar`, once per day with CLICKHAUL_TODAY set, `parallel` days at a time (a third of
    a calendar test's time is spent waiting on servers and subprocesses, so three days share two cores well)."""
    logs = Path(tempfile.mkdtemp(prefix="clickhaul-calendar-"))
    files = calendar_files()
    pending = list(days)
    running: dict[str, subprocess.Popen[bytes]] = {}
    failed: list[str] = []
    began = time.monotonic()
    while pending or running:
        while pending and len(running) < parallel:
            day = pending.pop(0)
            command = [str(PYTHON), "-m", "pytest", "-q", "-m", "calendar", "-p", "no:cacheprovider",
                       f"--basetemp={logs / day}", *files]  # fmt: skip
            with open(logs / f"{day}.log", "wb") as log:
                env = {**os.environ, "CLICKHAUL_TODAY": day}
                running[day] = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        time.sleep(0.5)
        for day, process in list(running.items()):
            if process.poll() is not None:
                del running[day]
                last = (logs / f"{day}.log").read_text(errors="replace").strip().splitlines()[-1:]
                print(f"as of {day}: {last[0] if last else '?'}", flush=True)
                if process.returncode != 0:
                    failed.append(day)
                    print((logs / f"{day}.log").read_text(errors="replace")[-6000:], flush=True)
    print(f"{len(days) - len(failed)} of {len(days)} days passed in {time.monotonic() - began:.0f} s (logs in {logs})")
    return 1 if failed else 0


def main(argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__)
        return 0
    command, rest = argv[0], argv[1:]
    if command == "calendar":
        ensure_environment("test")
        return run_calendar(rest or list(HARD_DAYS))
    if command == "test":
        ensure_environment("test")
        fast = "--fast" in rest
        rest = [arg for arg in rest if arg != "--fast"]
        # One worker more than cores: a third of the suite's time is spent waiting on simulators, subprocesses and
        # deadlines, and work stealing keeps the long tests from leaving a worker idle at the end (8.7 min against
        # 12.9 with `-n auto` on 2 cores).
        workers = ["-n", str((os.cpu_count() or 2) + 1), "--dist", "worksteal"]
        args = (rest or workers) + (["-m", "not slow"] if fast else [])
        return subprocess.call([str(PYTHON), "-m", "pytest", *args], cwd=ROOT)
    ensure_environment("test" if (VENV / ".clickhaul-installed-test").exists() else "")
    if command == "clickhaul":
        command, rest = rest[0] if rest else "--help", rest[1:]
    return subprocess.call([str(BIN / "clickhaul"), command, *rest])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
