"""Many independent request chains (a site's day, a domain's day), several at once, yielded as they arrive.

A vendor answers one request in tens to hundreds of milliseconds, and a backfill is thousands of them: read one at
a time, a run waits on the network. Read in parallel through a small queue, memory holds a few pages, whatever
the number of jobs or the size of the range.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

Job = TypeVar("Job")
Item = TypeVar("Item")

_DONE = object()  # one per job, so the consumer knows when every job has ended


class _Failure:
    """A job's error, handed to the consumer through the queue: it arrives before that job's _DONE, so the
    consumer cannot miss it (a future is marked failed only after its job's last put)."""

    def __init__(self, error: BaseException) -> None:
        self.error = error


def fan_out(
    jobs: Sequence[Job],
    read: Callable[[Job], Iterable[Item]],
    workers: int,
    name: str,
    on_stop: Callable[[], None] | None = None,
) -> Iterator[Item]:
    """Every item of `read(job)` for every job, `workers` jobs at a time, in arrival order.

    The first failing job ends the iteration with its own error; closing the iterator early stops the workers
    after the item they hold. A job that blocks inside `read` without yielding (a long server-side calculation)
    would hold that up: `on_stop` is called when the iteration ends early, before the workers are waited for, to
    wake such jobs. With one worker the jobs run in order, in the caller's thread."""
    if workers <= 1 or len(jobs) <= 1:
        for job in jobs:
            yield from read(job)
        return
    yield from _threaded(jobs, read, workers, 2 * workers, name, on_stop)


def read_ahead(items: Iterable[Item], name: str, depth: int = 1) -> Iterator[Item]:
    """`items` produced by a thread of their own, up to `depth` ahead: a sequential walk (page after page) fetches
    the next page while the caller converts and writes this one."""
    return _threaded([items], iter, 1, depth, name)


def _threaded(
    jobs: Sequence[Job],
    read: Callable[[Job], Iterable[Item]],
    workers: int,
    buffered: int,
    name: str,
    on_stop: Callable[[], None] | None = None,
) -> Iterator[Item]:
    items: queue.Queue[object] = queue.Queue(maxsize=buffered)
    stop = threading.Event()

    def offer(item: object) -> bool:
        while not stop.is_set():
            try:
                items.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def run(job: Job) -> None:
        try:
            if stop.is_set():
                return  # a job failed, or the consumer left: jobs not started yet stay unstarted
            for item in read(job):
                if not offer(item):
                    return
        except BaseException as error:
            stop.set()
            items.put(_Failure(error))
        finally:
            items.put(_DONE)  # the queue always has room for it: see the drain below

    with ThreadPoolExecutor(min(workers, len(jobs)), thread_name_prefix=name) as pool:
        futures: list[Future[None]] = [pool.submit(run, job) for job in jobs]
        finished = 0
        try:
            while finished < len(futures):
                item = items.get()
                if item is _DONE:
                    finished += 1
                    continue
                if isinstance(item, _Failure):
                    raise item.error  # a worker's error ends the run at once, with that error
                yield item  # type: ignore[misc]
        finally:
            stop.set()
            for future in futures:
                future.cancel()
            if on_stop is not None and finished < len(futures):
                on_stop()
            while any(not future.done() for future in futures):  # let blocked workers finish their put
                try:
                    items.get(timeout=0.05)
                except queue.Empty:
                    pass
