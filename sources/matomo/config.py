"""Every Matomo source setting, in one place: `[sources.matomo]` in .dlt/*.toml or `SOURCES__MATOMO__*` variables."""

from __future__ import annotations

from typing import Any, ClassVar

from dlt.common.configuration import configspec
from dlt.common.typing import TSecretStrValue

from sources.common.config import DaysConfig, check_base_url, config_list, require
from sources.common.errors import ConfigError
from sources.common.pool import shared_client

from .client import MatomoReader
from .settings import (
    DEFAULT_HISTORY_DAYS,
    DEFAULT_LOOKBACK_DAYS,
    DEFAULT_PAGE_SIZE,
    DEFAULT_WORKERS,
    MAX_PAGE_SIZE,
    MAX_WORKERS,
)


@configspec
class MatomoSourceConfig(DaysConfig):
    VENDOR: ClassVar[str] = "matomo"
    HISTORY_DAYS: ClassVar[int] = DEFAULT_HISTORY_DAYS

    base_url: str | None = None  # the Matomo address, e.g. https://matomo.example.com (required)
    token_auth: TSecretStrValue | None = None  # a token with view access (required); sent in POST bodies only
    site_ids: Any | None = None  # default: every site the token can view
    # `timezone` (inherited): today's date for the default start_date, and the days of a site whose Matomo
    # timezone is a fractional UTC offset; every other site's days are in its own timezone.
    lookback_days: int = DEFAULT_LOOKBACK_DAYS
    page_size: int = DEFAULT_PAGE_SIZE  # visits per Live.getLastVisitsDetails page
    request_timeout: float = 120.0
    workers: int = DEFAULT_WORKERS  # (site, day) windows of a resource read at once

    def on_resolved(self) -> None:
        require(self.VENDOR, base_url=self.base_url, token_auth=self.token_auth)
        check_base_url(self.base_url or "", self.key("base_url"))
        self.check_between("workers", 1, MAX_WORKERS)
        self.check_between("page_size", 1, MAX_PAGE_SIZE)
        ids = config_list(self.site_ids, self.key("site_ids"))
        if ids is not None:
            try:
                ids = [int(str(value).strip()) for value in ids]
            except ValueError:
                raise ConfigError(
                    f"{self.key('site_ids')} {self.site_ids!r} must list site ids (whole numbers), e.g. [1, 3]"
                ) from None
        self.site_ids = ids

    def reader(self, timeout: float | None = None) -> MatomoReader:
        """The Matomo's reader, one per process for these settings; `timeout` (a one-off, `check`): its own."""
        assert self.base_url and self.token_auth  # on_resolved required them
        url, token = self.base_url, str(self.token_auth)
        if timeout is not None:
            return MatomoReader(url, token, timeout=timeout)
        return shared_client(lambda: MatomoReader(url, token, timeout=self.request_timeout), *self.client_identity())
