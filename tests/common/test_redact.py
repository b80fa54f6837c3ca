from __future__ import annotations

import logging

import pytest

from sources.common.redact import MASK, redact, register_secret


def test_secrets_are_masked_in_every_log_record(caplog: pytest.LogCaptureFixture) -> None:
    register_secret("s3cr3t-value-123")
    with caplog.at_level(logging.INFO):
        logging.getLogger("some.library").info(
            "token=%s in url https://x/?p=%s", "s3cr3t-value-123", "s3cr3t-value-123"
        )
        try:
            raise RuntimeError("failed with s3cr3t-value-123")
        except RuntimeError:
            logging.getLogger("dlt").exception("boom")
    assert "s3cr3t-value-123" not in caplog.text
    assert MASK in caplog.text


def test_short_values_are_not_treated_as_secrets() -> None:
    register_secret("ab")
    assert redact("abc") == "abc"


def test_longest_secret_is_masked_first() -> None:
    register_secret("secret-one")
    register_secret("secret-one-two")
    assert redact("x secret-one-two y") == f"x {MASK} y"
