"""What clickhaul remembers about a pipeline beside dlt's state: last success, last error, backfill progress.

Kept in the destination, beside dlt's own state, in `<dataset>._dlt_clickhaul_journal` (one row per pipeline for the
document, one per finished backfill window, so workers finishing windows at once never overwrite each other): a
worker with a fresh directory continues what another started. The JSON file in the pipeline's working directory
(replaced atomically, so a crash never leaves it torn) is a cache of it, and the journal of destinations without SQL.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sources.common.clock import utc_now
from sources.common.redact import redact

if TYPE_CHECKING:
    import dlt

log = logging.getLogger("clickhaul.journal")

FILE_NAME = "clickhaul_journal.json"
TABLE = "_dlt_clickhaul_journal"  # "_dlt": every listing of the data tables leaves it out
DOCUMENT = "journal"
WINDOW = "window:"  # + backfill key + "|" + window


def _now() -> str:
    return utc_now().isoformat(timespec="seconds")


def stores_sql(pipeline: dlt.Pipeline) -> bool:
    """A destination clickhaul can keep its own tables in (not a bucket of files, whose SQL view is read-only)."""
    return bool(pipeline.destination) and pipeline.destination.destination_name != "filesystem"


class StoredJournal:
    """The journal's rows in the destination's dataset."""

    def __init__(self, pipeline: dlt.Pipeline) -> None:
        self.pipeline = pipeline
        self.name = pipeline.pipeline_name

    def read(self) -> dict[str, Any] | None:
        """The stored document with every finished window put back in its backfill; None: nothing stored (or no
        SQL to store it with)."""
        from dlt.common.exceptions import DltException

        try:
            with self.pipeline.sql_client() as client:
                if not client.has_dataset():
                    return None
                table = client.make_qualified_table_name(TABLE)
                rows = client.execute_sql(f"select entry, value from {table} where pipeline_name = %s", self.name)
        except DltException as error:  # no such table yet, or a destination without SQL
            log.debug("no stored journal of %s: %s", self.name, error)
            return None
        if not rows:
            return None
        entries = {str(entry): str(value) for entry, value in rows}
        data: dict[str, Any] = json.loads(entries.pop(DOCUMENT, "{}"))
        for entry in entries:
            if entry.startswith(WINDOW):
                key, _, window = entry[len(WINDOW) :].rpartition("|")
                done = data.setdefault("backfills", {}).get(key, {}).get("done")
                if isinstance(done, list) and window not in done:
                    done.append(window)
        for entry in data.get("backfills", {}).values():
            if len(entry.get("done", [])) == len(entry.get("windows", [])) and not entry.get("finished"):
                entry["finished"] = _now()
        return data

    def write(self, entries: dict[str, str]) -> None:
        """Replace these rows of the pipeline (one transaction)."""
        from dlt.common.exceptions import DltException

        try:
            with self.pipeline.sql_client() as client:
                if not client.has_dataset():
                    return  # nothing loaded yet: the local file holds it until the first load makes the dataset
                table = client.make_qualified_table_name(TABLE)
                client.execute_sql(
                    f"create table if not exists {table} (pipeline_name varchar, entry varchar, value varchar, "
                    "updated_at varchar)"
                )
                with client.begin_transaction():
                    for entry, value in entries.items():
                        client.execute_sql(
                            f"delete from {table} where pipeline_name = %s and entry = %s", self.name, entry
                        )
                        client.execute_sql(
                            f"insert into {table} values (%s, %s, %s, %s)", self.name, entry, value, _now()
                        )
        except DltException as error:
            log.debug("journal of %s not stored in the destination: %s", self.name, error)


def with_cached_windows(remote: dict[str, Any], cached: dict[str, Any]) -> dict[str, Any]:
    """The destination's journal with the windows the local cache knows are done: a window is cached only after
    its load, so a process killed between the cache's write and the destination's still skips that window."""
    for key, entry in remote.get("backfills", {}).items():
        local = cached.get("backfills", {}).get(key)
        if not isinstance(local, dict) or local.get("windows") != entry.get("windows"):
            continue
        done = entry.setdefault("done", [])
        done.extend(window for window in local.get("done", []) if window not in done)
        if len(done) == len(entry.get("windows", [])) and not entry.get("finished"):
            entry["finished"] = local.get("finished") or _now()
    return remote


class Journal:
    def __init__(self, path: Path, stored: StoredJournal | None = None) -> None:
        self.path = path
        self.stored = stored
        remote = stored.read() if stored and stores_sql(stored.pipeline) else None
        self.data: dict[str, Any] = self._cached() if remote is None else with_cached_windows(remote, self._cached())

    def _cached(self) -> dict[str, Any]:
        return json.loads(self.path.read_text()) if self.path.exists() else {}  # type: ignore[no-any-return]

    @classmethod
    def of(cls, pipeline: dlt.Pipeline) -> Journal:
        return cls(Path(pipeline.working_dir) / FILE_NAME, StoredJournal(pipeline))

    def save(self, *windows: str) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=self.path.parent, prefix=".journal-")
        with os.fdopen(handle, "w") as file:
            json.dump(self.data, file, indent=2, default=str)
        os.replace(temporary, self.path)
        if self.stored and stores_sql(self.stored.pipeline):
            entries = {DOCUMENT: json.dumps(self.data, default=str)}
            entries.update({WINDOW + window: "done" for window in windows})
            self.stored.write(entries)

    def record_success(self, summary: Any) -> None:
        record = dict(vars(summary))
        self.data["last_success"] = {"at": _now(), **record}
        if record.get("new_columns") or record.get("misfits"):
            self.data.setdefault("schema_changes", []).append(
                {"at": _now(), "new_columns": record.get("new_columns"), "misfits": record.get("misfits")}
            )
        self.save()

    def record_error(self, message: str) -> None:
        self.data["last_error"] = {"at": _now(), "message": redact(message)[:2000]}
        self.save()

    # -- backfills ------------------------------------------------------------------------------------
    def backfill(self, key: str) -> dict[str, Any] | None:
        found = self.data.get("backfills", {}).get(key)
        return found if isinstance(found, dict) else None

    def start_backfill(self, key: str, windows: list[str], settings: dict[str, Any]) -> dict[str, Any]:
        backfills = self.data.setdefault("backfills", {})
        entry = backfills.get(key)
        if not entry or entry.get("windows") != windows:
            entry = {"started": _now(), "windows": windows, "done": [], "settings": settings, "finished": None}
            backfills[key] = entry
        self.data["current_backfill"] = key
        self.save()
        return entry

    def window_done(self, key: str, window: str) -> None:
        entry = self.data["backfills"][key]
        if window not in entry["done"]:
            entry["done"].append(window)
        if len(entry["done"]) == len(entry["windows"]):
            entry["finished"] = _now()
        self.save(f"{key}|{window}")
