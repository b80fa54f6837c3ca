"""The CLI on a pseudo-terminal of a given size, and a small screen that replays what it wrote, the way a terminal
would: lines longer than the width wrap, cursor-up stops at the top of the screen, and what scrolls off the top
stays in the scrollback, where it can no longer be erased."""

from __future__ import annotations

import fcntl
import os
import re
import select
import struct
import subprocess
import sys
import termios
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from tests.support import ROOT

_ESCAPE = re.compile(rb"\x1b\[([0-9;?]*)([A-Za-z])")


@dataclass
class Screen:
    columns: int
    rows: int
    lines: list[str] = field(default_factory=lambda: [""])
    scrollback: list[str] = field(default_factory=list)
    row: int = 0
    column: int = 0
    wrapped: list[str] = field(default_factory=list)  # lines that reached the right edge and went on

    def feed(self, data: bytes) -> None:
        position = 0
        for match in _ESCAPE.finditer(data):
            self._text(data[position : match.start()].decode(errors="replace"))
            self._control(match.group(1).decode(), match.group(2).decode())
            position = match.end()
        self._text(data[position:].decode(errors="replace"))

    def _text(self, text: str) -> None:
        for char in text:
            if char == "\n":
                self._down()
            elif char == "\r":
                self.column = 0
            elif char in "\x07\x08":
                self.column = max(0, self.column - (char == "\x08"))
            elif char >= " ":
                if self.column >= self.columns:
                    self.wrapped.append(self.lines[self.row])
                    self.column = 0
                    self._down()
                line = self.lines[self.row].ljust(self.column)
                self.lines[self.row] = line[: self.column] + char + line[self.column + 1 :]
                self.column += 1

    def _down(self) -> None:
        self.row += 1
        if self.row == len(self.lines):
            self.lines.append("")
        if len(self.lines) > self.rows:
            self.scrollback.append(self.lines.pop(0))
            self.row -= 1

    def _control(self, argument: str, command: str) -> None:
        number = int(argument) if argument.isdigit() else 1
        if command == "A":
            self.row = max(0, self.row - number)
        elif command == "B":
            self.row = min(len(self.lines) - 1, self.row + number)
        elif command == "K":
            line = self.lines[self.row]
            self.lines[self.row] = line[: self.column] if argument in ("", "0") else ""
        elif command == "G":
            self.column = number - 1
        elif command == "J":
            del self.lines[self.row + 1 :]
            self.lines[self.row] = self.lines[self.row][: self.column]

    def everything(self) -> list[str]:
        return [line.rstrip() for line in self.scrollback + self.lines]


def run_in_terminal(
    args: list[str],
    env: Mapping[str, str],
    cwd: Path,
    columns: int = 80,
    rows: int = 24,
    answer: str | None = None,
    prompt: bytes = b"Continue?",
    timeout: float = 300,
) -> tuple[int, bytes]:
    """`clickhaul ARGS` with a terminal of `columns` x `rows` as stdin, stdout and stderr; `answer` is typed
    when `prompt` appears. Returns the exit status and everything written to the terminal."""
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))
    process = subprocess.Popen(
        [sys.executable, "-m", "pipelines", *args],
        stdin=slave, stdout=slave, stderr=slave, cwd=str(cwd),
        env={**os.environ, "PYTHONPATH": str(ROOT), "TERM": "xterm-256color", "COLUMNS": str(columns),
             "LINES": str(rows), **env},
        start_new_session=True,
    )  # fmt: skip
    os.close(slave)
    output = b""
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.1)
            if ready:
                try:
                    chunk = os.read(master, 65536)
                except OSError:  # the other end closed: the process is done
                    break
                if not chunk:
                    break
                output += chunk
                if answer is not None and prompt in output:
                    os.write(master, answer.encode() + b"\r")
                    answer = None
            elif process.poll() is not None:
                break
        process.wait(timeout=max(1.0, deadline - time.monotonic()))
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        os.close(master)
    return process.returncode, output
