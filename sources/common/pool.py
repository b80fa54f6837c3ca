"""API clients shared for the life of the process, keyed by what identifies an account.

A backfill builds its source once per window; without sharing, every window would log in again (Pirsch allows
10 token calls a minute), list the same metadata again, and start a fresh rate limiter that knows nothing of the
requests the previous window just made.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")

_lock = threading.Lock()
_clients: dict[str, Any] = {}


def shared_client(factory: Callable[[], T], *identity: object) -> T:
    """The client for `identity` (vendor, base URL, credentials...), built by `factory` on first use."""
    key = hashlib.sha256(repr(identity).encode()).hexdigest()  # secrets stay out of the key's text
    with _lock:
        client = _clients.get(key)
        if client is None:
            client = _clients[key] = factory()
        return client  # type: ignore[no-any-return]


def forget_clients() -> None:
    from .ratelimit import forget_limiters

    with _lock:
        _clients.clear()
    forget_limiters()  # the clients' shared per-login limiters go with them
