"""Matomo as a target of the shared push engine (`destinations.common.push`): hits are Tracking API parameters
checked by `validation`, a batch is one bulk tracking POST, and a batch in an unknown state is read back through
the Reporting API (`reconcile`). The engine (ledger, shards, workers, exactly once) is the same for every
destination; Matomo only says how to encode, send and read back.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from destinations.common.push import (
    BulkOutcome,
    Hit,
    Prepared,
    PushOptions,
    PushSummary,
    Verdict,
    encode_request,
    json_row,
)
from destinations.common.push import Pusher as _Pusher

from .client import MatomoTracker
from .ledger import Ledger
from .reconcile import Reconciler, pv_id_of, request_params
from .settings import DEFAULT_RECONCILE_DELAY_SECONDS, VENDOR
from .validation import HitRules, prepare_hit

__all__ = ["Hit", "MatomoOptions", "MatomoTarget", "PushSummary", "Pusher", "encode_request", "json_row"]

_VISITOR_KEYS = ("_id", "cid", "uid", "cip")


@dataclass
class MatomoOptions:
    tracking_url: str
    token_auth: str | None
    idsite: int | None
    batch_size: int
    workers: int
    queued_tracking: bool
    reconcile_delay: float = DEFAULT_RECONCILE_DELAY_SECONDS

    def engine(self) -> PushOptions:
        return PushOptions(self.batch_size, self.workers, self.reconcile_delay, queued=self.queued_tracking)


class MatomoTarget:
    """Bulk tracking into one Matomo; read-backs through its Reporting API."""

    vendor = VENDOR

    def __init__(self, options: MatomoOptions, tracker: MatomoTracker) -> None:
        self.options = options
        self.tracker = tracker
        self.reconciler = Reconciler(tracker)
        self.url = options.tracking_url
        self.clock = tracker.clock
        self.retry = tracker.retry

    @property
    def stats(self) -> Any:
        return self.tracker.stats

    def prepare(self, raw: Mapping[str, Any], hit_id: str, now: float) -> Prepared:
        """Tracking API parameters; each hit gets a `pv_id` from its hit id, so it can be found in Matomo again."""
        options = self.options
        params = prepare_hit(raw, HitRules(options.idsite, bool(options.token_auth), now, options.queued_tracking))
        if "pv_id" not in params:
            params["pv_id"] = pv_id_of(hit_id)
        visitor = next((params[key] for key in _VISITOR_KEYS if key in params), "")
        return Prepared(encode_request(params), visitor, params["idsite"], params.get("cdt", "")[:10])

    def locate(self, request: str) -> tuple[str, str]:
        params = request_params(request)
        return params.get("idsite", ""), params.get("cdt", "")[:10]

    def send(
        self, requests: Sequence[str], is_first: Callable[[], bool], on_sent: Callable[[], None] | None
    ) -> BulkOutcome:
        return self.tracker.send(requests, is_first=is_first, on_sent=on_sent)

    def check(self, requests: Sequence[str], sent_on: dt.date) -> Verdict:
        return self.reconciler.check(requests, sent_on)


class Pusher(_Pusher):
    """The shared engine with a Matomo target."""

    def __init__(self, options: MatomoOptions, tracker: MatomoTracker, ledger: Ledger, *, now: Any = None) -> None:
        kwargs = {"now": now} if now is not None else {}
        super().__init__(options.engine(), MatomoTarget(options, tracker), ledger, **kwargs)
