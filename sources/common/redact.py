"""One process-wide registry of secret values, masked in every log record and error message.

Masking happens in the log-record factory, so it covers every logger (ours, dlt's, httpx's) and every
handler, including ones added after the secret was registered.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from typing import Any

MASK = "***"
_MIN_SECRET_LENGTH = 4  # shorter values would mask ordinary words and digits

_lock = threading.Lock()
_secrets: set[str] = set()
_factory_installed = False


def register_secret(value: str | None) -> None:
    """Remember a secret (password, token, client secret) so it never leaves the process in clear."""
    if not value or len(value) < _MIN_SECRET_LENGTH:
        return
    with _lock:
        _secrets.add(value)
    _install_record_factory()


def register_secrets(values: Iterable[str | None]) -> None:
    for value in values:
        register_secret(value)


def forget_secrets() -> None:
    """Tests use this to start from a clean registry."""
    with _lock:
        _secrets.clear()


def redact(text: str) -> str:
    """Mask every registered secret in `text`; longest first so a secret inside another is not half-masked."""
    with _lock:
        secrets = sorted(_secrets, key=len, reverse=True)
    for secret in secrets:
        if secret in text:
            text = text.replace(secret, MASK)
    return text


def redact_value(value: Any) -> Any:
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {key: redact_value(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(redact_value(item) for item in value)
    return value


def _install_record_factory() -> None:
    global _factory_installed
    with _lock:
        if _factory_installed:
            return
        _factory_installed = True
    previous = logging.getLogRecordFactory()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        if _secrets:
            # Render once, then mask: arguments may hold secrets that the format string does not show.
            try:
                message = record.getMessage()
            except Exception:  # a broken format string is the caller's bug; leave it to logging
                return record
            record.msg = redact(message)
            record.args = None
            if record.exc_info and record.exc_info[1] is not None and not record.exc_text:
                record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
                record.exc_info = None
        return record

    logging.setLogRecordFactory(factory)
