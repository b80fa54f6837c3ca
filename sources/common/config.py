"""Turn dlt's configuration failures into one message that names the key and the variable to set."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, ClassVar, Self, get_origin

from dlt.common.configuration import configspec, resolve_configuration
from dlt.common.configuration.exceptions import ConfigFieldMissingException, ConfigValueCannotBeCoercedException
from dlt.common.configuration.specs import BaseConfiguration
from dlt.common.configuration.specs.base_configuration import extract_inner_hint, is_secret_hint
from dlt.common.configuration.utils import deserialize_value
from dlt.common.typing import is_any_type

from .accounts import account_sections
from .errors import ConfigError
from .redact import register_secrets

if TYPE_CHECKING:
    from .incremental import DayCursor


def config_key(vendor: str, field: str, section: str = "sources") -> str:
    return f"{section}.{vendor}.{field}"


def env_var(vendor: str, field: str, section: str = "sources") -> str:
    return f"{section}__{vendor}__{field}".replace(".", "__").upper()


def missing_config(vendor: str, fields: Iterable[str], section: str = "sources", secret: bool = True) -> ConfigError:
    if section == "sources":
        vendor = ".".join(account_sections(vendor))  # a named account's own table
    lines = []
    for field in fields:
        lines.append(
            f'{config_key(vendor, field, section)} is not set: add `{field} = "..."` under [{section}.{vendor}] '
            f"in .dlt/{'secrets' if secret else 'config'}.toml, or set the environment variable "
            f"{env_var(vendor, field, section)}"
        )
    return ConfigError("missing configuration: " + "; ".join(lines))


def translate_config_error(vendor: str, error: ConfigFieldMissingException, section: str = "sources") -> ConfigError:
    return missing_config(vendor, error.fields, section)


def require(vendor: str, section: str = "sources", **values: object) -> None:
    """Fail with one message for every required setting that is empty."""
    missing = [name for name, value in values.items() if value in (None, "", [])]
    if missing:
        raise missing_config(vendor, missing, section)


_LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1", "[::1]")


def check_base_url(url: str, key: str) -> str:
    """An http(s) URL with a host; plain HTTP only for this machine (simulators), never for a vendor's host."""
    from urllib.parse import urlsplit

    parts = urlsplit(url or "")
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"{key} {url!r} is not a URL: write it as https://host[/path]")
    if parts.scheme == "http" and parts.hostname not in _LOCAL_HOSTS and not parts.hostname.startswith("127."):
        raise ConfigError(f"{key} {url!r} uses plain HTTP: credentials would travel unencrypted; use https://")
    return url


def config_list(value: Any, key: str) -> list[Any] | None:
    """A list setting from TOML (already a list) or an environment variable (a JSON list, or comma-separated)."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        text = value.strip()
        if not text.startswith("["):
            return [part.strip() for part in text.split(",") if part.strip()]
        try:
            value = json.loads(text)
        except ValueError:
            raise ConfigError(f'{key} {text!r} is not a list: write ["a", "b"] or a,b') from None
    if not isinstance(value, (list, tuple)):
        raise ConfigError(f"{key} must be a list, not {value!r}")
    return list(value)


@contextmanager
def environment(values: Mapping[str, str]) -> Iterator[None]:
    """Set environment variables (dlt reads config from them) for the duration of a block, then restore them."""
    saved = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _coerced(name: str, value: Any, hint: Any) -> Any:
    """A value given in code, coerced to its field's type as dlt coerces what it reads (the text "5" to 5)."""
    inner = extract_inner_hint(hint)
    if is_any_type(inner) or isinstance(value, get_origin(inner) or inner):
        return value
    return deserialize_value(name, value, inner)


_IN_WORDS: dict[Any, str] = {
    int: "a whole number",
    float: "a number",
    bool: "true or false",
    list: "a list",
    dict: "a table of settings",
    str: "text",
}


@configspec
class ExplicitArguments(BaseConfiguration):
    """The dlt spec of a source that takes its settings as one VendorConfig (`spec=ExplicitArguments`): dlt then
    injects nothing into the function's arguments, and the VendorConfig is resolved once, by the source."""


@configspec
class VendorConfig(BaseConfiguration):
    """A vendor's settings, declared once: a subclass per vendor adds its own fields (with their defaults) and
    checks them in its `on_resolved`. Resolved the dlt way from `[<section>.<vendor>]` in .dlt/*.toml or
    `<SECTION>__<VENDOR>__<FIELD>` variables, explicit values winning, so bad input fails before any request."""

    VENDOR: ClassVar[str] = ""
    SECTION: ClassVar[str] = "sources"

    def on_resolved(self) -> None:
        """dlt calls every class's `on_resolved`, base classes first: a vendor's checks its own values (raising
        ConfigError naming the key and the fix) after these."""
        register_secrets(
            str(getattr(self, name))
            for name, hint in self.get_resolvable_fields().items()
            if is_secret_hint(hint) and getattr(self, name)
        )

    @classmethod
    def sections(cls) -> tuple[str, ...]:
        """`sources.<vendor>`, or `sources.<vendor>.accounts.<name>` while a named account is in use (see
        `accounts`): dlt falls back from there to the vendor section for settings the account leaves out."""
        vendor = account_sections(cls.VENDOR) if cls.SECTION == "sources" and cls.VENDOR else (cls.VENDOR,)
        return tuple(part for part in (cls.SECTION, *vendor) if part)

    @classmethod
    def key(cls, field: str) -> str:
        return ".".join((*cls.sections(), field))

    @classmethod
    def variable(cls, field: str) -> str:
        return "__".join((*cls.sections(), field)).upper()

    def check_between(self, name: str, low: float, high: float) -> None:
        """A numeric setting's range, in one wording that names the key to fix."""
        value = getattr(self, name)
        if not low <= value <= high:
            raise ConfigError(f"{self.key(name)} must be between {low} and {high}, not {value}")

    def check_one_of(self, name: str, choices: Iterable[str]) -> None:
        value, allowed = getattr(self, name), list(choices)
        if str(value) not in allowed:
            raise ConfigError(f"{self.key(name)} {value!r} is invalid: use one of {', '.join(allowed)}")

    @classmethod
    def from_config(cls, **explicit: Any) -> Self:
        """The settings from config files and variables; `explicit` values (None: not given) win."""
        fields = cls.get_resolvable_fields()
        unknown = sorted(set(explicit) - set(fields))
        if unknown:
            raise ConfigError(
                f"unknown {'.'.join(cls.sections())} setting(s) {', '.join(unknown)}: use {', '.join(sorted(fields))}"
            )
        try:
            # dlt coerces what it reads from files and variables; explicit values the same way here
            given = {name: _coerced(name, value, fields[name]) for name, value in explicit.items() if value is not None}
            return resolve_configuration(cls(), sections=cls.sections(), explicit_value=given or None)
        except ConfigFieldMissingException as error:
            raise missing_config(cls.VENDOR, error.fields, cls.SECTION) from None
        except ConfigValueCannotBeCoercedException as error:
            kind = _IN_WORDS.get(extract_inner_hint(error.hint), "of the right type")
            secret = is_secret_hint(fields.get(error.field_name, error.hint))
            shown = "(the value set)" if secret else repr(error.field_value)  # a secret is never echoed
            table = f"[{'.'.join(cls.sections())}] " if cls.sections() else ""
            raise ConfigError(
                f"{cls.key(error.field_name)} {shown} is not {kind}: set {cls.variable(error.field_name)} or "
                f"{table}{error.field_name} in .dlt/config.toml to one"
            ) from None

    def identity(self, *leave_out: str) -> tuple[object, ...]:
        """What tells one account's client from another's: every setting but `leave_out` (the days a run asks)."""
        values = [(name, getattr(self, name)) for name in self.get_resolvable_fields() if name not in leave_out]
        return (type(self).__name__, repr(values))


@configspec
class DaysConfig(VendorConfig):
    """A source of day-based tables: the days it asks and in which timezone they are calendar days."""

    HISTORY_DAYS: ClassVar[int] = 30  # the first run's default start: that many days ago
    DAY_FIELDS: ClassVar[tuple[str, ...]] = ("start_date", "end_date", "lookback_days")

    timezone: str = "UTC"
    start_date: Any | None = None  # the first run's first day; a fixed range with end_date
    end_date: Any | None = None
    lookback_days: int = 3

    def on_resolved(self) -> None:
        from .windows import check_timezone

        check_timezone(self.timezone)
        if self.lookback_days < 0:
            raise ConfigError(f"{self.key('lookback_days')} must be 0 or more, not {self.lookback_days}")
        self.days  # noqa: B018 - the dates parse, and end is not before start

    @property
    def days(self) -> DayCursor:
        from .incremental import DayCursor, configured_days

        first, last = configured_days(
            self.start_date, self.end_date, self.timezone, self.HISTORY_DAYS, ".".join(self.sections()) + "."
        )
        return DayCursor(first, last, self.lookback_days)

    def client_identity(self) -> tuple[object, ...]:
        return self.identity(*self.DAY_FIELDS)
