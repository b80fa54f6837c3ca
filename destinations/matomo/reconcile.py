"""Which hits of a batch in an unknown state Matomo holds, read back through its own Reporting API.

Every hit carries a `pv_id` derived from its hit id (unless the row brings its own). Matomo 4+ keeps it, cut to
6 characters, as `idpageview` on the action it records, and `Live.getLastVisitsDetails` returns it with the action's
`timestamp` (whole seconds) and `url`. A hit's **fingerprint** is (visitor, idpageview, timestamp, URL path):

- 6 characters of base 62 are 36 bits: two hits of one visitor share them by chance about once in 5e10 pairs, and
  would also need the same second and the same path to be confused;
- the path, not the whole URL: Matomo may drop query parameters it excludes, a fragment, switch http to https, or
  read a search query out of the URL; it keeps the path;
- a hit without `cdt` is recorded at the server's "now": its fingerprint leaves the second out.

The read-back is bounded by the batch: one site, the UTC days its hits fall on (one day more each side, for the
site's timezone), and a `segment` naming its visitors (`visitorId==` for `_id`/`cid`, `userId==` for `uid`, which
Matomo 5 turns into the visitor id). Hits without any visitor id can only be looked for by time span: their query
has no segment and reads every visit of those days. Matching counts: k hits with one fingerprint are matched by at
most k stored actions, each action once.

What Matomo records without an action (goal conversions `idgoal`, e-commerce orders, `ping=1`) has no
`idpageview` and cannot be found this way: such hits of an unknown batch are sent again (Matomo counts an order id
once, a goal once per visit unless the goal allows more, and a ping only extends a visit).
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlsplit

import orjson

from destinations.common.push import Verdict
from sources.common.clock import today_utc

from .client import MatomoTracker
from .validation import to_utc_datetime

PV_ID_LENGTH = 6  # Matomo's log_link_visit_action.idpageview is CHAR(6)
SEGMENT_VISITORS = 40  # visitors per query: the segment stays a few kB
_BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

VisitorRef = tuple[str, str] | None  # ("visitorId", hex) or ("userId", id); None: Matomo derives the visitor
Fingerprint = tuple[VisitorRef, str, int | None, str]


def pv_id_of(hit_id: str) -> str:
    """6 base-62 characters from a hit id (hex): all of it survives Matomo's cut to 6."""
    number = int(hit_id[:12], 16)
    characters = []
    for _ in range(PV_ID_LENGTH):
        number, digit = divmod(number, 62)
        characters.append(_BASE62[digit])
    return "".join(characters)


def url_path(url: str | None) -> str:
    return unquote(urlsplit(url or "").path).rstrip("/").lower()


def request_params(request: str) -> dict[str, str]:
    """The parameters of one bulk request: a JSON object (what clickhaul sends) or a query string."""
    if request.startswith("{"):
        return {str(name): str(value) for name, value in orjson.loads(request).items()}
    return dict(parse_qsl(request.lstrip("?"), keep_blank_values=True))


@dataclass(frozen=True)
class Expected:
    """What Matomo would show for one sent hit."""

    site: str
    visitor: VisitorRef
    fingerprint: Fingerprint | None  # None: the hit records no action and cannot be found
    day: dt.date | None


def expected(request: str) -> Expected:
    params = request_params(request)
    visitor: VisitorRef = None
    if params.get("uid"):
        visitor = ("userId", params["uid"])
    elif params.get("cid") or params.get("_id"):
        visitor = ("visitorId", (params.get("cid") or params["_id"]).lower())
    moment = to_utc_datetime(params["cdt"]) if params.get("cdt") else None
    day = moment.date() if moment else None
    findable = params.get("ping") != "1" and "idgoal" not in params and params.get("pv_id")
    if not findable:
        return Expected(params.get("idsite", ""), visitor, None, day)
    url = params.get("download") or params.get("link") or params.get("url")
    second = int(moment.timestamp()) if moment else None
    fingerprint = (visitor, params["pv_id"][:PV_ID_LENGTH], second, url_path(url))
    return Expected(params.get("idsite", ""), visitor, fingerprint, day)


def stored_fingerprints(visits: Iterable[dict[str, Any]], seen: set[tuple[Any, Any]]) -> Counter[Fingerprint]:
    """Every action of these visits under each key a sent hit may look for (by visitor id, user id, or none;
    with and without its second). `seen` skips actions already counted by an earlier query."""
    found: Counter[Fingerprint] = Counter()
    for visit in visits:
        refs: list[VisitorRef] = [None]
        if visit.get("visitorId"):
            refs.append(("visitorId", str(visit["visitorId"]).lower()))
        if visit.get("userId"):
            refs.append(("userId", str(visit["userId"])))
        for action in visit.get("actionDetails") or ():
            pv = action.get("idpageview") if isinstance(action, dict) else None
            if not pv:
                continue
            identity = (visit.get("idVisit"), action.get("pageId"))
            if identity in seen:
                continue
            seen.add(identity)
            second, path = int(action.get("timestamp") or 0), url_path(action.get("url"))
            for ref in refs:
                found[(ref, str(pv), second, path)] += 1
                found[(ref, str(pv), None, path)] += 1
    return found


def segment_of(visitors: Iterable[tuple[str, str]]) -> str:
    """`visitorId==a,userId==b`: a comma is OR; values are URL-encoded, as Matomo's segment grammar wants."""
    return ",".join(f"{name}=={quote(value, safe='')}" for name, value in visitors)


class Reconciler:
    def __init__(self, tracker: MatomoTracker) -> None:
        self.tracker = tracker

    def check(self, requests: Sequence[str], sent_on: dt.date) -> Verdict:
        """Split a batch (its query strings, in order) into hits Matomo holds and hits it does not."""
        hits = [expected(request) for request in requests]
        found: Counter[Fingerprint] = Counter()
        seen: set[tuple[Any, Any]] = set()
        queries = 0
        for site in sorted({hit.site for hit in hits if hit.fingerprint is not None}):
            of_site = [hit for hit in hits if hit.site == site and hit.fingerprint is not None]
            days = [hit.day or sent_on for hit in of_site]
            first = min(days) - dt.timedelta(days=1)
            last = min(max(days) + dt.timedelta(days=1), today_utc() + dt.timedelta(days=1))
            visitors = sorted({hit.visitor for hit in of_site if hit.visitor is not None})
            if any(hit.visitor is None for hit in of_site):
                groups: list[str | None] = [None]  # no segment: every visit of those days
            else:
                groups = [
                    segment_of(visitors[i : i + SEGMENT_VISITORS]) for i in range(0, len(visitors), SEGMENT_VISITORS)
                ]
            for segment in groups:
                found += stored_fingerprints(self.tracker.visits(site, first, last, segment), seen)
                queries += 1
        stored, missing = [], []
        for position, hit in enumerate(hits):
            if hit.fingerprint is not None and found[hit.fingerprint] > 0:
                found[hit.fingerprint] -= 1
                stored.append(position)
            else:
                missing.append(position)
        return Verdict(
            stored,
            missing,
            unverifiable=sum(1 for hit in hits if hit.fingerprint is None),
            without_visitor=sum(1 for hit in hits if hit.fingerprint is not None and hit.visitor is None),
            queries=queries,
        )
