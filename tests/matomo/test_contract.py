"""The simulator answers the requests of a real Matomo 5.1.2 (tests/matomo/recordings/matomo-5.1.2.json) in the
same shapes: status, content type, field names, value types and error shapes. Values may differ where they depend
on data (ids, counts, times). Every recorded request is replayed over HTTP, in order, against a simulator whose
clock stands at the recording's moment, so the recorded bulk hits seed the data the recorded reads return."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from simulators.matomo import GIF, MatomoSimulator

RECORDING = Path(__file__).parent / "recordings" / "matomo-5.1.2.json"
RECORDED_AT = dt.datetime(2026, 12, 4, 14, 25, 2, tzinfo=dt.UTC).timestamp()
TOKEN = "5ec0nd5ec0nd5ec0nd5ec0nd5ec0nd5e"  # stands for the recording's redacted `<token>`
RECORDED_SITE = 35
# Recorded calls the simulator does not implement (clickhaul never makes them).
NOT_SIMULATED: set[str] = set()


def entries() -> list[dict[str, Any]]:
    return [entry for entry in json.loads(RECORDING.read_text()) if entry["name"] != "_meta"]


def substitute(value: Any) -> Any:
    if value == "<token>":
        return TOKEN
    if isinstance(value, dict):
        return {key: substitute(item) for key, item in value.items()}
    if isinstance(value, list):
        return [substitute(item) for item in value]
    return value


def kind(value: Any) -> str:
    """A value's JSON type; integers and fractions are one kind (PHP writes 2.0 as 2)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    return "list" if isinstance(value, list) else "object"


def cut_marker(value: Any) -> bool:
    return isinstance(value, str) and value.startswith("…") and value.endswith("more")


def same_shape(recorded: Any, simulated: Any, where: str = "$") -> list[str]:
    """Where the simulated answer's shape differs from the recorded one. A recorded null only says the field can
    be null (its type in other data is unknown); lists are compared item by item against the recorded items."""
    if recorded is None:
        return []
    if kind(recorded) != kind(simulated):
        return [f"{where}: recorded {kind(recorded)} {str(recorded)[:60]!r}, simulated {kind(simulated)}"]
    if isinstance(recorded, dict):
        problems = [f"{where}: fields differ: recorded {sorted(recorded)}, simulated {sorted(simulated)}"]
        if list(recorded) == list(simulated):
            problems = []
        for key in recorded:
            if key in simulated:
                problems += same_shape(recorded[key], simulated[key], f"{where}.{key}")
        return problems
    if isinstance(recorded, list):
        items = [item for item in recorded if not cut_marker(item)]
        if items and not simulated:
            return [f"{where}: recorded {len(items)} item(s), simulated none"]
        problems = []
        for index, item in enumerate(simulated):
            problems += same_shape(items[min(index, len(items) - 1)], item, f"{where}[{index}]") if items else []
        return problems
    return []


def request_of(entry: dict[str, Any]) -> tuple[str, str, dict[str, Any]]:
    request = substitute(entry["request"])
    kwargs: dict[str, Any] = {"params": request["query"] or None, "headers": request["headers"] or None}
    body = request["body"]
    if isinstance(body, str):
        kwargs["content"] = body.encode()
    elif request["path"].endswith("matomo.php") and body is not None:
        kwargs["content"] = json.dumps(body).encode()
    elif body is not None:
        kwargs["data"] = body
    return request["method"], request["path"], kwargs


@pytest.fixture(scope="module")
def replayed() -> Iterator[list[tuple[dict[str, Any], httpx.Response]]]:
    """Each recorded entry with the simulator's answer to the same request, in the recording's order."""
    simulator = MatomoSimulator(sites=(RECORDED_SITE,), tokens={TOKEN: "superuser"}, clock=lambda: RECORDED_AT)
    with simulator as server, httpx.Client(base_url=server.url, timeout=10) as client:
        answers = []
        for entry in entries():
            if entry["name"] in NOT_SIMULATED:
                continue
            method, path, kwargs = request_of(entry)
            answers.append((entry, client.request(method, path, **kwargs)))
        yield answers


def recorded_body(entry: dict[str, Any]) -> Any:
    return entry["response"]["body"]


def test_every_recorded_request_but_the_unsimulated_is_replayed(
    replayed: list[tuple[dict[str, Any], httpx.Response]],
) -> None:
    names = {entry["name"] for entry, _ in replayed}
    assert len(names) == len(entries()) - len(NOT_SIMULATED) == 28
    assert {"Live.getLastVisitsDetails segment=visitorId==a1b2c3d4e5f60001", "error: wrong token_auth"} <= names


def test_status_and_content_type_match_the_recording(replayed: list[tuple[dict[str, Any], httpx.Response]]) -> None:
    mismatches = [
        (entry["name"], entry["response"]["status"], answer.status_code, answer.headers.get("content-type"))
        for entry, answer in replayed
        if answer.status_code != entry["response"]["status"]
        or answer.headers.get("content-type") != entry["response"]["headers"]["content-type"]
    ]
    assert mismatches == []


def test_json_answers_have_the_recorded_fields_and_types(
    replayed: list[tuple[dict[str, Any], httpx.Response]],
) -> None:
    problems: list[str] = []
    checked = 0
    for entry, answer in replayed:
        if not entry["response"]["headers"]["content-type"].startswith("application/json"):
            continue
        problems += [f"{entry['name']}: {problem}" for problem in same_shape(recorded_body(entry), answer.json())]
        checked += 1
    assert problems == []
    assert checked == 23


def test_error_answers_have_the_recorded_shapes(replayed: list[tuple[dict[str, Any], httpx.Response]]) -> None:
    errors = {entry["name"]: (entry, answer) for entry, answer in replayed if entry["name"].startswith("error:")}
    assert len(errors) == 5
    for name, (entry, answer) in errors.items():
        if "html" in entry["response"]["headers"]["content-type"]:
            assert answer.text.lstrip().startswith("<!DOCTYPE html>"), name
            assert "Unable to authenticate with the provided token" in answer.text
        else:
            assert set(answer.json()) == {"result", "message"} and answer.json()["result"] == "error", name
    assert errors["error: unknown idSite"][1].json() == recorded_body(errors["error: unknown idSite"][0])
    assert errors["error: bad date"][1].json() == recorded_body(errors["error: bad date"][0])
    no_token = errors["error: no token_auth"]
    assert no_token[1].json() == recorded_body(no_token[0])


def test_tracking_answers_match_the_recorded_ones(replayed: list[tuple[dict[str, Any], httpx.Response]]) -> None:
    """The bulk answers depend only on the requests: they equal the recording, value for value."""
    for entry, answer in replayed:
        if entry["request"]["path"] != "/matomo.php":
            continue
        recorded = entry["response"]
        if entry["request"]["method"] == "POST":
            assert answer.json() == recorded["body"], entry["name"]
        elif recorded["status"] == 204:
            assert answer.content == b""
        else:
            assert answer.content[: len(GIF)] == GIF
            assert len(answer.content) == recorded.get("content_length", 43), entry["name"]


def test_read_back_finds_the_recorded_visits(replayed: list[tuple[dict[str, Any], httpx.Response]]) -> None:
    """Live.getLastVisitsDetails over the seeded data: the same visits in the same order, with the same actions,
    URLs and idpageview as the real server returned. Not compared, as they depend on the server: idVisit, the
    visitor id Matomo makes up for a malformed `_id`, and the time of hits sent without `cdt` (its own "now")."""
    compared = 0
    for entry, answer in replayed:
        if not entry["name"].startswith("Live.getLastVisitsDetails"):
            continue
        recorded = [visit for visit in recorded_body(entry) if isinstance(visit, dict)]
        simulated = answer.json()[: len(recorded)]
        assert [visit["visitIp"] for visit in simulated] == [visit["visitIp"] for visit in recorded], entry["name"]
        for real, ours in zip(recorded, simulated, strict=True):
            if real["visitorId"].startswith("a1b2c3d4e5f6"):  # an id the recorded hits sent
                assert ours["visitorId"] == real["visitorId"]
            backdated = real["lastActionTimestamp"] < RECORDED_AT - 3600
            real_actions = [a for a in real["actionDetails"] if isinstance(a, dict)]
            ours_actions = ours["actionDetails"][: len(real_actions)]
            assert [(a["url"], a["idpageview"], a["timestamp"] if backdated else 0) for a in ours_actions] == [
                (a["url"], a["idpageview"], a["timestamp"] if backdated else 0) for a in real_actions
            ], entry["name"]
            assert ours["actions"] == real["actions"]
            compared += 1
    assert compared == 10


def test_archived_reports_equal_the_recorded_figures(replayed: list[tuple[dict[str, Any], httpx.Response]]) -> None:
    """VisitsSummary.get and Actions.getPageUrls are built from the same hits as the real server's archives: the
    figures are equal, value for value (what the Matomo source reads as `visits_summary` and `pages`)."""
    compared = 0
    for entry, answer in replayed:
        if entry["name"].startswith(("Actions.getPageUrls", "VisitsSummary.get period=day date=yesterday")):
            assert answer.json() == recorded_body(entry), entry["name"]
            compared += 1
    assert compared == 2
