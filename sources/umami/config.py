"""Every Umami setting, in one place: `[sources.umami]` in .dlt/*.toml or `SOURCES__UMAMI__*` variables."""

from __future__ import annotations

import uuid
from typing import Any, ClassVar

from dlt.common.configuration import configspec
from dlt.common.typing import TSecretStrValue

from sources.common.config import DaysConfig, check_base_url, config_list
from sources.common.errors import ConfigError
from sources.common.pool import shared_client
from sources.common.ratelimit import parse_windows

from .client import UmamiClient
from .settings import (
    API_VERSIONS,
    CLOUD_BASE_URL,
    DEFAULT_HISTORY_DAYS,
    DEFAULT_LOOKBACK_DAYS,
    METRICS_PAGE_LIMIT,
    REPORT_WINDOWS,
    ROWS_PAGE_SIZE,
)


@configspec
class UmamiConfig(DaysConfig):
    VENDOR: ClassVar[str] = "umami"
    HISTORY_DAYS: ClassVar[int] = DEFAULT_HISTORY_DAYS

    base_url: str | None = None  # a self-hosted Umami; Umami Cloud: leave out and set api_key
    username: str | None = None  # self-hosted
    password: TSecretStrValue | None = None
    api_key: TSecretStrValue | None = None  # Umami Cloud, instead of username/password
    api_version: str = "auto"  # "2" | "3": known without asking, declared reports are checked before any request
    website_ids: Any = ()  # default: every website the credentials can read
    reports: Any = ""  # [[sources.umami.reports]]: declared reports
    report_window: str = "day"  # "week" | "month"
    lookback_days: int = DEFAULT_LOOKBACK_DAYS  # today is still filling up; yesterday's last hour lands late
    rate_limits: Any = ""  # [[calls, seconds], ...]; default: Umami Cloud's 50 per 15 s there, none self-hosted
    request_timeout: float = 60.0
    page_size: int = ROWS_PAGE_SIZE
    metrics_page_limit: int = METRICS_PAGE_LIMIT

    def on_resolved(self) -> None:
        if self.api_key and (self.username or self.password):
            raise ConfigError(
                "sources.umami: set either api_key (Umami Cloud) or username and password (self-hosted), not both"
            )
        if not self.api_key:
            missing = [name for name in ("username", "password") if not getattr(self, name)]
            if missing:
                raise ConfigError(
                    f"sources.umami.{' and '.join(missing)} not set: a self-hosted Umami needs username and "
                    "password (SOURCES__UMAMI__USERNAME / SOURCES__UMAMI__PASSWORD); Umami Cloud needs api_key instead"
                )
            if not self.base_url:
                raise ConfigError(
                    "sources.umami.base_url is not set: give your Umami's address, e.g. https://umami.example.com "
                    "(Umami Cloud users set api_key and may leave base_url out)"
                )
        self.base_url = self.base_url or CLOUD_BASE_URL
        check_base_url(self.base_url, self.key("base_url"))
        self.check_one_of("api_version", API_VERSIONS)
        self.check_one_of("report_window", REPORT_WINDOWS)
        self.rate_limits = config_list(self.rate_limits, self.key("rate_limits"))
        parse_windows(self.rate_limits)
        self.website_ids = config_list(self.website_ids, self.key("website_ids")) or []
        for website_id in self.website_ids:
            try:
                uuid.UUID(str(website_id))
            except ValueError:  # the server would fail (HTTP 500), not answer "unknown"
                raise ConfigError(
                    f"{self.key('website_ids')}: {website_id!r} is not an Umami website id (a UUID such as "
                    "889c2ab0-beb2-445e-b748-02cc82f93608, shown in the website's settings)"
                ) from None

    def client(self, timeout: float | None = None) -> UmamiClient:
        """The account's client, one per process for these settings (backfill windows share its login, version and
        rate limiter); with `timeout`, a one-off of its own (`check`)."""

        def build() -> UmamiClient:
            return UmamiClient(
                str(self.base_url),
                username=self.username,
                password=self.password,
                api_key=self.api_key,
                api_version=self.api_version,
                rate_limits=self.rate_limits,
                timeout=timeout or self.request_timeout,
                rows_page_size=self.page_size,
                metrics_page_limit=self.metrics_page_limit,
            )

        return build() if timeout is not None else shared_client(build, *self.client_identity())
