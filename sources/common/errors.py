"""Typed errors shared by every vendor, so the CLI can map each to one clear message."""

from __future__ import annotations


class ClickhaulError(Exception):
    """Base of every error clickhaul raises on purpose; the CLI prints its message without a trace."""


class ConfigError(ClickhaulError):
    """Bad or missing configuration: raised before any request is made."""


class AuthError(ClickhaulError):
    """The vendor refused the credentials (after one fresh login, where that applies)."""


class RateLimitedError(ClickhaulError):
    """The vendor kept refusing for rate limits after every retry was spent."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class DataError(ClickhaulError):
    """An answer that cannot be stored as declared (e.g. a key column of the wrong type)."""


class TransientError(ClickhaulError):
    """A failure worth retrying: 5xx, dropped connection, truncated body."""


class VendorError(ClickhaulError):
    """The vendor answered with an error of its own; carries the vendor's name, message and code."""

    def __init__(
        self,
        vendor: str,
        message: str,
        *,
        code: str | int | None = None,
        status: int | None = None,
        name: str | None = None,
    ) -> None:
        self.vendor = vendor
        self.vendor_message = message
        self.code = code
        self.status = status
        self.name = name
        details = ", ".join(
            part
            for part in (
                f"name {name}" if name else "",
                f"code {code}" if code is not None else "",
                f"HTTP {status}" if status is not None else "",
            )
            if part
        )
        super().__init__(f"{vendor} error: {message}" + (f" ({details})" if details else ""))
