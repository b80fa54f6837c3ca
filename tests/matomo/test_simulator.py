"""The simulator answers the way Matomo 5 does (the tracking API document and API-NOTES.md)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import httpx

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


def test_transactional_failure_answers_error_with_tracked_and_stores_nothing() -> None:
    with MatomoSimulator(transaction_failure_rate=1.0) as simulator:
        answer = bulk(simulator, [f"?idsite=1&rec=1&url=u{i}" for i in range(20)], DEMO_SUPERUSER_TOKEN)
        assert answer.status_code == 500
        body = answer.json()
        assert body["status"] == "error" and body["tracked"] > 0
        assert simulator.stored() == []


def test_send_image_0_in_bulk_loses_the_counts(simulator: MatomoSimulator) -> None:
    answer = bulk(simulator, ["?idsite=1&rec=1&url=u&send_image=0"])
    assert answer.status_code == 204 and answer.content == b""
    assert len(simulator.stored()) == 1


def test_single_requests_answer_a_gif_204_or_400(simulator: MatomoSimulator) -> None:
    url = f"{simulator.url}/piwik.php"
    single = HTTP.get(url, params={"idsite": 1, "rec": 1, "url": "https://a.example/"})
    assert single.status_code == 200 and single.content == GIF and single.headers["content-type"] == "image/gif"
    assert HTTP.get(url, params={"idsite": 1, "rec": 1, "url": "u", "send_image": 0}).status_code == 204
    assert HTTP.get(url, params={"idsite": 42, "rec": 1, "url": "u"}).status_code == 400
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
