"""What clickhaul remembers about a pipeline beside dlt's state: last success, last error, backfill progress.

Kept as JSON in the pipeline's working directory and replaced atomically, so a crash never leaves it torn.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sources.common.clock import utc_now
from sources.common.redact import redact

if TYPE_CHECKING:
    import dlt

FILE_NAME = "clickhaul_journal.json"


def _now() -> str:
    return utc_now().isoformat(timespec="seconds")


class Journal:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.data: dict[str, Any] = json.loads(path.read_text()) if path.exists() else {}

    @classmethod
    def of(cls, pipeline: dlt.Pipeline) -> Journal:
        return cls(Path(pipeline.working_dir) / FILE_NAME)

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=self.path.parent, prefix=".journal-")
        with os.fdopen(handle, "w") as file:
            json.dump(self.data, file, indent=2, default=str)
        os.replace(temporary, self.path)

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
        self.save()
