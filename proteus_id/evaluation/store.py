"""Per-row results on disk, so a killed run loses at most the rows in flight.

    DIR/rows/<key>.json    the row's record (status, reason, metric values, notes, fingerprint); written last
    DIR/rows/<key>.npz     arrays kept for set-level metrics and plots (per-frame similarity, Inception features)
    DIR/sheets/<key>.jpg   the row's contact sheet
Each file is written to a temporary name and renamed, and the JSON goes last: a row is done exactly when its JSON
exists. A rerun skips done rows whose fingerprint (metric set, weights, frame count) and input files (video and photo
bytes) match.
"""

from __future__ import annotations

import io
import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from ..atomic import write_bytes_atomic, write_text_atomic


def atomic_write_bytes(path: Path, data: bytes) -> None:
    write_bytes_atomic(path, data)


def atomic_write_text(path: Path, text: str) -> None:
    write_text_atomic(path, text)


class RowStore:
    def __init__(self, out_dir: str | Path):
        self.root = Path(out_dir)
        self.rows_dir = self.root / "rows"
        self.sheets_dir = self.root / "sheets"

    def clean_stale_temp(self) -> int:
        """Remove temporary files left by a killed process (their writer's pid is in the name and is gone)."""
        removed = 0
        for folder in (self.rows_dir, self.sheets_dir):
            for tmp in folder.glob(".*.tmp") if folder.is_dir() else []:
                try:
                    pid = int(tmp.name.rsplit(".", 2)[-2])
                except ValueError:
                    continue
                if not _alive(pid):
                    tmp.unlink(missing_ok=True)
                    removed += 1
        return removed

    def record_path(self, key: str) -> Path:
        return self.rows_dir / f"{key}.json"

    def arrays_path(self, key: str) -> Path:
        return self.rows_dir / f"{key}.npz"

    def sheet_path(self, key: str) -> Path:
        return self.sheets_dir / f"{key}.jpg"

    def load(self, key: str) -> dict[str, Any] | None:
        path = self.record_path(key)
        if not path.is_file():
            return None
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError):
            return None  # cannot happen with atomic writes unless edited by hand; the row is evaluated again

    def is_done(self, key: str, fingerprint: str, retry_failed: bool = False, inputs: str | None = None) -> bool:
        """Done: a record with the same metric fingerprint and, when given, the same input files' stamp."""
        record = self.load(key)
        if record is None or record.get("fingerprint") != fingerprint:
            return False
        if inputs is not None and record.get("inputs") != inputs:
            return False
        return not (retry_failed and record.get("status") != "ok")

    def save(self, key: str, record: dict[str, Any], arrays: dict[str, np.ndarray] | None = None,
             sheet_jpeg: bytes | None = None) -> None:
        if arrays:
            buffer = io.BytesIO()
            np.savez_compressed(buffer, **arrays)
            atomic_write_bytes(self.arrays_path(key), buffer.getvalue())
        if sheet_jpeg is not None:
            atomic_write_bytes(self.sheet_path(key), sheet_jpeg)
        atomic_write_text(self.record_path(key), json.dumps(record, indent=1, default=_jsonable))

    def load_arrays(self, key: str) -> dict[str, np.ndarray]:
        path = self.arrays_path(key)
        if not path.is_file():
            return {}
        with np.load(path) as data:
            return {k: data[k] for k in data.files}


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _jsonable(value: Any) -> Any:
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"cannot store {type(value).__name__} in a row record")
