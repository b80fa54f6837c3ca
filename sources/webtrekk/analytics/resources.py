"""The Mapp Analytics resources of the webtrekk source: metadata listings, one resource per declared query and
per declared report, calculated per window (`analytics_window`), `analytics_concurrency` at a time, merged on the
dimension columns plus the window. Calculations still running when a run fails or is interrupted are cancelled."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TypeVar

import dlt
from dlt.extract.hints import make_hints
from dlt.sources import DltResource

from sources.common.arrow import TableSpec
from sources.common.errors import ClickhaulError
from sources.common.fanout import fan_out
from sources.common.incremental import ACCOUNT
from sources.common.lazy import Once, SharedUse
from sources.common.monitor import current_monitor
from sources.common.windows import DateWindow

from .client import AnalyticsClient, Calculations, usage_line
from .config import AnalyticsQuery, AnalyticsReport, time_filter, with_time_range
from .results import ObjectInfo, element_table, object_catalogue, page, result_rows, result_shape
from .settings import LABEL

if TYPE_CHECKING:  # the webtrekk config nests this API's; imported at run time, it would import itself
    from ..config import WebtrekkConfig

log = logging.getLogger("clickhaul.webtrekk.analytics")
R = TypeVar("R")


class AnalyticsRun:
    """Counts the analytics resources running in this source; the last to finish logs the month's usage."""

    def __init__(self, client: AnalyticsClient) -> None:
        self.client = client
        self._started = (0, 0)
        self._users = SharedUse(on_first=self.start, on_last=self.report)

    def start(self) -> None:
        self._started = (self.client.stats.calculations, self.client.stats.cached)

    @contextmanager
    def use(self) -> Iterator[AnalyticsClient]:
        with self._users.use():
            yield self.client

    def report(self) -> None:
        calculated = self.client.stats.calculations - self._started[0]
        cached = self.client.stats.cached - self._started[1]
        try:
            line = usage_line(self.client.usage())
        except ClickhaulError as error:
            line = f"{LABEL} usage unavailable ({error})"
        log.warning("%s; this run: %d calculated, %d cached", line, calculated, cached)


def analytics_resources(config: WebtrekkConfig) -> Iterator[DltResource]:
    """Metadata, then one resource per declared query and report. Defining them makes no request."""
    analytics = config.analytics
    client = analytics.client(config.request_timeout)
    run = AnalyticsRun(client)
    objects_answer = Once(lambda: client.query_objects(analytics.analytics_language))
    catalogue = Once(lambda: object_catalogue(objects_answer()))
    yield from metadata_resources(client, analytics.analytics_language, objects_answer)
    for query in analytics.queries:
        yield query_resource(run, query, config, catalogue)
    for report in analytics.reports:
        yield report_resource(run, report, config, catalogue)


QUERY_OBJECTS = TableSpec(
    {
        "name": "text",
        "kind": "text",
        "data_type": "text",
        "title": "text",
        "element_type": "text",
        "context": "text",
        "metric_display_type": "text",
        "time_format_pattern": "text",
        "sortable": "bool",
        "mapping": "json",
    },
    ("name", "kind"),
)
SEGMENTS = TableSpec({"id": "bigint", "title": "text", "description": "text"}, ("id",))
DYNAMIC_TIMEFILTERS = TableSpec({"name": "text", "title": "text", "dynamic_filter": "json"}, ("name",))


def metadata_resources(
    client: AnalyticsClient, language: str, objects_answer: Once[dict[str, Any]]
) -> Iterator[DltResource]:
    def listing(name: str, spec: TableSpec, fetch: Callable[[], list[dict[str, Any]]]) -> DltResource:
        def load() -> Iterator[Any]:
            rows = fetch()
            if rows:
                yield spec.arrow(rows)

        return dlt.resource(
            load, name=name, write_disposition="replace", primary_key=spec.primary_key, columns=spec.hints()
        )

    def objects() -> list[dict[str, Any]]:
        answer = objects_answer()
        return [
            {
                "name": item.get("name"),
                "kind": kind,
                "data_type": item.get("dataType"),
                "title": item.get("title"),
                "element_type": item.get("elementType"),
                "context": item.get("context"),
                "metric_display_type": item.get("metricDisplayType"),
                "time_format_pattern": item.get("timeFormatPattern"),
                "sortable": item.get("sortable"),
                "mapping": item.get("mapping"),
            }
            for group, kind in (("metrics", "metric"), ("dimensions", "dimension"))
            for item in answer.get(group) or []
            if isinstance(item, Mapping)
        ]

    def segments() -> list[dict[str, Any]]:
        return [
            {"id": s.get("id"), "title": s.get("title"), "description": s.get("description")} for s in client.segments()
        ]

    def timefilters() -> list[dict[str, Any]]:
        return [
            {"name": f.get("name"), "title": f.get("title"), "dynamic_filter": f.get("dynamicFilter")}
            for f in client.dynamic_timefilters(language)
        ]

    yield listing("analytics_query_objects", QUERY_OBJECTS, objects)
    yield listing("analytics_segments", SEGMENTS, segments)
    yield listing("analytics_dynamic_timefilters", DYNAMIC_TIMEFILTERS, timefilters)


@contextmanager
def cancelled_on_exit(calculations: Calculations) -> Iterator[Calculations]:
    """Whatever ends the run early (an error, Ctrl-C, dlt closing the generator) cancels what still runs."""
    try:
        yield calculations
    except BaseException as error:
        calculations.cancel_all(type(error).__name__)
        raise
    finally:
        calculations.stopped.set()


def windowed_resource(
    run: AnalyticsRun,
    table: str,
    config: WebtrekkConfig,
    calculate: Callable[[AnalyticsClient, Calculations, DateWindow], R],
    pages: Callable[[DateWindow, R], Iterator[Any]],
) -> DltResource:
    """What queries and reports share: windows from the day cursor, `analytics_concurrency` calculations at a time,
    every one still running cancelled when the run ends early. `pages` turns one window's result into dlt items."""
    days, timezone, analytics = config.days, config.timezone, config.analytics

    def load() -> Iterator[Any]:
        plan = days.plan(table, timezone, [ACCOUNT])
        windows = [window for _, window in plan.windows(analytics.window, timezone)]
        if not windows:
            return
        monitor = current_monitor()
        monitor.task(table, len(windows))
        with run.use() as client, cancelled_on_exit(Calculations(client)) as calculations:

            def read(window: DateWindow) -> Iterator[Any]:
                items = pages(window, calculate(client, calculations, window))
                yield from plan.changed(ACCOUNT, window, monitor.counted(table, items))

            # A failing window wakes the pollers of the others at once (on_stop), not after their calculations.
            yield from fan_out(
                windows, read, analytics.analytics_concurrency, f"webtrekk_{table}", on_stop=calculations.stopped.set
            )
        plan.complete()

    return days.merge_resource(load, table)


def query_resource(
    run: AnalyticsRun, query: AnalyticsQuery, config: WebtrekkConfig, catalogue: Once[dict[str, ObjectInfo]]
) -> DltResource:
    def calculate(client: AnalyticsClient, calculations: Calculations, window: DateWindow) -> dict[str, Any]:
        label = f"{LABEL} query {query.name!r} for {window}"
        return client.run_query(label, with_time_range(query.query_object, window), calculations)

    def pages(window: DateWindow, result: dict[str, Any]) -> Iterator[Any]:
        shape = result_shape(result, catalogue())
        rows = result_rows(result, shape, window, query.kpi)
        if rows:
            yield page(shape.spec, rows, primary_key=list(shape.spec.primary_key))

    return windowed_resource(run, query.table, config, calculate, pages)


def report_resource(
    run: AnalyticsRun, report: AnalyticsReport, config: WebtrekkConfig, catalogue: Once[dict[str, ObjectInfo]]
) -> DltResource:
    """/report-query per window; each element lands in `analytics_report_<report>__<element>`."""

    def calculate(
        client: AnalyticsClient, calculations: Calculations, window: DateWindow
    ) -> list[tuple[str, dict[str, Any]]]:
        body: dict[str, Any] = {
            "id": report.report_id,
            "elementIds": list(report.element_ids),
            "configuration": report.configuration,
            "timeFilter": time_filter(window),
        }
        return client.run_report(f"{LABEL} report {report.name!r} for {window}", body, calculations)

    def pages(window: DateWindow, elements: list[tuple[str, dict[str, Any]]]) -> Iterator[Any]:
        for element, result in elements:
            shape = result_shape(result, catalogue())
            rows = result_rows(result, shape, window)
            if not rows:
                continue
            hints = make_hints(
                table_name=f"{report.table}__{element_table(element)}",
                write_disposition="merge",
                primary_key=list(shape.spec.primary_key),
                columns=shape.spec.hints(),
            )
            yield dlt.mark.with_hints(shape.spec.arrow(rows), hints, create_table_variant=True)

    return windowed_resource(run, report.table, config, calculate, pages)
