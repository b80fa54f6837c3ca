"""The month's allowance of Mapp Analytics calculations: `check webtrekk` proves the credentials with it, and a
backfill is refused before its first calculation when it would need more than remain."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from sources.common.errors import ConfigError
from sources.common.windows import DateWindow, split_windows

from .client import usage_line
from .config import AnalyticsConfig
from .settings import LABEL

if TYPE_CHECKING:  # the webtrekk config nests this API's; imported at run time, it would import itself
    from ..config import WebtrekkConfig

CHECK_TIMEOUT_SECONDS = 30.0
QUOTA_TIMEOUT_SECONDS = 60.0


def check_analytics(analytics: AnalyticsConfig) -> str:
    """For `clickhaul check webtrekk`: a token from the token URL and the month's usage prove the credentials."""
    client = analytics.client(CHECK_TIMEOUT_SECONDS, shared=False)
    try:
        usage = client.usage()
    finally:
        client.close()
    return (
        f"{LABEL} at {analytics.analytics_base_url}: token accepted for client {analytics.analytics_client_id}; "
        f"{usage_line(usage)}"
    )


def analytics_quota(
    config: WebtrekkConfig, windows: Sequence[DateWindow], resources: Sequence[str] | None, force: bool
) -> str | None:
    """The calculations the backfill of `windows` needs against the month's allowance: a line for the summary, or
    a ConfigError (unless `force`) when they would not fit. None when no analytics resource is selected."""
    analytics = config.analytics
    if not analytics.enabled:
        return None
    per_window = analytics.calculations_per_window(list(resources) if resources else None)
    if per_window == 0:
        return None
    needed = per_window * sum(
        len(split_windows(window.start, window.end, analytics.window, config.timezone)) for window in windows
    )
    client = analytics.client(min(config.request_timeout, QUOTA_TIMEOUT_SECONDS), shared=False)
    try:
        usage = client.usage()
    finally:
        client.close()
    used = int(usage.get("calculationsCount") or 0)
    allowed = int(usage.get("maxCalculationsAllowed") or 0)
    remaining = max(0, allowed - used)
    line = f"{usage_line(usage)}; this backfill needs up to {needed:,} ({remaining:,} remain)"
    if needed > remaining and not force:
        raise ConfigError(
            f"{LABEL}: this backfill needs up to {needed:,} calculations ({per_window} per "
            f"{analytics.window} window) but only {remaining:,} of the month's {allowed:,} remain "
            f"({used:,} used in {usage.get('year')}-{int(usage.get('month') or 0):02d}): shorten --start/--end, "
            "select fewer analytics_ resources, use a larger analytics_window, or pass --force to run anyway"
        )
    return line
