"""The push engine every write-back destination shares: rows in chunks → hits → validation → ledger filter →
per-visitor shards → parallel workers.

Every visitor's hits go to one shard (a stable hash of the visitor id the target names), and each worker sends its
shard's batches one after another, a batch only after the outcome of the previous one is known: a visitor's hits
reach the destination in the order they were read. Batches are recorded in flight as they are queued, and
acknowledgements are written by a ledger thread, so a worker touches the ledger between two sends only after an
unknown outcome. Memory holds one chunk of rows plus a few batches per worker, however large the table.

Exactly once: a batch is recorded in flight before it is sent (when it is queued). Its outcome is stored (the
answer says so), refused (nothing can have been stored: sent again after a pause) or unknown (5xx, an answer lost,
cut or late, a crash): then the destination is read back (`Target.check`), the hits it holds enter the ledger, and
only the missing ones are sent again. A run first settles the batches a crashed run left in flight.

What differs between destinations is a `Target`: how a raw hit is checked and encoded, how one batch is sent and
what its answer means, and how a batch in an unknown state is read back.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import queue
import random
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import orjson

from sources.common.clock import Clock, today_utc, wall_time
from sources.common.counters import Counters
from sources.common.errors import TransientError
from sources.common.http import RetryPolicy
from sources.common.monitor import current_monitor

from .ledger import Acknowledgement, Flight, Ledger, Rejection

log = logging.getLogger("clickhaul.push")

QUEUE_BATCHES_PER_WORKER = 4  # batches waiting per worker before the reader pauses
CLIENT_ERROR_ATTEMPTS = 3  # HTTP 4xx (other than a first batch's) is retried this often, then fatal
_IDENTITY_SKIP = frozenset({"_dlt_load_id"})


class InvalidHit(ValueError):
    """One hit cannot be sent; the message is the reason recorded in the rejected (dead-letter) table."""


@dataclass(frozen=True)
class BulkOutcome:
    """What became of one batch: "stored" (the answer says so), "refused" (nothing can have been stored) or
    "unknown" (only reading the destination back can tell)."""

    state: str  # "stored" | "refused" | "unknown"
    tracked: int = 0
    invalid: int = 0
    invalid_indices: list[int] | None = None
    answered: bool = True  # False: no answer came (timeout, connection lost): the server may still be working
    retry_after: float | None = None
    reason: str = ""
    reasons: Mapping[int, str] | None = None  # why the hit at each of `invalid_indices` was not stored


@dataclass
class Verdict:
    """A batch in an unknown state, read back: which of its hits the destination holds."""

    stored: list[int]  # positions in the batch of hits the destination holds
    missing: list[int]  # positions of hits it does not hold, or that cannot be checked (see `unverifiable`)
    queries: int
    unverifiable: int = 0  # hits among `missing` that leave nothing to find (Matomo: goals, orders, pings)
    without_visitor: int = 0  # hits looked for by time span only


@dataclass(frozen=True, slots=True)
class Prepared:
    """One raw hit, checked and encoded by its target."""

    request: str  # what is sent (and kept in flight), e.g. a JSON object
    visitor: str  # the shard key: a visitor's hits keep their order
    site: str  # the site or website it goes to
    day: str  # its UTC day (YYYY-MM-DD), "" when it carries no time


@dataclass(frozen=True, slots=True)
class Hit:
    hit_id: str
    visitor: str  # the shard key
    request: str  # one request as sent
    row: Mapping[str, Any]  # the source row, for the rejected table
    site: str
    day: str  # the UTC day of the hit (YYYY-MM-DD), "" when it has none


class Target(Protocol):
    """One destination as the engine sees it."""

    @property
    def vendor(self) -> str:
        """ "matomo", "umami", "pirsch": names logs, summaries and the ledger's schema."""

    @property
    def url(self) -> str:
        """Where hits go: part of every hit id, and the ledger's `target`."""

    @property
    def clock(self) -> Clock: ...

    @property
    def retry(self) -> RetryPolicy: ...

    @property
    def stats(self) -> Any:
        """Request counters (`requests`, `retries`) of the target's HTTP client."""

    def prepare(self, raw: Mapping[str, Any], hit_id: str, now: float) -> Prepared:
        """Check and encode one raw hit; `InvalidHit` names why it cannot be sent."""

    def locate(self, request: str) -> tuple[str, str]:
        """(site, UTC day) of a request kept in flight by a crashed run."""

    def send(
        self, requests: Sequence[str], is_first: Callable[[], bool], on_sent: Callable[[], None] | None
    ) -> BulkOutcome:
        """Send one batch once; raise only for what no repeat can fix (credentials, configuration)."""

    def check(self, requests: Sequence[str], sent_on: dt.date) -> Verdict:
        """Read the destination back: which of these requests (one batch, in order) does it hold?"""


@dataclass
class PushOptions:
    batch_size: int
    workers: int
    reconcile_delay: float
    queued: bool = False  # the destination queues hits: its answers' counts may differ from the batch's size


@dataclass
class PushSummary(Counters):
    source: str
    tracking_url: str
    mapping: str
    load_id: str
    vendor: str = "matomo"
    rows: int = 0
    hits: int = 0
    already_acknowledged: int = 0
    sent: int = 0
    tracked: int = 0
    rejected_client: int = 0
    rejected_server: int = 0
    batches: int = 0
    requests: int = 0
    retried: int = 0
    lost_answers: int = 0
    unknown_outcomes: int = 0  # sends whose outcome only reading the destination back could tell
    reconciled_batches: int = 0
    reconciliation_requests: int = 0
    found_stored: int = 0  # hits found already in the destination, not sent again
    resent: int = 0  # hits sent again because the destination did not hold them
    resent_unverified: int = 0  # of `resent`: hits that leave nothing to find (Matomo: goals, orders, pings)
    found_by_time_only: int = 0  # hits without a visitor id, looked for by time span alone
    recovered_batches: int = 0  # batches a crashed run left in flight, settled first
    seconds: float = 0.0
    backdated: dict[str, set[str]] = field(default_factory=dict)  # site -> UTC days before today with new hits
    invalidated: dict[str, list[str]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)  # destination-specific lines for `render`

    def note_backdated(self, hits: Iterable[Hit], today: str) -> None:
        """Days of hits the destination holds (acknowledged or found stored), before today."""
        days = {(hit.site, hit.day) for hit in hits if hit.day and hit.site and hit.day < today}
        with self._lock:
            for site, day in days:
                self.backdated.setdefault(site, set()).add(day)

    @property
    def rejected(self) -> int:
        return self.rejected_client + self.rejected_server

    @property
    def hits_per_second(self) -> float:
        return self.sent / self.seconds if self.seconds > 0 else 0.0

    def render(self) -> str:
        name = self.vendor.title()
        lines = [
            f"{self.vendor}: {self.source} → {self.tracking_url} (mapping {self.mapping}, load {self.load_id})",
            f"  rows {self.rows:,}, hits {self.hits:,}, already acknowledged earlier {self.already_acknowledged:,}",
            f"  sent {self.sent:,}, tracked {self.tracked:,}, rejected {self.rejected:,} "
            f"(before sending {self.rejected_client:,}, by {name} {self.rejected_server:,})",
            f"  {self.batches:,} batches in {self.requests:,} requests ({self.retried:,} retried), "
            f"{self.seconds:.1f} s, {self.hits_per_second:,.0f} hits/s",
        ]
        if self.reconciled_batches or self.recovered_batches:
            lines.append(
                f"  reconciled {self.reconciled_batches:,} batch(es) whose outcome was unknown "
                f"({self.recovered_batches:,} left in flight by an earlier run; {self.lost_answers:,} answer(s) "
                f"lost; {self.reconciliation_requests:,} read-back request(s)): {self.found_stored:,} hits found "
                f"already stored, {self.resent:,} sent again"
            )
        if self.resent_unverified:
            lines.append(
                f"  warning: {self.resent_unverified:,} hit(s) of unknown batches record no page view in {name} "
                "(goal conversions, orders, pings) and were sent again unverified; Matomo counts an order id once "
                "and a goal once per visit"
            )
        if self.found_by_time_only:
            lines.append(
                f"  warning: {self.found_by_time_only:,} hit(s) without a visitor id (_id, cid, uid) were looked "
                "for in every visit of their days (no visitor segment): add a visitor id to keep read-backs small"
            )
        for site, days in sorted(self.invalidated.items()):
            lines.append(f"  invalidated archived reports of site {site} for {len(days)} day(s): {', '.join(days)}")
        lines.extend(f"  {note}" for note in self.notes)
        return "\n".join(lines)


def encode_request(params: Mapping[str, Any]) -> str:
    """One request as a JSON object: encoded once, kept as it is in the ledger while in flight."""
    return orjson.dumps(params).decode()


def json_row(row: Mapping[str, Any]) -> str:
    """A row as JSON. Also the identity of rows without key columns: its exact text is part of their hit ids
    in every ledger written so far, so it must not change."""
    return json.dumps(row, default=str, ensure_ascii=False, sort_keys=True)


def row_identity(row: Mapping[str, Any], key_columns: tuple[str, ...]) -> str:
    """What identifies a row across runs: its key columns, else dlt's row id, else the whole row."""
    if key_columns and all(row.get(column) is not None for column in key_columns):
        return json.dumps([str(row[column]) for column in key_columns])
    if row.get("_dlt_id") is not None:
        return f"_dlt_id:{row['_dlt_id']}"
    return json_row({k: v for k, v in row.items() if k not in _IDENTITY_SKIP})


def hit_id_of(identity: str, index: int) -> str:
    return hashlib.sha256(f"{identity}\x1f{index}".encode()).hexdigest()[:32]


def shard_of(visitor: str, shards: int) -> int:
    return int.from_bytes(hashlib.blake2b(visitor.encode(), digest_size=8).digest(), "big") % shards


def batch_hash(hit_ids: Sequence[str]) -> str:
    return hashlib.sha256("\n".join(hit_ids).encode()).hexdigest()


class RowMapper(Protocol):
    """How a row becomes raw hits (a destination's mappings)."""

    @property
    def name(self) -> str: ...

    @property
    def to_hits(self) -> Callable[[Mapping[str, Any]], list[dict[str, Any]]]: ...


class _Stop(Exception):
    pass


Launched = tuple[list[Hit], Flight]


class Slot:
    """One queued batch's place in its worker's queue, given back once (when sent, or when dropped)."""

    def __init__(self, slots: threading.Semaphore) -> None:
        self._slots: threading.Semaphore | None = slots

    def release(self) -> None:
        slots, self._slots = self._slots, None
        if slots is not None:
            slots.release()


class LedgerWriter:
    """One thread that writes acknowledged batches to the ledger, off the workers' path between two sends."""

    def __init__(self) -> None:
        self._jobs: queue.Queue[Callable[[], object] | None] = queue.Queue()
        self._errors: list[BaseException] = []
        self._thread = threading.Thread(target=self._run, name="ledger-writer", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while (job := self._jobs.get()) is not None:
            if self._errors and job.__name__ != "set":
                continue
            try:
                job()
            except BaseException as error:
                self._errors.append(error)

    def submit(self, job: Callable[[], object]) -> None:
        self._jobs.put(job)

    def wait(self) -> None:
        """Until every write submitted so far is done (or failed: then raise its error)."""
        done = threading.Event()
        self._jobs.put(done.set)
        done.wait()
        if self._errors:
            raise self._errors[0]

    def close(self, errors: list[BaseException]) -> None:
        """Wait for every write; its first failure joins `errors`."""
        self._jobs.put(None)
        self._thread.join()
        errors.extend(self._errors)


class Pusher:
    """Sends the rows of one source through one target into one ledger."""

    def __init__(
        self,
        options: PushOptions,
        target: Target,
        ledger: Ledger,
        *,
        now: Any = wall_time,
        progress_task: str | None = None,
    ) -> None:
        self.options = options
        self.target = target
        self.ledger = ledger
        self.now = now
        self.vendor = target.vendor
        self.progress_task = progress_task or target.vendor
        self._errors: list[BaseException] = []
        self._stop = threading.Event()
        self._acknowledged_any = threading.Event()

    # -- building hits ----------------------------------------------------------------------------------
    def build(
        self,
        rows: list[dict[str, Any]],
        row_mapping: RowMapper,
        source: str,
        key_columns: tuple[str, ...],
        now: float,
        summary: PushSummary,
    ) -> tuple[list[Hit], list[Rejection]]:
        """Hits of one chunk that still need sending; hits the destination holds from an earlier run are skipped
        before they are even validated."""
        candidates: list[tuple[str, dict[str, Any], Mapping[str, Any]]] = []
        rejections: list[Rejection] = []
        prefix = f"{self.target.url}\x1f{source}\x1f{row_mapping.name}\x1f"
        for row in rows:
            identity = prefix + row_identity(row, key_columns)
            try:
                raw_hits = row_mapping.to_hits(row)
            except (ValueError, TypeError) as error:
                rejections.append(
                    Rejection(source, "client", f"row cannot be mapped: {error}", None, json_row(row), None)
                )
                continue
            for index, raw in enumerate(raw_hits):
                candidates.append((hit_id_of(identity, index), raw, row))
        known = self.ledger.acknowledged([hit_id for hit_id, _, _ in candidates])
        hits: list[Hit] = []
        for hit_id, raw, source_row in candidates:
            if hit_id in known:
                continue
            try:
                prepared = self.target.prepare(raw, hit_id, now)
            except ValueError as error:
                rejections.append(Rejection(source, "client", str(error), hit_id, json_row(source_row), None))
                continue
            hits.append(Hit(hit_id, prepared.visitor, prepared.request, source_row, prepared.site, prepared.day))
        summary.add(hits=len(candidates), already_acknowledged=len(known), rejected_client=len(rejections))
        return hits, rejections

    # -- the run ----------------------------------------------------------------------------------------
    def push(
        self,
        chunks: Iterable[list[dict[str, Any]]],
        row_mapping: RowMapper,
        source: str,
        *,
        key_columns: tuple[str, ...] = (),
        total_rows: int | None = None,
    ) -> PushSummary:
        summary = PushSummary(source, self.target.url, row_mapping.name, self.ledger.load_id, vendor=self.vendor)
        monitor = current_monitor()
        monitor.task(self.progress_task, total_rows)
        began = time.monotonic()
        stats = self.target.stats
        requests_before, retries_before = stats.requests, stats.retries
        self.writer = LedgerWriter()
        try:
            self.recover(source, summary)  # before reading: these hits are not in the ledger yet
            self.writer.wait()
            self.ledger.prepare(source)
            self._run(chunks, row_mapping, source, key_columns, summary)
        finally:
            errors: list[BaseException] = []
            self.writer.close(errors)
            summary.seconds = time.monotonic() - began
            summary.requests = stats.requests - requests_before
            summary.retried = stats.retries - retries_before
        if errors:
            raise errors[0]
        return summary

    def recover(self, source: str, summary: PushSummary) -> None:
        """Settle the batches a crashed or failed run left in flight: what the destination holds of them enters the
        ledger, the rest is sent now, oldest first, before any newer hit of their visitors."""
        flights = self.ledger.in_flight(source)
        if flights:
            # A batch may have been sent the moment before the crash (the ledger knows when it was queued, not
            # when it left): give the server `reconcile_delay` from now, as after a lost answer.
            self._wait_until(wall_time() + self.options.reconcile_delay)
        for flight in flights:
            hits = [
                Hit(hit_id, "", request, {}, *self.target.locate(request))
                for hit_id, request in zip(flight.hit_ids, flight.requests, strict=True)
            ]
            missing = self._reconcile(flight, hits, summary, lost_answers=0)
            summary.add(recovered_batches=1)
            if missing:
                self._deliver(missing, summary, source, resending=True)

    def _run(
        self,
        chunks: Iterable[list[dict[str, Any]]],
        row_mapping: RowMapper,
        source: str,
        keys: tuple[str, ...],
        summary: PushSummary,
    ) -> None:
        options = self.options
        monitor = current_monitor()
        queues: list[queue.Queue[Launched | None]] = [queue.Queue() for _ in range(options.workers)]
        # A worker frees a slot once a batch's body is on the wire: the reader builds while the worker waits for
        # the destination, not while it sends (both need the GIL).
        self._slots = [threading.Semaphore(QUEUE_BATCHES_PER_WORKER) for _ in range(options.workers)]
        threads = [
            threading.Thread(
                target=self._work, args=(n, q, summary, source), name=f"{self.vendor}-worker-{n}", daemon=True
            )
            for n, q in enumerate(queues)
        ]
        for thread in threads:
            thread.start()
        buffers: list[list[Hit]] = [[] for _ in range(options.workers)]
        try:
            for rows in chunks:
                if self._stop.is_set():
                    break
                hits, rejections = self.build(rows, row_mapping, source, keys, self.now(), summary)
                self.ledger.reject(rejections)
                summary.add(rows=len(rows))
                for hit in hits:
                    shard = shard_of(hit.visitor, options.workers) if options.workers > 1 else 0
                    buffers[shard].append(hit)
                    if len(buffers[shard]) >= options.batch_size:
                        self._put(queues[shard], shard, buffers[shard], source)
                        buffers[shard] = []
                monitor.advance(self.progress_task, windows=len(rows), rows=len(rows))
            for shard, buffer in enumerate(buffers):
                if buffer:
                    self._put(queues[shard], shard, buffer, source)
        except _Stop:
            pass
        except BaseException as error:
            self._errors.append(error)
            self._stop.set()
        finally:
            for q in queues:
                q.put(None)
            for thread in threads:
                thread.join()
        if self._errors:
            raise self._errors[0]

    def _launch(self, batch: list[Hit], source: str) -> Launched:
        """Record a batch in flight as it is queued (the reader's time, not the worker's): between two batches a
        worker then writes nothing to the ledger before sending."""
        return batch, self.ledger.launch(source, [hit.hit_id for hit in batch], [hit.request for hit in batch])

    def _put(self, q: queue.Queue[Launched | None], shard: int, batch: list[Hit], source: str) -> None:
        while not self._slots[shard].acquire(timeout=0.2):
            if self._stop.is_set():
                raise _Stop()
        q.put(self._launch(batch, source))

    def _work(self, shard: int, q: queue.Queue[Launched | None], summary: PushSummary, source: str) -> None:
        slots = self._slots[shard]
        while (launched := q.get()) is not None:
            batch, flight = launched
            slot = Slot(slots)
            try:
                if self._stop.is_set():
                    # Sending past a failed batch would break its visitors' order: the next run sends it.
                    self.ledger.settle(flight, None)
                    continue
                self._deliver(batch, summary, source, flight=flight, on_sent=slot.release)
            except BaseException as error:
                self._errors.append(error)
                self._stop.set()
            finally:
                slot.release()

    # -- one batch, until the destination holds all of it ---------------------------------------------------
    def _deliver(
        self, batch: list[Hit], summary: PushSummary, source: str, *, flight: Flight | None = None,
        resending: bool = False, on_sent: Callable[[], None] | None = None,
    ) -> None:  # fmt: skip
        """Send `batch` until every hit of it is stored (or reported invalid); each send recorded in flight
        first. An unknown outcome is read back, and only the hits the destination lacks go out again."""
        pending = batch
        if not resending:
            summary.add(batches=1, sent=len(batch))
        attempts = refusals = 0
        target = self.target
        while pending:
            attempts += 1
            if flight is None:
                flight = self._launch(pending, source)[1]
            started = wall_time()
            outcome = target.send(
                flight.requests, is_first=lambda: not self._acknowledged_any.is_set(), on_sent=on_sent
            )
            if outcome.state == "stored":
                self._stored(flight, pending, outcome, summary, source)
                return
            if outcome.state == "refused":
                self.ledger.settle(flight, None)  # nothing can have been stored
                refusals += 1
                if refusals >= CLIENT_ERROR_ATTEMPTS and outcome.retry_after is None and "HTTP 4" in outcome.reason:
                    raise TransientError(f"{self.vendor}: a batch was refused {refusals} times: {outcome.reason}")
            else:
                summary.add(unknown_outcomes=1, lost_answers=0 if outcome.answered else 1)
                if not outcome.answered:  # the server may still be working on it
                    self._wait_until(started + self.options.reconcile_delay)
                pending = self._reconcile(flight, pending, summary, lost_answers=0 if outcome.answered else 1)
                if not pending:
                    return
            flight = None
            if attempts >= target.retry.max_attempts:
                raise TransientError(
                    f"{self.vendor}: gave up on a batch after {attempts} attempts ({outcome.reason}); {len(pending)} "
                    f"hit(s) are not stored and will be sent by the next run"
                )
            target.stats.add(retries=1)
            current_monitor().count(retries=1)
            delay = outcome.retry_after if outcome.retry_after is not None else self._backoff(attempts)
            log.info("%s: batch %s (%s); sending %d hit(s) again in %.1f s", self.vendor, outcome.state,
                     outcome.reason, len(pending), delay)  # fmt: skip
            target.clock.sleep(delay)

    def _stored(
        self, flight: Flight, batch: list[Hit], outcome: BulkOutcome, summary: PushSummary, source: str
    ) -> None:
        """The batch is stored. Its ledger write goes to the writer thread while this worker sends its next
        batch: until written, the batch stays in flight, and a crash in between only costs a read-back."""
        ack = Acknowledgement(batch_hash(flight.hit_ids), flight.hit_ids, source, outcome.tracked, outcome.invalid, 0)
        rejections = self.server_rejections(batch, outcome, source)

        def write() -> None:
            self.ledger.settle(flight, ack)
            self.ledger.reject(rejections)

        self.writer.submit(write)
        self._acknowledged_any.set()
        if outcome.tracked:
            summary.note_backdated(batch, today_utc().isoformat())
        summary.add(tracked=outcome.tracked, rejected_server=outcome.invalid)
        if outcome.tracked + outcome.invalid != len(batch) and not self.options.queued:
            log.warning(
                "%s: a batch of %d hits was answered tracked %d, invalid %d",
                self.vendor,
                len(batch),
                outcome.tracked,
                outcome.invalid,
            )

    def _reconcile(self, flight: Flight, batch: list[Hit], summary: PushSummary, lost_answers: int) -> list[Hit]:
        """Read the destination back for a batch in an unknown state; the hits it holds enter the ledger; return
        the rest."""
        sent_on = dt.datetime.fromtimestamp(flight.sent_at, dt.UTC).date()
        verdict = self.target.check([hit.request for hit in batch], sent_on)
        found = [batch[i] for i in verdict.stored]
        ack = None
        if found:
            ids = [hit.hit_id for hit in found]
            ack = Acknowledgement(
                batch_hash(ids), ids, flight.source, len(found), 0, lost_answers, found_stored=len(found),
                reconciled=True,
            )  # fmt: skip
        self.ledger.settle(flight, ack)
        summary.note_backdated(found, today_utc().isoformat())
        missing = [batch[i] for i in verdict.missing]
        summary.add(
            reconciled_batches=1,
            reconciliation_requests=verdict.queries,
            found_stored=len(found),
            tracked=len(found),
            resent=len(missing),
            resent_unverified=verdict.unverifiable,
            found_by_time_only=verdict.without_visitor,
        )
        current_monitor().count(requests=verdict.queries)
        log.info("%s: read back a batch of %d: %d stored, %d missing", self.vendor, len(batch), len(found),
                 len(missing))  # fmt: skip
        return missing

    def _backoff(self, attempt: int) -> float:
        policy = self.target.retry
        return random.uniform(policy.base_delay / 2, min(policy.max_delay, policy.base_delay * 2 ** (attempt - 1)))

    def _wait_until(self, moment: float) -> None:
        delay = moment - wall_time()
        if delay > 0:
            self.target.clock.sleep(delay)

    def server_rejections(self, batch: list[Hit], result: BulkOutcome, source: str) -> list[Rejection]:
        if not result.invalid:
            return []
        name = self.vendor.title()
        if result.invalid_indices is not None:
            reasons = result.reasons or {}
            return [
                Rejection(source, "server", reasons.get(i, f"{name} reported this hit invalid"), batch[i].hit_id,
                          json_row(batch[i].row), batch[i].request)
                for i in result.invalid_indices
                if 0 <= i < len(batch)
            ]  # fmt: skip
        # Without a super-user token Matomo says how many, not which: record the batch once.
        return [
            Rejection(
                source,
                "server",
                f"{name} reported {result.invalid} of {len(batch)} hits of this batch invalid without saying "
                "which (invalid_indices needs a super-user token_auth)",
                None,
                "[" + ",".join(json_row(hit.row) for hit in batch) + "]",
                "\n".join(hit.request for hit in batch),
            )
        ]
