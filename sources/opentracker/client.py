"""The Opentracker sessions API client: credentials in POST bodies, tickets renewed before they expire,
plain-text errors turned into typed exceptions, and `nextToken` paging that is proven to advance."""

from __future__ import annotations

import functools
import logging
import re
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin

import orjson
import pyarrow as pa

from sources.common.arrow import json_rows
from sources.common.clock import SYSTEM_CLOCK, Clock, today_in
from sources.common.errors import AuthError, ConfigError, TransientError, VendorError
from sources.common.http import HttpClient, RequestStats, RetryPolicy, TokenAuth
from sources.common.redact import redact, register_secrets
from sources.common.windows import DateWindow

from .settings import (
    BY_USER_LIMIT,
    DATA_TYPE,
    DEFAULT_TICKET_SECONDS,
    PAGE_LIMIT,
    SESSIONS_BY_USER_PATH,
    SESSIONS_PATH,
    TICKET_PATH,
)

VENDOR = "opentracker"
log = logging.getLogger("clickhaul.opentracker")

# "Error: java.lang.RuntimeException: Login/ site combination is not valid"
_ERROR = re.compile(r"^Error:\s*(?:(?P<name>[\w.$]+):\s*)?(?P<message>.*)$", re.DOTALL)
_SITE_MISMATCH = "login/ site combination"
_MAX_PAGES_PER_WINDOW = 20_000  # a last guard; a healthy walk needs about one page per hour at most
_TICKET_ATTEMPTS = 3  # a fresh ticket refused again (the server ended tickets twice in a row): try once more


class OpentrackerError(VendorError):
    """An `Error: ...` answer, or an answer that breaks the documented contract (e.g. a stuck nextToken)."""

    def __init__(self, message: str, *, name: str | None = None) -> None:
        super().__init__(VENDOR, message, name=name)


class TicketRefused(AuthError):
    """The API answered the literal `false`: the ticket (or the login behind it) is not valid (any more)."""


class SiteRefused(AuthError):
    """`Login/ site combination is not valid`: the login may not read that site, or the password is wrong."""


@dataclass(frozen=True)
class Page:
    """One answer of the sessions API: column names, rows of string cells, and where the walk continues."""

    fields: list[str]
    rows: list[list[Any]] | pa.ListArray  # Arrow when every cell is a string or null (`parse_answer`)
    next_token: str | None

    def python_rows(self) -> list[list[Any]]:
        return self.rows.to_pylist() if isinstance(self.rows, pa.ListArray) else self.rows


def token_position(token: str) -> int | None:
    """`nextToken` is `<day start ms>.<hour ms>`: the hour (epoch ms) the next page starts from, walking back."""
    _, _, hour = token.partition(".")
    try:
        return int(hour or token)
    except ValueError:
        return None


def parse_answer(raw: bytes | str, arrow: bool = True) -> dict[str, Any]:
    """The `check=` hook for every sessions call: plain-text errors and `false` raise, JSON is parsed.

    Takes the body as bytes: a page is ~1 MB, and decoding it to text first would hold a second copy per worker.
    `arrow`: the rows are read straight into an Arrow list array (`json_rows`), outside the GIL, when every cell
    is a string or null, as the API sends them; else, and for every error, orjson reads the answer."""
    body = raw.strip() if isinstance(raw, bytes) else raw.strip().encode()
    if body == b"false":
        raise TicketRefused("opentracker answered `false`: the ticket or the login behind it was refused")
    if body.startswith(b"Error"):
        text = body.decode("utf-8", "replace")
        match = _ERROR.match(text)
        name = match.group("name") if match else None
        message = redact((match.group("message") if match else text).strip())[:500]
        if _SITE_MISMATCH in message.lower():
            raise SiteRefused(message)
        if name and "timeout" in name.lower():  # the vendor timed out behind its front end: worth another try
            raise TransientError(f"opentracker: {name}: {message}")
        raise OpentrackerError(message, name=name)
    answer = json_rows(body, "resultsList", strings=("nextToken",), string_lists=("field",)) if arrow else None
    if answer is None:
        answer = _parse_json(body)
    fields = answer.get("field")
    if not isinstance(fields, list) or not all(isinstance(name, str) for name in fields):
        raise OpentrackerError("answer without a field[] list of column names")
    return answer


def _parse_json(body: bytes) -> dict[str, Any]:
    try:
        answer = orjson.loads(body)
    except orjson.JSONDecodeError:
        # A cut or garbled body on a 200 (or an HTML error page from a proxy): the next attempt usually works.
        excerpt = body[:80].decode("utf-8", "replace")
        raise TransientError(f"opentracker: malformed answer ({len(body)} bytes): {redact(excerpt)!r}") from None
    if not isinstance(answer, dict) or not isinstance(answer.get("resultsList"), list):
        raise OpentrackerError(
            f"unexpected answer without resultsList: {redact(body[:200].decode('utf-8', 'replace'))!r}"
        )
    return answer


def parse_ticket(text: str) -> str:
    ticket = text.strip()
    if not ticket or ticket == "false":
        raise TicketRefused("opentracker refused login/password at login_user.jsp (it answered `false`)")
    if ticket.startswith("Error"):
        raise TicketRefused(f"opentracker refused the ticket request: {redact(ticket[:300])}")
    if any(char.isspace() for char in ticket) or len(ticket) > 200:
        raise TransientError("opentracker: login_user.jsp answered something that is not a ticket")
    return ticket


class OpentrackerClient:
    """One site-independent client; `sessions()` and `sessions_by_user()` walk `nextToken` to the end.

    Credentials, in order of preference: a `ticket_id` given by the user (used until refused; it cannot be renewed,
    so login/password take over if they are configured too), else login/password exchanged for a ticket at
    `login_user.jsp` (renewed shortly before it expires and whenever the API answers `false`), else login/password
    sent with every call (`use_ticket=False`). Always in POST bodies.
    """

    def __init__(
        self,
        base_url: str,
        *,
        login: str | None = None,
        password: str | None = None,
        ticket_id: str | None = None,
        use_ticket: bool = True,
        ticket_url: str | None = None,
        ticket_seconds: int = DEFAULT_TICKET_SECONDS,
        timezone: str = "UTC",
        page_limit: int = PAGE_LIMIT,
        clock: Clock = SYSTEM_CLOCK,
        retry: RetryPolicy | None = None,
        timeout: float = 60.0,
        stats: RequestStats | None = None,
        arrow_pages: bool = True,
    ) -> None:
        """`arrow_pages=False`: rows as Python lists, parsed by orjson (the bench's ceiling reads pages so)."""
        register_secrets([password, ticket_id])
        if not ticket_id and not (login and password):
            raise ConfigError(
                "opentracker needs credentials: set sources.opentracker.login and sources.opentracker.password "
                "(or sources.opentracker.ticket_id) in .dlt/secrets.toml, or the environment variables "
                "SOURCES__OPENTRACKER__LOGIN / SOURCES__OPENTRACKER__PASSWORD"
            )
        self.base_url = base_url if base_url.endswith("/") else base_url + "/"
        self.login = login
        self._password = password
        self._ticket_id = ticket_id
        self.timezone = timezone
        self.page_limit = max(1, min(int(page_limit), PAGE_LIMIT))
        self.ticket_url = ticket_url or urljoin(self.base_url, TICKET_PATH)
        self.ticket_seconds = int(ticket_seconds)
        self._clock = clock
        self.http = HttpClient(VENDOR, self.base_url, retry=retry, clock=clock, timeout=timeout, stats=stats)
        self.tickets: TokenAuth | None = None
        self._renew_lock = threading.Lock()
        self._confirmed: set[str] = set()
        self._parse = parse_answer if arrow_pages else functools.partial(parse_answer, arrow=False)
        if login and password and use_ticket:
            # Renew a little before expiry: a quarter of the lifetime for short tickets, at most a minute.
            margin = min(60.0, self.ticket_seconds / 4)
            self.tickets = TokenAuth(self._fetch_ticket, refresh_margin_seconds=margin, clock=clock)

    def close(self) -> None:
        self.http.close()

    @property
    def stats(self) -> RequestStats:
        return self.http.stats

    # -- credentials ------------------------------------------------------------------------------------
    def _fetch_ticket(self) -> tuple[str, float]:
        issued = self._clock.time()
        text = self.http.post(
            self.ticket_url,
            data={"login": self.login, "password": self._password, "expires": str(self.ticket_seconds)},
            parse="text",
            check=parse_ticket,
        )
        log.debug("opentracker: new ticket for %s, valid %d s", self.login, self.ticket_seconds)
        return text, issued + self.ticket_seconds

    def _credentials(self) -> dict[str, str]:
        if self._ticket_id:
            return {"ticketId": self._ticket_id}
        if self.tickets is not None:
            return {"ticketId": self.tickets.token()}
        return {"login": str(self.login), "password": str(self._password)}

    def call(self, path: str, params: Mapping[str, str], site: str) -> dict[str, Any]:
        """POST one request; a refused ticket obtained from login/password is renewed and the call repeated."""
        for attempt in range(1, _TICKET_ATTEMPTS + 1):
            credentials = self._credentials()
            try:
                answer: dict[str, Any] = self.http.post(
                    path, data={**params, **credentials}, parse="bytes", check=self._parse
                )
                return answer
            except TicketRefused:
                if self._ticket_id and self.tickets is not None:
                    log.warning("opentracker refused the configured ticket_id; using login/password from now on")
                    self._ticket_id = None  # it expired: switch to tickets of our own
                    continue
                if self.tickets is not None and attempt < _TICKET_ATTEMPTS:
                    self._renew(credentials["ticketId"])
                    continue
                if self._ticket_id:
                    raise TicketRefused(
                        "opentracker refused sources.opentracker.ticket_id (tickets expire, 60 s by default): "
                        "configure login and password so clickhaul can obtain and renew tickets itself"
                    ) from None
                raise
            except SiteRefused as error:
                who = f"login {self.login!r}" if self.login else "the configured ticket_id"
                raise SiteRefused(
                    f"opentracker: {who} may not read site {site!r} ({error}): check sources.opentracker.sites "
                    "against the sites of this account" + ("" if self.tickets else ", and the password")
                ) from None
        raise AssertionError("unreachable")

    def _renew(self, refused: str) -> None:
        """Drop the refused ticket, unless another worker has already replaced it (then just use the new one)."""
        assert self.tickets is not None
        with self._renew_lock:
            if self.tickets.token() == refused:
                self.stats.add(auth_refreshes=1)
                self.tickets.invalidate()

    # -- paging -----------------------------------------------------------------------------------------
    def walk(
        self, path: str, params: Mapping[str, str], site: str, begin_ms: int | None, end_ms: int | None, what: str
    ) -> Iterator[Page]:
        """Follow `nextToken` back in time until it is absent or points before `begin_ms`.

        Each token must point strictly earlier than the one before (or at least differ from every earlier one,
        when it cannot be read as a time): a server that repeats itself would otherwise keep us here forever.
        """
        token: str | None = None
        position = end_ms
        seen: set[str] = set()
        for pages in range(1, _MAX_PAGES_PER_WINDOW + 1):
            answer = self.call(path, {**params, **({"nextToken": token} if token else {})}, site)
            following = answer.get("nextToken")
            following = str(following).strip() if following not in (None, "", "null") else None
            page = Page(answer["field"], answer["resultsList"], following)
            del answer  # a parsed page is ~5 MB: hold none of it while the next one is fetched
            yield page
            del page
            if following is None:
                return
            hour = token_position(following)
            if hour is not None and begin_ms is not None and hour < begin_ms:
                return  # the walk has left the requested window
            if following in seen or (hour is not None and position is not None and hour >= position):
                raise OpentrackerError(
                    f"nextToken does not advance for {what}: page {pages} (sent nextToken={token or '(none)'}) "
                    f"answered nextToken={following}, which is not earlier than the page itself; stopping "
                    "instead of requesting the same page forever. Retry later; if it persists, narrow the window "
                    "(sources.opentracker.window) or report it to Opentracker"
                )
            seen.add(following)
            token, position = following, hour if hour is not None else position
        raise OpentrackerError(f"more than {_MAX_PAGES_PER_WINDOW} pages for {what}: giving up")

    def sessions(self, site: str, window: DateWindow, filters: Mapping[str, str] | None = None) -> Iterator[Page]:
        """Every session of `site` that started in `window` (local days in this client's timezone)."""
        params = {
            "site": site,
            "date": window.start.isoformat(),
            "period": f"{len(window.days)}d",
            "limit": str(self.page_limit),
            "dataType": DATA_TYPE,
            "timeZone": self.timezone,
            **(filters or {}),
        }
        begin_ms = int(window.start_at.timestamp() * 1000)
        end_ms = int(window.end_at.timestamp() * 1000)
        return self.walk(SESSIONS_PATH, params, site, begin_ms, end_ms, f"site {site} {window}")

    def sessions_by_user(
        self, site: str, *, machine_idx: str | None = None, visit_id: str | None = None
    ) -> Iterator[Page]:
        """Every session of one user (`machine_idx`) or one visit (`visit_id`)."""
        params = {"site": site, "limit": str(BY_USER_LIMIT), "dataType": DATA_TYPE, "timeZone": self.timezone}
        if machine_idx:
            params["filterByMachineId"] = machine_idx
        if visit_id:
            params["filterByVisitId"] = visit_id
        what = f"site {site} user {machine_idx or visit_id}"
        return self.walk(SESSIONS_BY_USER_PATH, params, site, None, None, what)

    def probe(self, site: str, window: DateWindow) -> int:
        """One small page (two columns, `limit=1`): proves credentials and site access; returns its rows."""
        params = {
            "site": site,
            "date": window.start.isoformat(),
            "period": f"{len(window.days)}d",
            "limit": "1",
            "dataType": DATA_TYPE,
            "timeZone": self.timezone,
            "showColumns": "session_id,session_start_unix_timestamp",
        }
        return len(self.call(SESSIONS_PATH, params, site)["resultsList"])

    def confirm_site(self, site: str) -> None:
        """`probe` today's sessions of `site`, once per client (backfill windows share the client)."""
        with self._renew_lock:
            if site in self._confirmed:
                return
        today = today_in(self.timezone)
        self.probe(site, DateWindow(today, today, self.timezone))
        with self._renew_lock:
            self._confirmed.add(site)


def filter_params(filters: Mapping[str, Any] | None, names: Mapping[str, str], key: str) -> dict[str, str]:
    """snake_case config keys -> API parameters; lists become comma lists, booleans `true`/`false`."""
    params: dict[str, str] = {}
    unknown = [name for name in (filters or {}) if name not in names]
    if unknown:
        raise ConfigError(
            f"unknown {key} key{'s' if len(unknown) > 1 else ''} {', '.join(sorted(unknown))}: "
            f"use {', '.join(sorted(names))}"
        )
    for name, value in (filters or {}).items():
        if value is None or value == "" or value == []:
            continue
        if isinstance(value, bool):
            text = "true" if value else "false"
        elif isinstance(value, (list, tuple)):
            text = ",".join(str(item).strip() for item in value)
        else:
            text = str(value)
        params[names[name]] = text
    return params
