"""Turn dlt's configuration failures into one message that names the key and the variable to set."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from dlt.common.configuration.exceptions import ConfigFieldMissingException

from .errors import ConfigError


def config_key(vendor: str, field: str, section: str = "sources") -> str:
    return f"{section}.{vendor}.{field}"


def env_var(vendor: str, field: str, section: str = "sources") -> str:
    return f"{section}__{vendor}__{field}".upper()


def missing_config(vendor: str, fields: Iterable[str], section: str = "sources", secret: bool = True) -> ConfigError:
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
