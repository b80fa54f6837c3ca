"""Writing back to Webtrekk: a loaded table's rows with `importData`, in chunks (`clickhaul push webtrekk`), and the
admin call `deleteTvData` (`clickhaul webtrekk delete-tv-data`).

The account is the source's (`[sources.webtrekk]`, WebtrekkConfig: one client, the same rate limits as a run); the
table is read with the shared warehouse reader (`TableRows`), found by the CLI's one warehouse rule.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sources.common.errors import ClickhaulError, ConfigError
from sources.common.tables import TableRows
from sources.webtrekk.client import WebtrekkClient
from sources.webtrekk.config import WebtrekkConfig

__all__ = ["IMPORT_CHUNK_ROWS", "UPLOAD_TYPES", "UploadTable", "delete_tv_data", "push_rows", "push_table", "tv_range"]

IMPORT_CHUNK_ROWS = 10_000  # the API's default limit of rows per importData call
# importData's documented upload types (customer_categories_deid and session_parameter_tv exist only there).
UPLOAD_TYPES: tuple[str, ...] = (
    "content_categories",
    "content_categories_time",
    "customer_categories",
    "customer_categories_deid",
    "media_categories",
    "basket_categories",
    "basket_categories_time",
    "product_categories",
    "campaigns",
    "campaigns_time",
    "ecommerce_parameters",
    "time_categories",
    "session_parameter_tv",
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


def upload_from(rows: TableRows, chunk_rows: int = IMPORT_CHUNK_ROWS) -> UploadTable:
    """A loaded table as importData wants it: the vendor's titles as header row, every cell a string.

    Titles come from the column descriptions dlt stored (export tables keep the original header there); when a
    table has descriptions, only the described columns are sent, so clickhaul's own columns (`day`, ...) stay home.
    Rows are read in a stable order, `chunk_rows` at a time."""
    columns = [column for column in rows.columns if not column.startswith("_dlt")]
    titles = rows.descriptions()
    sent = [column for column in columns if column in titles] if titles else columns
    cells = [
        [_cell(row[column]) for column in sent]
        for chunk in rows.chunks(order=columns, chunk_rows=chunk_rows)
        for row in chunk
    ]
    return UploadTable([titles.get(column, column) for column in sent], cells)


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


def push_table(
    config: WebtrekkConfig,
    rows: TableRows,
    upload_type: str,
    chunk_rows: int = IMPORT_CHUNK_ROWS,
    echo: Callable[[str], None] = print,
) -> tuple[int, int]:
    """`rows` (a table of the warehouse) uploaded as `upload_type` with the account of `config`: (rows, calls)."""
    upload = upload_from(rows, chunk_rows)
    echo(f"read {rows.tables.dataset}.{rows.table} ({len(upload.rows):,} rows) from {rows.tables.where}")
    client = config.client(timeout=config.request_timeout)  # its own: push_rows logs it out when done
    return len(upload.rows), push_rows(client, upload_type, upload, chunk_rows, echo)


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


def delete_tv_data(config: WebtrekkConfig, time_start: str, time_stop: str) -> Sequence[Any]:
    """deleteTvData for the account of `config`; the API answers one line or a list of them."""
    client = config.client(timeout=config.request_timeout)
    try:
        answer = client.delete_tv_data(time_start, time_stop)
    finally:
        client.close()
    return answer if isinstance(answer, list) else [answer]
