"""Every Pirsch setting, in one place: `[sources.pirsch]` in .dlt/*.toml or `SOURCES__PIRSCH__*` variables."""

from __future__ import annotations

from typing import Any, ClassVar

from dlt.common.configuration import configspec
from dlt.common.typing import TSecretStrValue

from sources.common.config import DaysConfig, check_base_url, config_list, require
from sources.common.pool import shared_client

from .client import PirschClient
from .settings import DEFAULT_BASE_URL, DEFAULT_HISTORY_DAYS, DEFAULT_LOOKBACK_DAYS, DEFAULT_WORKERS, MAX_WORKERS


@configspec
class PirschConfig(DaysConfig):
    VENDOR: ClassVar[str] = "pirsch"
    HISTORY_DAYS: ClassVar[int] = DEFAULT_HISTORY_DAYS

    client_id: str | None = None  # a client created in Pirsch's settings (required)
    client_secret: TSecretStrValue | None = None  # (required)
    base_url: str = DEFAULT_BASE_URL
    domain_ids: Any | None = None  # default: every domain the client can read
    keywords: bool = False  # needs the Google Search Console integration
    request_timeout: float = 60.0
    workers: int = DEFAULT_WORKERS  # (domain, day) requests of a resource in flight at once
    lookback_days: int = DEFAULT_LOOKBACK_DAYS  # Pirsch restates today and yesterday

    def on_resolved(self) -> None:
        require(self.VENDOR, client_id=self.client_id, client_secret=self.client_secret)
        check_base_url(self.base_url, self.key("base_url"))
        self.check_between("workers", 1, MAX_WORKERS)
        self.domain_ids = config_list(self.domain_ids, self.key("domain_ids"))

    def client(self, timeout: float | None = None) -> PirschClient:
        """The account's client, one per process for these settings (backfill windows share its token)."""
        assert self.client_id and self.client_secret  # on_resolved required them
        client_id, secret = self.client_id, self.client_secret
        if timeout is not None:  # a one-off (`check`): its own client
            return PirschClient(self.base_url, client_id, secret, timeout=timeout)
        return shared_client(
            lambda: PirschClient(self.base_url, client_id, secret, timeout=self.request_timeout),
            *self.client_identity(),
        )
