"""Simulators for the benchmark, each in a process of its own so the server's work does not share the measured
process's interpreter (the GIL) with the client being measured."""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from simulators.harness import SimulatorServer

Factory = Callable[[], SimulatorServer]


def _serve(factory: Factory, urls: multiprocessing.Queue[str]) -> None:
    try:
        simulator = factory().start()
    except BaseException as error:
        urls.put(f"error: {type(error).__name__}: {error}")
        raise
    urls.put(simulator.url)
    simulator.serve_forever()


@contextmanager
def served(factory: Factory) -> Iterator[str]:
    """Start `factory()` in a forked process; yield its base URL; stop it afterwards."""
    context: Any = multiprocessing.get_context("fork")
    urls: multiprocessing.Queue[str] = context.Queue()
    process = context.Process(target=_serve, args=(factory, urls), daemon=True)
    process.start()
    try:
        url = urls.get(timeout=300)
        if url.startswith("error: "):
            raise RuntimeError(f"the simulator did not start: {url[7:]}")
        yield url
    finally:
        process.terminate()
        process.join(timeout=10)
