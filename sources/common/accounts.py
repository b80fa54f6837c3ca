"""A vendor's named accounts: `[sources.<vendor>.accounts.<name>]` (or `SOURCES__<VENDOR>__ACCOUNTS__<NAME>__*`).

An agency has many logins per vendor. Each account is the vendor's settings resolved one level deeper, so a
setting missing under `[sources.pirsch.accounts.client_a]` falls back to `[sources.pirsch]` (shared defaults such
as the timezone). Without any `accounts` table the vendor section itself is the one implicit account `default`,
exactly as before accounts existed.

Which account a process is working for is a context (`use_account`): `VendorConfig.from_config` reads it, so every
source, check and client built inside resolves that account's settings without being told.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from .errors import ConfigError

DEFAULT_ACCOUNT = "default"  # the vendor section's own credentials, when no accounts are declared
ACCOUNT_COLUMN = "account"
_NAME = re.compile(r"^[a-z0-9][a-z0-9_]{0,39}$")

_current: ContextVar[str | None] = ContextVar("clickhaul_account", default=None)


def current_account() -> str | None:
    """The named account being worked on; None for the implicit `default` (the vendor section itself)."""
    return _current.get()


def account_sections(vendor: str) -> tuple[str, ...]:
    """The config path below `sources` of the current account: ("pirsch",) or ("pirsch", "accounts", "client_a")."""
    name = current_account()
    return (vendor, "accounts", name) if name else (vendor,)


def account_section(vendor: str) -> str:
    """The dotted config key of the current account: `sources.pirsch` or `sources.pirsch.accounts.client_a`."""
    return "sources." + ".".join(account_sections(vendor))


def account_pipeline_name(base: str, account: str | None = None) -> str:
    """Each account has its own pipeline (its own state): `clickhaul_pirsch__client_a`; the implicit `default`
    account keeps the name pipelines had before accounts existed."""
    account = account or current_account()
    return base if account in (None, DEFAULT_ACCOUNT) else f"{base}__{account}"


@contextmanager
def use_account(name: str | None) -> Iterator[None]:
    """Resolve every vendor setting in this block for account `name` (None or `default`: the vendor section)."""
    token = _current.set(None if name in (None, DEFAULT_ACCOUNT) else name)
    try:
        yield
    finally:
        _current.reset(token)


def check_account_name(vendor: str, name: str) -> str:
    if name == DEFAULT_ACCOUNT or not _NAME.match(name):
        reason = "is reserved for the vendor section itself" if name == DEFAULT_ACCOUNT else "is not a valid name"
        raise ConfigError(
            f"account {name!r} of {vendor} {reason}: name accounts with lowercase letters, digits and '_' "
            f"(at most 40), as in [sources.{vendor}.accounts.client_a]"
        )
    return name
