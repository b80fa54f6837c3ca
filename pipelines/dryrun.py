"""`clickhaul run --dry-run`: what a run would load (days, resources) and what it would cost in requests, against
the vendor's rate limit, before a single data request is made.

The count is a floor: one request per resource, site and day (per month for series endpoints), one per metadata
resource; paging adds requests where a day has more rows than a page. Sites are counted from configuration, or
by the vendor's site list (a metadata request) where the run would read all of them.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dlt
from dlt.common.pipeline import get_dlt_pipelines_dir

from sources.common.accounts import account_pipeline_name, account_section, current_account, use_account
from sources.common.clock import today_utc
from sources.common.config import config_list
from sources.common.errors import ClickhaulError
from sources.common.incremental import DayCursor, day_cursor_of
from sources.common.monitor import duration

from .catalog import defined_source, placeholders
from .options import LoadOptions
from .registry import VendorSpec
from .runner import check_pipeline_name, check_range_size, parse_range, parse_resources
from .status import table_watermarks
from .warehouse import resolve_warehouse


@dataclass(frozen=True)
class Shape:
    """How a vendor's requests multiply: over which configured sites, which resources go by month, its limits."""

    sites_key: str | None = None  # the config list resources fan out over; None: one account, no fan-out
    sites_resource: str | None = None  # the metadata resource that lists every site when the key is unset
    monthly: frozenset[str] = frozenset()
    rate_limits: Sequence[Sequence[float]] = ()


def shapes() -> dict[str, Shape]:
    from sources.pirsch.settings import ENDPOINTS
    from sources.umami.settings import CLOUD_RATE_LIMITS
    from sources.webtrekk.settings import DEFAULT_RATE_LIMITS

    umami_limits = CLOUD_RATE_LIMITS if _configured("sources.umami.api_key") else ()
    return {
        "pirsch": Shape("domain_ids", "domains", frozenset(e.table for e in ENDPOINTS if e.kind == "series")),
        "webtrekk": Shape(rate_limits=DEFAULT_RATE_LIMITS),
        "umami": Shape("website_ids", "websites", rate_limits=umami_limits),
        "opentracker": Shape("sites"),
        "matomo": Shape("site_ids", "sites"),
    }


def _configured(key: str) -> Any:
    for provider in (dlt.secrets, dlt.config):
        value: Any
        try:
            value = provider.get(key)
        except Exception:
            value = None
        if value not in (None, ""):
            return value
    return None


@dataclass
class ResourcePlan:
    name: str
    first: dt.date | None
    last: dt.date | None
    requests: int

    @property
    def days(self) -> int:
        return (self.last - self.first).days + 1 if self.first and self.last and self.last >= self.first else 0


@dataclass
class DryRun:
    vendor: str
    pipeline: str
    warehouse: str
    fixed: bool
    sites: int | None
    site_word: str
    resources: list[ResourcePlan] = field(default_factory=list)
    rate_limits: Sequence[Sequence[float]] = ()

    @property
    def requests(self) -> int:
        return sum(plan.requests for plan in self.resources)

    def render(self) -> str:
        days = [plan for plan in self.resources if plan.first]
        lines = [
            f"{self.vendor} dry run: nothing is loaded or written, no data endpoint is called",
            f"  into {self.warehouse} (pipeline {self.pipeline})",
        ]
        if days:
            first, last = min(p.first for p in days if p.first), max(p.last for p in days if p.last)
            how = "fixed range" if self.fixed else "incremental: from each table's watermarks minus the lookback"
            lines.append(f"  days: {first}..{last} ({(last - first).days + 1} days, {how})")
        lines.append(f"  resources ({len(self.resources)}): {', '.join(plan.name for plan in self.resources)}")
        if self.sites is not None:
            lines.append(f"  {self.site_word}: {self.sites}")
        per_site = "" if self.sites is not None or self.site_word == "" else f" per {self.site_word.rstrip('s')}"
        lines.append(
            f"  requests: at least {self.requests:,}{per_site} (one per resource, site and day or month; "
            "paging adds more)"
        )
        if self.rate_limits:
            limits = ", ".join(f"{int(n)} per {seconds:g} s" for n, seconds in self.rate_limits)
            least = max(math.floor((self.requests - 1) / n) * seconds for n, seconds in self.rate_limits)
            lines.append(f"  rate limit {limits}: at least {duration(max(0.0, least))} for these requests")
        else:
            lines.append("  rate limit: none documented for these endpoints")
        return "\n".join(lines)


def plan_run(
    spec: VendorSpec, options: LoadOptions, *, start: str | None, end: str | None, account: str | None = None
) -> DryRun:
    """The plan of one account's run (None: the implicit one): its settings, sites and pipeline state."""
    with use_account(account):
        return _plan(spec, options, start, end)


def _plan(spec: VendorSpec, options: LoadOptions, start: str | None, end: str | None) -> DryRun:
    start_date, end_date = parse_range(start, end)
    check_range_size(start_date, end_date)
    selected = parse_resources(spec, options.resources)
    base = check_pipeline_name(options.pipeline_name or f"clickhaul_{spec.name}")
    name = account_pipeline_name(base)
    pipelines_dir = options.pipelines_dir
    kwargs: dict[str, Any] = {}
    if start_date:
        kwargs = {"start_date": start_date, "end_date": end_date or today_utc()}
    source = defined_source(spec, **kwargs)
    if selected:
        source = source.with_resources(*selected)
    shape = shapes().get(spec.name, Shape())
    sites = count_sites(spec, shape, source)
    watermarks = saved_watermarks(name, pipelines_dir)
    warehouse = resolve_warehouse(  # every account loads into the one warehouse of the base pipeline
        base, database=options.database, destination=options.destination, pipelines_dir=pipelines_dir
    )
    plan = DryRun(
        f"{spec.name} (account {current_account()})" if current_account() else spec.name,
        name,
        warehouse.describe(),
        bool(start_date),
        sites,
        shape.sites_key.removesuffix("_ids").replace("_", " ") + "s" if shape.sites_key else "",
        rate_limits=configured_limits(spec, shape),
    )
    for resource_name, resource in source.selected_resources.items():
        cursor = day_cursor_of(resource)
        if cursor is None:
            plan.resources.append(ResourcePlan(resource_name, None, None, 1))
            continue
        spans = entity_spans(cursor, watermarks.get(resource_name, {}), sites or 1)
        if not spans:
            plan.resources.append(ResourcePlan(resource_name, None, None, 0))
            continue
        monthly = resource_name in shape.monthly
        windows = sum(months(first, last) if monthly else (last - first).days + 1 for first, last in spans)
        first, last = min(first for first, _ in spans), max(last for _, last in spans)
        plan.resources.append(ResourcePlan(resource_name, first, last, windows))
    return plan


def entity_spans(cursor: DayCursor, marks: dict[str, str], entities: int) -> list[tuple[dt.date, dt.date]]:
    """The days each entity would ask: the fixed range, or from its watermark minus the lookback to today; the
    entities the state does not know yet (or all, on a first run) from `start_date`."""
    if cursor.end_date is not None:
        return [(cursor.start_date, cursor.end_date)] * entities
    if "*" in marks:  # an earlier version's one cursor for the table: every entity's watermark
        marks = {str(index): marks["*"] for index in range(entities)}
    known = [cursor.span(dt.date.fromisoformat(day), "UTC") for day in marks.values()]
    new = [cursor.span(None, "UTC")] * max(0, entities - len(marks))
    return [span for span in known + new if span is not None]


def months(first: dt.date, last: dt.date) -> int:
    return max(0, (last.year - first.year) * 12 + last.month - first.month + 1) if last >= first else 0


def count_sites(spec: VendorSpec, shape: Shape, source: Any) -> int | None:
    """Configured sites, or the vendor's list of them (a metadata request) when the run reads all of them."""
    if shape.sites_key is None:
        return None
    section = account_section(spec.name)
    listed = config_list(_configured(f"{section}.{shape.sites_key}"), section)
    if listed:
        return len(listed)
    if shape.sites_resource is None or placeholders(spec) or shape.sites_resource not in source.resources:
        return None  # no credentials to ask with: the estimate is per site
    rows = 0
    try:
        for page in source.resources[shape.sites_resource]:
            rows += getattr(page, "num_rows", None) or (len(page) if isinstance(page, list) else 1)
    except Exception as error:
        raise ClickhaulError(f"{spec.name}: cannot list the sites to estimate for: {error}") from None
    return rows


def configured_limits(spec: VendorSpec, shape: Shape) -> Sequence[Sequence[float]]:
    section = account_section(spec.name)
    value = _configured(f"{section}.rate_limits")
    if value:
        pairs = config_list(value, f"{section}.rate_limits") or []
        return [list(pair) for pair in pairs if isinstance(pair, (list, tuple)) and len(pair) == 2]
    return shape.rate_limits


def saved_watermarks(pipeline: str, pipelines_dir: str | None) -> dict[str, dict[str, str]]:
    """The watermarks the pipeline's local state holds, per table and entity (what a run continues from)."""
    directory = Path(pipelines_dir or get_dlt_pipelines_dir()) / pipeline
    if not (directory / "state.json").exists():
        return {}
    attached = dlt.attach(pipeline_name=pipeline, pipelines_dir=str(directory.parent))
    return table_watermarks(dict(attached.state))
