"""The real Umami 2.20.2 and 3.1.0 recordings (tests/umami/recordings) and how to replay them against the simulator.

`seed_hits` sends the same 70 hits the recording script sent (20 visitors, 60 pageviews, 10 custom events over
2026-12-01..03), so for that data the simulator's figures are the real servers' figures. `replay` sends every
recorded request, mapped onto the simulator (its login, its website and session ids), and `differences` says where
an answer departs from the recorded one.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from simulators.umami import DEMO_PASSWORD, UmamiData, UmamiSimulator

RECORDINGS = Path(__file__).parent / "recordings"
FILES = {"2": "umami-2.20.2.json", "3": "umami-3.1.0.json"}
RECORDED_AT = dt.datetime(2026, 12, 4, 14, 25, 2, tzinfo=dt.UTC).timestamp()
DAYS = [dt.datetime(2026, 12, day, tzinfo=dt.UTC) for day in (1, 2, 3)]
FIRST_DAY, LAST_DAY = dt.date(2026, 12, 1), dt.date(2026, 12, 3)
HOSTNAME = "fixture.example"
WRONG_PASSWORD = "umami-wrong-pw"
MORE = re.compile(r"^…(\d+) more$")
# Values a server makes up (ids, tokens): compared by type only.
VOLATILE = {"id", "sessionId", "visitId", "eventId", "cache", "token"}
# Answers about the account rather than the seeded data (users, the leftover websites of earlier recordings,
# Prisma's stack trace): the simulator matches their fields and types, not their values.
SHAPE_ONLY = {
    "POST /api/auth/login",
    "POST /api/auth/verify",
    "POST /api/websites (create fresh website)",
    "GET /api/websites",
    "GET /api/websites?page=1&pageSize=2",
    "GET /api/websites?page=2&pageSize=2",
    "GET /api/websites/{id}",
    "error: POST /api/send timestamp in ms instead of s",
}
UA_CHROME_WIN = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36"
)
UA_CHROME_MAC = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Safari/537.36"
)
UA_FIREFOX_LINUX = "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0"
UA_SAFARI_IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.4 Mobile/15E148 Safari/604.1"
)
IPS = ["8.8.8.8", "81.2.69.160", "85.214.132.117", "133.242.0.3", "200.160.2.3"]


def recording(version: str) -> list[dict[str, Any]]:
    """The recorded entries of one version, without the leading `_meta`."""
    entries: list[dict[str, Any]] = json.loads((RECORDINGS / FILES[version]).read_text(encoding="utf-8"))
    return entries[1:]


def recorded_website(version: str) -> str:
    meta = json.loads((RECORDINGS / FILES[version]).read_text(encoding="utf-8"))[0]["note"]
    found = re.search(r"Fresh website ([0-9a-f-]{36})", meta)
    assert found, meta
    return found.group(1)


def answer(version: str, name: str) -> Any:
    """The recorded answer body of the entry with this name."""
    return next(e["response"]["body"] for e in recording(version) if e["name"] == name)


def seed_hits(website_id: str) -> Iterator[tuple[dict[str, str], dict[str, Any]]]:
    """(headers, body) of each hit the recording sent, in its order: 3 pageviews per visitor, custom events after
    the second one for the first ten visitors."""
    for i in range(20):
        t0 = DAYS[i % 3] + dt.timedelta(hours=6 + (i * 5) % 16, minutes=(i * 7) % 50)
        ua = UA_CHROME_WIN if i < 12 else UA_CHROME_MAC if i < 16 else UA_FIREFOX_LINUX if i < 18 else UA_SAFARI_IPHONE
        landing = [
            "/?utm_source=newsletter&utm_medium=email&utm_campaign=december",
            "/pricing?utm_source=google&utm_medium=cpc",
            "/blog/hello-world",
            "/",
            "/",
        ][i % 5]
        referrer = [
            "https://www.google.com/search?q=fixture",
            "https://news.ycombinator.com/item?id=1",
            "https://twitter.com/someone/status/1",
            None,
        ][i % 4]
        hits: list[dict[str, Any]] = [
            {"url": landing, "title": "Landing", "referrer": referrer, "t": t0},
            {"url": "/pricing", "title": "Pricing", "t": t0 + dt.timedelta(seconds=60)},
            {"url": "/docs", "title": "Docs", "t": t0 + dt.timedelta(seconds=150)},
        ]
        if i < 10:
            data: dict[str, Any] = (
                {"plan": "pro", "value": 9}
                if i < 5
                else {"plan": "free", "value": 0}
                if i < 7
                else {"plan": "pro", "value": 9, "revenue": 9, "currency": "USD"}
            )
            name = "signup" if i < 7 else "checkout"
            hits.insert(
                2,
                {"url": "/pricing", "title": "Pricing", "name": name, "data": data, "t": t0 + dt.timedelta(seconds=90)},
            )
        for hit in hits:
            payload: dict[str, Any] = {
                "website": website_id,
                "hostname": HOSTNAME,
                "language": ["en-US", "de-DE", "fr-FR"][i % 3],
                "screen": ["1920x1080", "1440x900", "390x844"][2 if i >= 18 else i % 2],
                "title": hit["title"],
                "url": hit["url"],
                "id": f"visitor-{i:02d}",
                "timestamp": int(hit["t"].timestamp()),
            }
            if hit.get("referrer"):
                payload["referrer"] = hit["referrer"]
            if hit.get("name"):
                payload |= {"name": hit["name"], "data": hit["data"]}
            yield {"User-Agent": ua, "X-Forwarded-For": IPS[i % 5]}, {"type": "event", "payload": payload}


def recorded_simulator(version: str, **kwargs: Any) -> UmamiSimulator:
    """A simulator whose clock stands at the recording's moment, with one generated website besides."""
    data = UmamiData(websites=1, days=3, last_day=LAST_DAY, sessions_per_day=(5, 5))
    return UmamiSimulator(data, version=version, now=lambda: RECORDED_AT, **kwargs).start()


def send_hits(simulator: UmamiSimulator, http: httpx.Client, website: str) -> list[httpx.Response]:
    return [http.post(simulator.url + "/api/send", json=b, headers=h) for h, b in seed_hits(website)]


def seeded_website(simulator: UmamiSimulator) -> str:
    """A new website holding exactly the recorded traffic, created and fed over HTTP as the recording did."""
    with httpx.Client(timeout=30) as http:
        token = http.post(
            simulator.url + "/api/auth/login", json={"username": "admin", "password": DEMO_PASSWORD}
        ).json()["token"]
        created = http.post(
            simulator.url + "/api/websites",
            json={"name": "Recording fixture", "domain": HOSTNAME},
            headers={"Authorization": f"Bearer {token}"},
        )
        website: str = created.json()["id"]
        assert all(r.status_code == 200 for r in send_hits(simulator, http, website))
    return website


@dataclass
class Replayed:
    """One recorded entry and what the simulator answered."""

    entry: dict[str, Any]
    status: int
    content_type: str
    body: Any
    problems: list[str] = field(default_factory=list)


@dataclass
class Replay:
    """Sends the recorded requests in order, translating the recording's ids and secrets to the simulator's."""

    simulator: UmamiSimulator
    version: str
    http: httpx.Client = field(default_factory=lambda: httpx.Client(timeout=30))
    ids: dict[str, str] = field(default_factory=dict)  # recorded id → simulator id
    token: str = ""
    seeded: list[httpx.Response] = field(default_factory=list)

    def mapped(self, value: Any) -> Any:
        if isinstance(value, str):
            for recorded, ours in self.ids.items():
                value = value.replace(recorded, ours)
            return value
        if isinstance(value, dict):
            return {k: self.mapped(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.mapped(v) for v in value]
        return value

    def send(self, entry: dict[str, Any]) -> httpx.Response:
        request = entry["request"]
        headers = {k: v for k, v in request["headers"].items()}
        if headers.get("Authorization") == "Bearer <jwt>":
            headers["Authorization"] = f"Bearer {self.token}"
        body = self.mapped(request["body"])
        if isinstance(body, dict) and body.get("password") == "<password>":
            body = {**body, "password": DEMO_PASSWORD if entry["response"]["status"] == 200 else WRONG_PASSWORD}
        content: bytes | None = None
        if isinstance(body, str):  # recorded as text: the request was not JSON
            content, body = body.encode(), None
            headers.setdefault("Content-Type", "application/json")
        return self.http.request(
            request["method"],
            self.simulator.url + self.mapped(request["path"]),
            params={k: str(v) for k, v in self.mapped(request["query"]).items()},
            json=body,
            content=content,
            headers=headers,
        )

    def run(self) -> list[Replayed]:
        website = recorded_website(self.version)
        seeds: Iterator[httpx.Response] = iter(())
        results = []
        for entry in recording(self.version):
            name = entry["name"]
            if name.startswith("seed: POST /api/send pageview"):
                ours = self.ids[website]
                self.seeded = send_hits(self.simulator, self.http, ours)
                first_event = next(
                    r for r, (_, b) in zip(self.seeded, seed_hits(ours), strict=True) if b["payload"].get("name")
                )
                seeds = iter([self.seeded[0], first_event])
                recorded_session = entry["response"]["body"]["sessionId"]
                self.ids[recorded_session] = self.seeded[0].json()["sessionId"]
            if name.startswith("seed: "):
                response = next(seeds)
            elif name.startswith("POST /api/websites"):
                response = self.send(entry)
                self.ids[website] = response.json()["id"]  # the website the recorded requests name
            elif name.startswith("rate-limit probe"):
                response = self.burst(entry)
            else:
                response = self.send(entry)
            if name == "POST /api/auth/login":
                self.token = response.json()["token"]
            content_type = response.headers.get("content-type", "")
            body = response.json() if "json" in content_type else response.text
            results.append(Replayed(entry, response.status_code, content_type, body))
        self.http.close()
        for result in results:
            result.problems = differences(self, result)
        return results

    def burst(self, entry: dict[str, Any]) -> httpx.Response:
        """30 refused logins before the recorded one and 30 hits after it: no rate limit answers either."""
        statuses = {self.send(entry).status_code for _ in range(30)}
        response = self.send(entry)
        payload = {"type": "event", "payload": {"website": self.ids[recorded_website(self.version)], "url": "/"}}
        sent = {
            self.http.post(
                self.simulator.url + "/api/send", json=payload, headers={"User-Agent": UA_CHROME_WIN}
            ).status_code
            for _ in range(30)
        }
        assert statuses == {401} and sent == {200}, (statuses, sent)
        return response


def differences(replay: Replay, result: Replayed) -> list[str]:
    """Where the simulator's answer departs from the recorded one: status, JSON or not, fields and types, and for
    answers about the seeded data the values."""
    recorded = result.entry["response"]
    problems = []
    if result.status != recorded["status"]:
        problems.append(f"status {result.status}, recorded {recorded['status']}")
    recorded_json = "json" in (recorded["headers"].get("content-type") or "")
    if recorded_json != ("json" in result.content_type):
        problems.append(f"content type {result.content_type!r}, recorded {recorded['headers'].get('content-type')!r}")
        return problems
    expected = replay.mapped(recorded["body"])
    if not recorded_json:
        if (expected == "") != (result.body == ""):
            problems.append(f"body {result.body[:60]!r}, recorded {expected[:60]!r}")
        return problems
    exact = result.entry["name"] not in SHAPE_ONLY
    problems += compare(expected, result.body, "$", exact)
    return problems


def kind(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    return type(value).__name__


def compare(expected: Any, actual: Any, path: str, exact: bool) -> list[str]:
    """`expected` may hold lists cut to 5 items and a "…N more" marker; `actual` is whole."""
    if kind(expected) != kind(actual):
        return [
            f"{path}: {kind(actual)} {json.dumps(actual)[:80]}, recorded {kind(expected)} {json.dumps(expected)[:80]}"
        ]
    if isinstance(expected, dict):
        if set(expected) != set(actual):
            return [f"{path}: fields {sorted(actual)}, recorded {sorted(expected)}"]
        return [
            p
            for key in expected
            for p in compare(expected[key], actual[key], f"{path}.{key}", exact and key not in VOLATILE)
        ]
    if isinstance(expected, list):
        return compare_lists(expected, actual, path, exact)
    if exact and expected != actual and not (isinstance(expected, float) and abs(expected - actual) < 1e-9):
        return [f"{path}: {json.dumps(actual)}, recorded {json.dumps(expected)}"]
    return []


def compare_lists(expected: list[Any], actual: list[Any], path: str, exact: bool) -> list[str]:
    shown = [item for item in expected if not (isinstance(item, str) and MORE.match(item))]
    more = sum(int(m.group(1)) for item in expected if isinstance(item, str) and (m := MORE.match(item)))
    if not exact:  # every item has the fields and types of the recorded ones
        template = shown[:1]
        return [p for i, item in enumerate(actual) for t in template for p in compare(t, item, f"{path}[{i}]", False)]
    problems = []
    if len(actual) != len(shown) + more:
        problems.append(f"{path}: {len(actual)} items, recorded {len(shown) + more}")
    in_order = [
        p for i, item in enumerate(shown[: len(actual)]) for p in compare(item, actual[i], f"{path}[{i}]", exact)
    ]
    if not in_order:
        return problems
    # Umami orders ties as its database happens to: the recorded items must be among ours, in any order
    left = list(actual)
    for i, item in enumerate(shown):
        match = next((j for j, candidate in enumerate(left) if not compare(item, candidate, "", exact)), None)
        if match is None:
            return [*problems, *in_order[:3], f"{path}[{i}]: no item like {json.dumps(item)[:120]}"]
        left.pop(match)
    return problems


def replay(version: str, prepare: Callable[[UmamiSimulator], None] | None = None) -> list[Replayed]:
    simulator = recorded_simulator(version)
    try:
        if prepare:
            prepare(simulator)
        return Replay(simulator, version).run()
    finally:
        simulator.stop()
