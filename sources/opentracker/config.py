"""Every Opentracker setting, in one place: `[sources.opentracker]` in .dlt/*.toml or `SOURCES__OPENTRACKER__*`."""

from __future__ import annotations

from typing import Any, ClassVar

from dlt.common.configuration import configspec
from dlt.common.typing import TSecretStrValue

from sources.common.config import DaysConfig, check_base_url, config_list
from sources.common.errors import ConfigError
from sources.common.pool import shared_client
from sources.common.windows import WINDOW_UNITS

from .client import OpentrackerClient
from .settings import (
    DEFAULT_BASE_URL,
    DEFAULT_HISTORY_DAYS,
    DEFAULT_LOOKBACK_DAYS,
    DEFAULT_TICKET_SECONDS,
    DEFAULT_WORKERS,
    PAGE_LIMIT,
)


@configspec
class OpentrackerConfig(DaysConfig):
    VENDOR: ClassVar[str] = "opentracker"
    HISTORY_DAYS: ClassVar[int] = DEFAULT_HISTORY_DAYS

    sites: Any = None  # a list, or a comma list (required)
    login: str | None = None
    password: TSecretStrValue | None = None
    ticket_id: TSecretStrValue | None = None  # instead of login/password; expires, cannot be renewed
    base_url: str = DEFAULT_BASE_URL
    use_ticket: bool = True  # log in once for a ticket instead of sending the password with every request
    ticket_url: str | None = None
    ticket_seconds: int = DEFAULT_TICKET_SECONDS
    lookback_days: int = DEFAULT_LOOKBACK_DAYS  # sessions still open at the last run have since ended
    window: str = "day"  # the span of one request walk: day, week or month
    page_limit: int = PAGE_LIMIT
    workers: int = DEFAULT_WORKERS  # windows fetched at once
    filters: dict[str, Any] | None = None
    user_machine_idxs: Any = ()  # for sessions_by_user: a list, or a comma list
    user_visit_ids: Any = ()
    request_timeout: float = 60.0

    def on_resolved(self) -> None:
        self.sites = [
            str(site).strip() for site in config_list(self.sites, self.key("sites")) or () if str(site).strip()
        ]
        if not self.sites:
            raise ConfigError(f'{self.key("sites")} is empty: list the sites to load, e.g. sites = ["www.example.com"]')
        check_base_url(self.base_url, self.key("base_url"))
        if self.ticket_url:
            check_base_url(self.ticket_url, self.key("ticket_url"))
        self.check_one_of("window", WINDOW_UNITS)
        self.check_between("page_limit", 1, PAGE_LIMIT)
        self.check_between("workers", 1, 32)
        if self.ticket_seconds < 10:
            raise ConfigError(f"{self.key('ticket_seconds')} must be at least 10, not {self.ticket_seconds}")
        self.user_machine_idxs = config_list(self.user_machine_idxs, self.key("user_machine_idxs")) or []
        self.user_visit_ids = config_list(self.user_visit_ids, self.key("user_visit_ids")) or []

    def client(self, timeout: float | None = None) -> OpentrackerClient:
        """The account's client, one per process for these settings (backfill windows share its ticket); with
        `timeout`, a one-off of its own (`check`)."""

        def build() -> OpentrackerClient:
            return OpentrackerClient(
                self.base_url,
                login=self.login,
                password=self.password,
                ticket_id=self.ticket_id,
                use_ticket=self.use_ticket,
                ticket_url=self.ticket_url,
                ticket_seconds=self.ticket_seconds,
                timezone=self.timezone,
                page_limit=self.page_limit,
                timeout=timeout or self.request_timeout,
            )

        return build() if timeout is not None else shared_client(build, *self.client_identity())
