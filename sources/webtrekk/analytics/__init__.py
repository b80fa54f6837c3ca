"""Mapp Analytics (the Mapp Intelligence REST Analytics API): the analyses a Webtrekk customer still gets after the
JSON-RPC sunset, loaded by the webtrekk source into its dataset.

`config` (the `analytics_*` settings, queries and reports), `client` (token, calculations, polling), `results`
(answers as typed tables), `resources` (the dlt resources), `quota` (the month's allowance), `settings` (constants).
"""

from __future__ import annotations

from .client import AnalyticsClient, AnalyticsError
from .config import AnalyticsConfig
from .quota import analytics_quota, check_analytics
from .resources import analytics_resources

__all__ = [
    "AnalyticsClient",
    "AnalyticsConfig",
    "AnalyticsError",
    "analytics_quota",
    "analytics_resources",
    "check_analytics",
]
