"""WebtrekkConfig: one declaration read from the same keys as before, analytics_* settings in its nested
AnalyticsConfig, clients shared by the backfill windows of one account and never between two accounts."""

from __future__ import annotations

import pytest

from sources.common.config import environment
from sources.common.errors import ConfigError
from sources.webtrekk.config import WebtrekkConfig

ACCOUNT = {
    "SOURCES__WEBTREKK__CUSTOMER_ID": "111111111111111",
    "SOURCES__WEBTREKK__LOGIN": "someone",
    "SOURCES__WEBTREKK__PASSWORD": "config-test-password",
}
ANALYTICS = {
    "SOURCES__WEBTREKK__ANALYTICS_CLIENT_ID": "client",
    "SOURCES__WEBTREKK__ANALYTICS_CLIENT_SECRET": "config-test-secret",
}


def test_analytics_settings_go_to_the_nested_config_by_their_keys() -> None:
    with environment({**ACCOUNT, **ANALYTICS, "SOURCES__WEBTREKK__ANALYTICS_CONCURRENCY": "3"}):
        config = WebtrekkConfig.from_config(analytics_window="week", export_types=["page_urls"])
    assert config.analytics.analytics_concurrency == 3 and config.analytics.window == "week"
    assert config.analytics.enabled and config.jsonrpc
    assert [export.name for export in config.exports] == ["page_urls"]


def test_an_analytics_only_account_needs_no_jsonrpc_credentials() -> None:
    with environment(ANALYTICS):
        config = WebtrekkConfig.from_config()
    assert not config.jsonrpc and config.analytics.enabled
    with pytest.raises(ConfigError, match="SOURCES__WEBTREKK__CUSTOMER_ID"):
        config.client()  # the write-back commands need them


def test_backfill_windows_share_one_client_per_account() -> None:
    with environment({**ACCOUNT, **ANALYTICS}):
        first = WebtrekkConfig.from_config(start_date="2026-01-01", end_date="2026-01-07")
        second = WebtrekkConfig.from_config(start_date="2026-01-08", end_date="2026-01-14")
        other = WebtrekkConfig.from_config(start_date="2026-01-01", end_date="2026-01-07", login="someone-else")
    assert first.client() is second.client() and first.client() is not other.client()
    assert first.analytics.client(first.request_timeout) is second.analytics.client(second.request_timeout)
    assert first.client(timeout=5.0) is not first.client()  # a one-off (`check`) is its own
