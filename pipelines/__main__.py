"""`python -m pipelines` and the `clickhaul` command."""

from __future__ import annotations

import os
import sys

from pipelines.dlt_settings import leave_out_httpx_cli
from pipelines.interrupt import install_early
from sources.common.monitor import mark_command_start


def main() -> None:
    """Ctrl-C is handled from the first instant, the CLI's imports come after; and the process ends as soon as the
    command has: after the exit handlers, the interpreter's teardown of dlt's, pyarrow's and duckdb's modules takes
    a noticeable moment, during which Python has already given SIGINT back to the system's default."""
    install_early()
    mark_command_start()
    leave_out_httpx_cli()
    from pipelines.cli import main as cli_main

    try:
        cli_main()
        status = 0
    except SystemExit as exit:
        if isinstance(exit.code, str):
            print(exit.code, file=sys.stderr)
        status = exit.code if isinstance(exit.code, int) else (0 if exit.code is None else 1)
    import atexit
    import logging

    atexit._run_exitfuncs()  # what libraries and callers registered still runs (dlt's, a wrapper's report)
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe: nothing left to say
            pass
    os._exit(status)


if __name__ == "__main__":
    main()
