"""`clickhaul push matomo` then `clickhaul run matomo`: an Opentracker demo day sent to Matomo comes back whole, as
visits with their page views and as archived reports."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from destinations.matomo import push_table
from simulators.matomo import DEMO_VIEW_TOKEN, MatomoSimulator
from simulators.opentracker import OpentrackerSimulator, demo_plan
from tests.support import Loader
from tests.support.matomo import config_for
from tests.support.retry import FAST_RETRY


@pytest.mark.slow
def test_an_opentracker_demo_day_round_trips_through_matomo(tmp_path: Path) -> None:
    with OpentrackerSimulator() as opentracker:
        plan = demo_plan(opentracker)
        day = plan.end
        source = Loader("opentracker", tmp_path, plan.env, pipeline_name="opentracker_demo")
        source.run(day, day, resources="sessions")
    sessions, pages = source.query("select count(*), sum(number_of_pages_viewed) from opentracker.sessions")[0]
    assert sessions > 0
    with MatomoSimulator() as matomo:
        summary = push_table(
            source.database,
            "opentracker.sessions",
            config=config_for(matomo),
            mapping_name="opentracker_sessions",
            retry=FAST_RETRY,
        )
        assert summary.tracked > 0
        back = Loader(
            "matomo",
            tmp_path,
            {
                "SOURCES__MATOMO__BASE_URL": matomo.url,
                "SOURCES__MATOMO__TOKEN_AUTH": DEMO_VIEW_TOKEN,
                "SOURCES__MATOMO__SITE_IDS": "1",
            },
            pipeline_name="matomo_back",
        )
        # the sessions' days are Amsterdam days; Matomo's site is in UTC: read the UTC days around them
        back.run(day - dt.timedelta(days=1), day + dt.timedelta(days=1))
        visits, actions, summed = back.query(
            "select (select count(*) from matomo.visits), (select count(*) from matomo.actions), "
            "(select sum(nb_visits) from matomo.visits_summary)"
        )[0]
        # Matomo cuts a session whose page views are more than 30 minutes apart into several visits
        assert (visits, actions, summed) == (len(matomo.visits), summary.tracked, len(matomo.visits))
        assert sessions <= visits
        by_visit = back.query("select id_visit, actions from matomo.visits")
        assert sorted(by_visit) == sorted((visit.idvisit, len(visit.actions)) for visit in matomo.visits)
        # every stored hit came back as one action, at its time and URL
        stored = sorted((hit.params["url"], int(hit.timestamp)) for hit in matomo.stored())
        read = sorted(
            (url, int(moment.timestamp())) for url, moment in back.query("select url, timestamp from matomo.actions")
        )
        assert read == stored
        # the visitors' page views add up to what Opentracker counted
        assert actions <= pages
