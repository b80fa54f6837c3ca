"""The simulator answers the way Matomo 5 does (the tracking API document and API-NOTES.md)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import httpx
import pytest

from simulators.matomo import (
    DEMO_SUPERUSER_TOKEN,
    DEMO_VIEW_TOKEN,
    DEMO_WRITE_TOKEN,
    GIF,
    MatomoSimulator,
)
from sources.common.clock import utc_now, wall_time

HTTP = httpx.Client(timeout=10)  # one client: a new one per call costs an SSL context each time


def ago(**delta: float) -> str:
    return (utc_now() - dt.timedelta(**delta)).strftime("%Y-%m-%d %H:%M:%S")


def bulk(simulator: MatomoSimulator, requests: Sequence[object], token: str | None = None) -> httpx.Response:
    body: dict[str, object] = {"requests": requests}
    if token:
        body["token_auth"] = token
    return HTTP.post(f"{simulator.url}/matomo.php", json=body)


def test_bulk_counts_and_invalid_indices_only_for_a_super_user(simulator: MatomoSimulator) -> None:
    requests: list[object] = [
        "?idsite=1&rec=1&url=https%3A%2F%2Fa.example%2F1&action_name=Home",
        "?idsite=7&rec=1&url=https%3A%2F%2Fa.example%2F2",  # unknown site
        {"idsite": 2, "rec": 1, "url": "https://a.example/3"},  # a parameter object
        "?idsite=1&url=https%3A%2F%2Fa.example%2F4",  # no rec=1: ignored
    ]
    assert bulk(simulator, requests, DEMO_SUPERUSER_TOKEN).json() == {
        "status": "success", "tracked": 2, "invalid": 1, "invalid_indices": [1],
    }  # fmt: skip
    assert bulk(simulator, requests, DEMO_WRITE_TOKEN).json() == {"status": "success", "tracked": 2, "invalid": 1}
    assert bulk(simulator, requests).json() == {"status": "success", "tracked": 2, "invalid": 1}
    assert [hit.params["url"] for hit in simulator.stored()][:2] == ["https://a.example/1", "https://a.example/3"]


def test_cdt_and_cip_rules(simulator: MatomoSimulator) -> None:
    old = f"?idsite=1&rec=1&url=u&cdt={ago(days=2)}"
    # A back-dated hit without token: HTTP 200, tracked 0, invalid 1 (silently dropped).
    answer = bulk(simulator, [old])
    assert answer.status_code == 200 and answer.json() == {"status": "success", "tracked": 0, "invalid": 1}
    assert bulk(simulator, [old], DEMO_VIEW_TOKEN).json()["invalid"] == 1  # a view token may not back-date
    assert bulk(simulator, [old], DEMO_WRITE_TOKEN).json()["tracked"] == 1
    assert bulk(simulator, [f"?idsite=1&rec=1&url=u&cdt={ago(hours=3)}"]).json()["tracked"] == 1  # within 24 h
    assert bulk(simulator, ["?idsite=1&rec=1&url=u&cip=1.2.3.4"]).json()["invalid"] == 1
    assert bulk(simulator, ["?idsite=1&rec=1&url=u&cip=1.2.3.4"], DEMO_WRITE_TOKEN).json()["tracked"] == 1
    # Future and >20-year-old cdt are replaced by now, without a word.
    before = wall_time()
    future = f"?idsite=1&rec=1&url=future&cdt={ago(hours=-5)}"
    ancient = f"?idsite=1&rec=1&url=ancient&cdt={ago(days=365 * 21)}"
    assert bulk(simulator, [future, ancient], DEMO_WRITE_TOKEN).json()["tracked"] == 2
    replaced = [hit for hit in simulator.stored() if hit.params["url"] in ("future", "ancient")]
    assert len(replaced) == 2 and all(before - 1 <= hit.timestamp <= wall_time() + 1 for hit in replaced)
    unix = bulk(simulator, [f"?idsite=1&rec=1&url=unix&cdt={int(wall_time()) - 60}"]).json()
    assert unix["tracked"] == 1


def test_with_a_token_matomo_stores_malformed_ids_and_missing_urls(simulator: MatomoSimulator) -> None:
    bad = ["?idsite=1&rec=1&url=u&_id=nothex", "?idsite=1&rec=1&action_name=no-url", "?idsite=1&rec=1&url=u&cid=12"]
    assert bulk(simulator, bad).json() == {"status": "success", "tracked": 0, "invalid": 3}
    assert bulk(simulator, bad, DEMO_WRITE_TOKEN).json() == {"status": "success", "tracked": 3, "invalid": 0}
    assert bulk(simulator, ["?idsite=1&rec=1&url=u&e_v=lots"], DEMO_WRITE_TOKEN).json()["invalid"] == 1


@pytest.mark.parametrize("outcome", ["nothing", "all", "tail"])
def test_a_deadlocked_bulk_answers_500_and_leaves_nothing_all_or_a_tail(outcome: str) -> None:
    """As a real Matomo 5.1.2 did (API-NOTES 2026-12-04): HTTP 500 status:error, and behind it nothing, the whole
    batch, or the batch after its first k hits."""
    with MatomoSimulator(transaction_failure_rate=1.0, failure_outcomes={outcome: 1.0}, seed=3) as simulator:
        for attempt in range(5):
            urls = [f"u{attempt}-{i}" for i in range(20)]
            before = len(simulator.stored())
            answer = bulk(simulator, [f"?idsite=1&rec=1&url={url}" for url in urls], DEMO_SUPERUSER_TOKEN)
            assert answer.status_code == 500
            body = answer.json()
            assert body["status"] == "error" and 0 <= body["tracked"] <= 20 and body["invalid_indices"] == []
            stored = [hit.params["url"] for hit in simulator.stored()[before:]]
            if outcome == "tail":
                assert 1 <= len(stored) < 20 and stored == urls[20 - len(stored) :]
            else:
                assert stored == (urls if outcome == "all" else [])
        assert simulator.failure_kinds[outcome] == 5


def test_send_image_0_in_a_bulk_still_answers_the_counts(simulator: MatomoSimulator) -> None:
    """The recording of a real 5.1.2 outranks API-NOTES here: the bulk answer keeps its counts."""
    answer = bulk(simulator, ["?idsite=1&rec=1&url=u&send_image=0"])
    assert answer.status_code == 200 and answer.json() == {"status": "success", "tracked": 1, "invalid": 0}
    assert len(simulator.stored()) == 1


def live(simulator: MatomoSimulator, token: str | None = DEMO_VIEW_TOKEN, **params: object) -> httpx.Response:
    body: dict[str, object] = {"module": "API", "format": "json", "method": "Live.getLastVisitsDetails", **params}
    if token:
        body["token_auth"] = token
    return HTTP.post(f"{simulator.url}/index.php", data=body)


def test_live_reads_hits_back_by_visitor_with_idpageview_cut_to_6(simulator: MatomoSimulator) -> None:
    day = (utc_now() - dt.timedelta(days=2)).date()
    hits = [
        f"?idsite=1&rec=1&url=https%3A%2F%2Fa.example%2F{n}&_id={visitor}&cdt={day}+10%3A0{n}%3A00&pv_id={pv}"
        for n, (visitor, pv) in enumerate(
            [("a" * 16, "LongerThanSix123"), ("a" * 16, "abc"), ("b" * 16, "Zz9Yy8"), ("c" * 16, "qqqqqq")]
        )
    ]
    hits.append(f"?idsite=1&rec=1&url=u&_id={'a' * 16}&cdt={day}+10%3A05%3A00&e_c=shop&e_a=buy&e_v=2.5&pv_id=EvEnt1")
    assert bulk(simulator, hits, DEMO_WRITE_TOKEN).json()["tracked"] == 5
    answer = live(
        simulator, idSite=1, period="range", date=f"{day - dt.timedelta(days=1)},{day}", filter_limit=-1,
        segment=f"visitorId=={'a' * 16},visitorId=={'b' * 16}",
    )  # fmt: skip
    assert answer.status_code == 200 and answer.headers["content-type"] == "application/json; charset=utf-8"
    visits = answer.json()
    assert [visit["visitorId"] for visit in visits] == ["a" * 16, "b" * 16]  # newest last action first
    actions = visits[0]["actionDetails"]
    assert [(a["type"], a["idpageview"]) for a in actions] == [("action", "Longer"), ("action", "abc"),
                                                               ("event", "EvEnt1")]  # fmt: skip
    assert actions[0]["timestamp"] == int(dt.datetime(day.year, day.month, day.day, 10, tzinfo=dt.UTC).timestamp())
    assert actions[2]["eventCategory"] == "shop" and actions[2]["eventValue"] == 2.5 and "pageTitle" not in actions[2]
    # A range that ends before the hits, and a visitor that sent nothing, find nothing.
    assert live(simulator, idSite=1, period="range", date=f"{day - dt.timedelta(days=3)},{day - dt.timedelta(days=1)}",
                filter_limit=-1).json() == []  # fmt: skip
    assert live(simulator, idSite=1, period="day", date=str(day), segment="visitorId==" + "d" * 16).json() == []
    # filter_limit and filter_offset page the visits; pageviewId is no segment (HTTP 200 result:error).
    paged = live(simulator, idSite=1, period="day", date=str(day), filter_limit=1, filter_offset=1).json()
    assert [visit["visitorId"] for visit in paged] == ["c" * 16]
    refused = live(simulator, idSite=1, period="day", date=str(day), segment="pageviewId==Longer")
    assert refused.status_code == 200 and refused.json()["result"] == "error"


def test_live_refuses_like_matomo(simulator: MatomoSimulator) -> None:
    wrong = live(simulator, token="f" * 32, idSite=1, period="day", date="today")
    assert wrong.status_code == 401 and wrong.headers["content-type"].startswith("text/html")
    missing = live(simulator, token=None, idSite=1, period="day", date="today")
    assert missing.status_code == 401 and missing.json()["result"] == "error"
    for params in ({"idSite": 99, "period": "day", "date": "today"}, {"idSite": 1, "period": "day", "date": "x"}):
        answer = live(simulator, **params)
        assert answer.status_code == 200 and answer.json()["result"] == "error"


def test_single_requests_answer_a_gif_204_or_400(simulator: MatomoSimulator) -> None:
    url = f"{simulator.url}/piwik.php"
    single = HTTP.get(url, params={"idsite": 1, "rec": 1, "url": "https://a.example/"})
    assert single.status_code == 200 and single.content == GIF and single.headers["content-type"] == "image/gif"
    assert HTTP.get(url, params={"idsite": 1, "rec": 1, "url": "u", "send_image": 0}).status_code == 204
    refused = HTTP.get(url, params={"idsite": 42, "rec": 1, "url": "u"})
    assert refused.status_code == 400 and refused.content.startswith(GIF) and b"Matomo" in refused.content
    form = HTTP.post(url, data={"idsite": "1", "rec": "1", "url": "posted", "cdt": ago(days=3)})
    assert form.status_code == 400
    form = HTTP.post(
        url, data={"idsite": "1", "rec": "1", "url": "posted", "cdt": ago(days=3), "token_auth": DEMO_WRITE_TOKEN}
    )
    assert form.status_code == 200
    assert [hit.params["url"] for hit in simulator.stored()] == ["https://a.example/", "u", "posted"]


def test_queued_mode_answers_first_and_validates_later() -> None:
    with MatomoSimulator(queued=True) as simulator:
        requests = ["?idsite=1&rec=1&url=ok", "?idsite=9&rec=1&url=bad"]
        assert bulk(simulator, requests).json() == {"status": "success", "tracked": 2, "invalid": 0}
        assert [hit.params["url"] for hit in simulator.stored()] == ["ok"]
        direct = [f"{r}&queuedtracking=0" for r in requests]
        assert bulk(simulator, direct).json() == {"status": "success", "tracked": 1, "invalid": 1}


def test_bulk_disabled_answers_400(simulator: MatomoSimulator) -> None:
    simulator.bulk_enabled = False
    assert bulk(simulator, ["?idsite=1&rec=1&url=u"]).status_code == 400
    assert simulator.stored() == []
