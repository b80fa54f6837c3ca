"""The way back and the admin call: `importData` of a loaded table in chunks, and `deleteTvData`."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import dlt
from dlt.common.configuration.inject import with_config

from sources.common.config import check_base_url, require
from sources.common.errors import ClickhaulError, ConfigError
from sources.common.redact import register_secrets

from .client import WebtrekkClient, rate_limit_pairs
from .settings import DEFAULT_BASE_URL, IMPORT_CHUNK_ROWS, UPLOAD_TYPES, VENDOR


@with_config(sections=("sources", "webtrekk"))
def configured_client(
    customer_id: str = dlt.secrets.value,
    login: str = dlt.secrets.value,
    password: str = dlt.secrets.value,
    base_url: str = DEFAULT_BASE_URL,
    language: str = "en",
    rate_limits: Any = None,
    request_timeout: float = 120.0,
) -> WebtrekkClient:
    """A client from `[sources.webtrekk]`, under the same rate limiter settings as a run."""
    register_secrets([password])
    require(VENDOR, customer_id=customer_id, login=login, password=password)
    check_base_url(base_url, "sources.webtrekk.base_url")
    limits = rate_limit_pairs(rate_limits)
    return WebtrekkClient(
        base_url, customer_id, login, password, language=language, rate_limits=limits, timeout=request_timeout
    )


@dataclass
class UploadTable:
    header: list[str]
    rows: list[list[str]]


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def upload_from(columns: Sequence[str], titles: Mapping[str, str], rows: Iterable[Sequence[Any]]) -> UploadTable:
    """A loaded table as importData wants it: the vendor's titles as header row, every cell a string.

    Titles come from the column descriptions dlt stored (export tables keep the original header there); when a
    table has descriptions, only the described columns are sent, so clickhaul's own columns (`day`, ...) stay home.
    `rows` hold the values of `columns` in that order."""
    names = [column for column in columns if not column.startswith("_dlt")]
    if titles:
        names = [column for column in names if column in titles]
    positions = [list(columns).index(column) for column in names]
    header = [titles.get(column, column) for column in names]
    return UploadTable(header, [[_cell(row[position]) for position in positions] for row in rows])


def push_rows(
    client: WebtrekkClient,
    upload_type: str,
    upload: UploadTable,
    chunk_rows: int = IMPORT_CHUNK_ROWS,
    echo: Callable[[str], None] = print,
) -> int:
    """Upload in chunks of at most `chunk_rows` rows (header row repeated); stop at the first failed chunk and say
    exactly which rows went and which did not. Returns the number of calls."""
    if upload_type not in UPLOAD_TYPES:
        raise ConfigError(f"--upload-type {upload_type!r} is not one of {', '.join(UPLOAD_TYPES)}")
    if not 1 <= chunk_rows <= IMPORT_CHUNK_ROWS:
        raise ConfigError(f"--chunk-rows must be between 1 and {IMPORT_CHUNK_ROWS} (the API's limit per call)")
    if not upload.rows:
        raise ConfigError("the table has no rows: nothing to upload")
    total = len(upload.rows)
    chunks = [upload.rows[start : start + chunk_rows] for start in range(0, total, chunk_rows)]
    try:
        for index, chunk in enumerate(chunks):
            first = index * chunk_rows + 1
            last = first + len(chunk) - 1
            try:
                client.import_data(upload_type, [upload.header, *chunk])
            except ClickhaulError as error:
                sent = f"rows 1-{first - 1} were imported" if first > 1 else "nothing was imported"
                raise ClickhaulError(
                    f"webtrekk importData chunk {index + 1}/{len(chunks)} (rows {first}-{last}) failed: {error}; "
                    f"{sent}, rows {first}-{total} were not sent"
                ) from None
            echo(f"chunk {index + 1}/{len(chunks)}: rows {first}-{last} imported as {upload_type}")
    finally:
        client.logout()
    return len(chunks)


def tv_range(start: str, stop: str) -> tuple[str, str]:
    """--start/--stop as `YYYY-MM-DD[ HH:MM:SS]`; a bare stop date means the end of that day."""

    def parse(text: str, flag: str, end_of_day: bool) -> dt.datetime:
        text = text.strip()
        try:
            if len(text) == 10:
                day = dt.date.fromisoformat(text)
                return dt.datetime.combine(day, dt.time(23, 59, 59) if end_of_day else dt.time())
            return dt.datetime.strptime(text, "%Y-%m-%d %H:%M:%S")
        except ValueError:
            raise ConfigError(f"{flag} {text!r}: write YYYY-MM-DD or 'YYYY-MM-DD HH:MM:SS'") from None

    first, last = parse(start, "--start", False), parse(stop, "--stop", True)
    if last < first:
        raise ConfigError(f"--stop {stop} is before --start {start}: swap them")
    return first.strftime("%Y-%m-%d %H:%M:%S"), last.strftime("%Y-%m-%d %H:%M:%S")


def delete_tv_data(client: WebtrekkClient, time_start: str, time_stop: str) -> Sequence[Any]:
    answer = client.delete_tv_data(time_start, time_stop)
    return answer if isinstance(answer, list) else [answer]
