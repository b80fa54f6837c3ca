"""The push engine: rows in chunks → hits → validation → ledger filter → per-visitor shards → parallel workers.

Every visitor's hits go to one shard (a stable hash of `_id`, `cid`, `uid` or the IP), and each worker sends its
shard's batches one after another, a batch only after the previous one was acknowledged and written to the
ledger: a visitor's hits reach Matomo in the order they were read. Memory holds one chunk of rows plus a few
batches per worker, however large the table.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import queue
import re
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, quote

from sources.common.clock import today_utc, wall_time
from sources.common.monitor import current_monitor

from .client import BulkResult, MatomoTracker
from .ledger import Acknowledgement, Ledger, Rejection
from .mappings import RowMapping
from .settings import QUEUE_BATCHES_PER_WORKER
from .validation import HitRules, InvalidHit, prepare_hit

log = logging.getLogger("clickhaul.matomo")

_VISITOR_KEYS = ("_id", "cid", "uid", "cip")
_IDENTITY_SKIP = frozenset({"_dlt_load_id"})


@dataclass
class PushOptions:
    tracking_url: str
    token_auth: str | None
    idsite: int | None
    batch_size: int
    workers: int
    queued_tracking: bool


@dataclass(frozen=True)
class Hit:
    hit_id: str
    visitor: str
    request: str  # "?idsite=1&url=...": one request of the bulk body
    row: Mapping[str, Any]  # the source row, for the rejected table


@dataclass
class PushSummary:
    source: str
    tracking_url: str
    mapping: str
    load_id: str
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
    seconds: float = 0.0
    backdated: dict[str, set[str]] = field(default_factory=dict)  # site -> UTC days before today with new hits
    invalidated: dict[str, list[str]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def note_backdated(self, hits: Sequence[Hit], today: str) -> None:
        for hit in hits:
            params = parse_qs(hit.request.lstrip("?"))
            cdt, site = (params.get("cdt") or [""])[0], (params.get("idsite") or [""])[0]
            day = (
                cdt[:10]
                if "-" in cdt
                else (dt.datetime.fromtimestamp(int(cdt), dt.UTC).date().isoformat() if cdt.isdigit() else "")
            )
            if day and site and day < today:
                with self._lock:
                    self.backdated.setdefault(site, set()).add(day)

    def add(self, **counts: int) -> None:
        with self._lock:
            for name, count in counts.items():
                setattr(self, name, getattr(self, name) + count)

    @property
    def rejected(self) -> int:
        return self.rejected_client + self.rejected_server

    @property
    def hits_per_second(self) -> float:
        return self.sent / self.seconds if self.seconds > 0 else 0.0

    def render(self) -> str:
        lines = [
            f"matomo: {self.source} → {self.tracking_url} (mapping {self.mapping}, load {self.load_id})",
            f"  rows {self.rows:,}, hits {self.hits:,}, already acknowledged earlier {self.already_acknowledged:,}",
            f"  sent {self.sent:,}, tracked {self.tracked:,}, rejected {self.rejected:,} "
            f"(before sending {self.rejected_client:,}, by Matomo {self.rejected_server:,})",
            f"  {self.batches:,} batches in {self.requests:,} requests ({self.retried:,} retried), "
            f"{self.seconds:.1f} s, {self.hits_per_second:,.0f} hits/s",
        ]
        for site, days in sorted(self.invalidated.items()):
            lines.append(f"  invalidated archived reports of site {site} for {len(days)} day(s): {', '.join(days)}")
        if self.lost_answers:
            lines.append(
                f"  warning: {self.lost_answers} request(s) got no answer and were sent again; if Matomo had "
                "stored them, those hits are counted twice (see docs/matomo.md, 'exactly once')"
            )
        return "\n".join(lines)


_SAFE = re.compile(r"[A-Za-z0-9_.~-]*")


def _quote(text: str) -> str:
    return text if _SAFE.fullmatch(text) else quote(text, safe="")


def query_string(params: Mapping[str, str]) -> str:
    """`?a=1&b=x%20y`: one request of a bulk body (most values need no quoting, which is the fast path)."""
    return "?" + "&".join(f"{_quote(name)}={_quote(value)}" for name, value in params.items())


def json_row(row: Mapping[str, Any]) -> str:
    return json.dumps(row, default=str, ensure_ascii=False, sort_keys=True)


def shard_of(visitor: str, shards: int) -> int:
    return int.from_bytes(hashlib.blake2b(visitor.encode(), digest_size=8).digest(), "big") % shards


class _Stop(Exception):
    pass


class Pusher:
    """Sends the rows of one source through one tracker into one ledger."""

    def __init__(
        self,
        options: PushOptions,
        tracker: MatomoTracker,
        ledger: Ledger,
        *,
        now: Any = wall_time,
        progress_task: str = "matomo",
    ) -> None:
        self.options = options
        self.tracker = tracker
        self.ledger = ledger
        self.now = now
        self.progress_task = progress_task
        self._errors: list[BaseException] = []
        self._stop = threading.Event()
        self._acknowledged_any = threading.Event()

    # -- building hits ----------------------------------------------------------------------------------
    def row_identity(self, row: Mapping[str, Any], key_columns: tuple[str, ...]) -> str:
        if key_columns and all(row.get(column) is not None for column in key_columns):
            return json.dumps([str(row[column]) for column in key_columns])
        if row.get("_dlt_id") is not None:
            return f"_dlt_id:{row['_dlt_id']}"
        return json_row({k: v for k, v in row.items() if k not in _IDENTITY_SKIP})

    def build(
        self,
        rows: list[dict[str, Any]],
        row_mapping: RowMapping,
        source: str,
        key_columns: tuple[str, ...],
        rules: HitRules,
        summary: PushSummary,
    ) -> tuple[list[Hit], list[Rejection]]:
        """Hits of one chunk that still need sending; hits Matomo acknowledged in an earlier run are skipped
        before they are even validated."""
        candidates: list[tuple[str, dict[str, Any], Mapping[str, Any]]] = []
        rejections: list[Rejection] = []
        prefix = f"{self.options.tracking_url}\x1f{source}\x1f{row_mapping.name}\x1f"
        for row in rows:
            identity = prefix + self.row_identity(row, key_columns)
            try:
                raw_hits = row_mapping.to_hits(row)
            except (InvalidHit, ValueError, TypeError) as error:
                rejections.append(
                    Rejection(source, "client", f"row cannot be mapped: {error}", None, json_row(row), None)
                )
                continue
            for index, raw in enumerate(raw_hits):
                hit_id = hashlib.sha256(f"{identity}\x1f{index}".encode()).hexdigest()[:32]
                candidates.append((hit_id, raw, row))
        known = self.ledger.acknowledged([hit_id for hit_id, _, _ in candidates])
        hits: list[Hit] = []
        for hit_id, raw, source_row in candidates:
            if hit_id in known:
                continue
            try:
                params = prepare_hit(raw, rules)
            except (InvalidHit, ValueError) as error:
                rejections.append(Rejection(source, "client", str(error), hit_id, json_row(source_row), None))
                continue
            visitor = next((params[key] for key in _VISITOR_KEYS if key in params), "")
            hits.append(Hit(hit_id, visitor, query_string(params), source_row))
        summary.add(
            hits=len(candidates),
            already_acknowledged=len(known),
            rejected_client=len(rejections),
        )
        return hits, rejections

    # -- the run ----------------------------------------------------------------------------------------
    def push(
        self,
        chunks: Iterable[list[dict[str, Any]]],
        row_mapping: RowMapping,
        source: str,
        *,
        key_columns: tuple[str, ...] | None = None,
        total_rows: int | None = None,
    ) -> PushSummary:
        options = self.options
        keys = row_mapping.key_columns if key_columns is None else key_columns
        summary = PushSummary(source, options.tracking_url, row_mapping.name, self.ledger.load_id)
        self.ledger.prepare(source)
        monitor = current_monitor()
        monitor.task(self.progress_task, total_rows)
        began = time.monotonic()
        requests_before, retries_before = self.tracker.stats.requests, self.tracker.stats.retries
        queues: list[queue.Queue[list[Hit] | None]] = [
            queue.Queue(maxsize=QUEUE_BATCHES_PER_WORKER) for _ in range(options.workers)
        ]
        threads = [
            threading.Thread(target=self._work, args=(q, summary, source), name=f"matomo-worker-{n}", daemon=True)
            for n, q in enumerate(queues)
        ]
        for thread in threads:
            thread.start()
        buffers: list[list[Hit]] = [[] for _ in range(options.workers)]
        try:
            for rows in chunks:
                if self._stop.is_set():
                    break
                rules = HitRules(options.idsite, bool(options.token_auth), self.now(), options.queued_tracking)
                hits, rejections = self.build(rows, row_mapping, source, keys, rules, summary)
                self.ledger.reject(rejections)
                summary.add(rows=len(rows))
                for hit in hits:
                    shard = shard_of(hit.visitor, options.workers)
                    buffers[shard].append(hit)
                    if len(buffers[shard]) >= options.batch_size:
                        self._put(queues[shard], buffers[shard])
                        buffers[shard] = []
                monitor.advance(self.progress_task, windows=len(rows), rows=len(rows))
            for shard, buffer in enumerate(buffers):
                if buffer:
                    self._put(queues[shard], buffer)
        except _Stop:
            pass
        except BaseException as error:
            self._errors.append(error)
            self._stop.set()
        finally:
            for q in queues:
                self._put_final(q)
            for thread in threads:
                thread.join()
            summary.seconds = time.monotonic() - began
            summary.requests = self.tracker.stats.requests - requests_before
            summary.retried = self.tracker.stats.retries - retries_before
        if self._errors:
            raise self._errors[0]
        return summary

    def _put(self, q: queue.Queue[list[Hit] | None], batch: list[Hit]) -> None:
        while True:
            if self._stop.is_set():
                raise _Stop()
            try:
                q.put(batch, timeout=0.2)
                return
            except queue.Full:
                continue

    def _put_final(self, q: queue.Queue[list[Hit] | None]) -> None:
        while True:
            try:
                q.put(None, timeout=0.2)
                return
            except queue.Full:
                if self._stop.is_set():  # the worker is draining; make room
                    try:
                        q.get_nowait()
                    except queue.Empty:
                        pass

    def _work(self, q: queue.Queue[list[Hit] | None], summary: PushSummary, source: str) -> None:
        while True:
            batch = q.get()
            if batch is None:
                return
            if self._stop.is_set():
                continue  # sending past a failed batch would break its visitors' order: the next run sends it
            try:
                self._send(batch, summary, source)
            except BaseException as error:
                self._errors.append(error)
                self._stop.set()

    def _send(self, batch: list[Hit], summary: PushSummary, source: str) -> None:
        requests = [hit.request for hit in batch]
        batch_hash = hashlib.sha256("\n".join(hit.hit_id for hit in batch).encode()).hexdigest()
        result: BulkResult = self.tracker.bulk(requests, is_first=lambda: not self._acknowledged_any.is_set())
        self.ledger.acknowledge(
            Acknowledgement(
                batch_hash, [hit.hit_id for hit in batch], source, result.tracked, result.invalid, result.lost_answers
            )
        )
        self._acknowledged_any.set()
        if result.tracked:
            summary.note_backdated(batch, today_utc().isoformat())
        rejections = self.server_rejections(batch, result, source)
        self.ledger.reject(rejections)
        summary.add(
            batches=1,
            sent=len(batch),
            tracked=result.tracked,
            rejected_server=result.invalid,
            lost_answers=result.lost_answers,
        )
        if result.tracked + result.invalid != len(batch) and not self.options.queued_tracking:
            log.warning(
                "matomo: a batch of %d hits was answered tracked %d, invalid %d",
                len(batch),
                result.tracked,
                result.invalid,
            )

    @staticmethod
    def server_rejections(batch: list[Hit], result: BulkResult, source: str) -> list[Rejection]:
        if not result.invalid:
            return []
        if result.invalid_indices is not None:
            return [
                Rejection(source, "server", "Matomo reported this hit invalid", batch[i].hit_id,
                          json_row(batch[i].row), batch[i].request)
                for i in result.invalid_indices
                if 0 <= i < len(batch)
            ]  # fmt: skip
        # Without a super-user token Matomo says how many, not which: record the batch once.
        return [
            Rejection(
                source,
                "server",
                f"Matomo reported {result.invalid} of {len(batch)} hits of this batch invalid without saying "
                "which (invalid_indices needs a super-user token_auth)",
                None,
                "[" + ",".join(json_row(hit.row) for hit in batch) + "]",
                "\n".join(hit.request for hit in batch),
            )
        ]
