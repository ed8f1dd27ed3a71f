"""The job-state store: one sqlite row per video, written by the driver in one transaction when its task returns.

A video is finished when its row says "done" for the same file stamp (size + mtime) and the same config
fingerprint; anything else (never started, killed mid-task, errored, changed file or settings) runs again. Because a
row holds every clip of its video and commits atomically, a killed run loses at most the videos in flight and can
never hold half a video: resuming gives the same rows as a clean run. WAL journaling keeps readers (progress,
tests) from blocking the writer.
"""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path

SCHEMA = """
CREATE TABLE IF NOT EXISTS videos (
    name TEXT PRIMARY KEY,
    stamp TEXT NOT NULL,
    config TEXT NOT NULL,
    status TEXT NOT NULL,
    result TEXT NOT NULL,
    updated REAL NOT NULL
)
"""


def file_stamp(path: str | Path) -> str:
    stat = Path(path).stat()
    return f"{stat.st_size}:{stat.st_mtime_ns}"


class JobStore:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(str(self.path), timeout=60)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")  # with WAL: durable against a killed process
        self.db.execute(SCHEMA)
        self.db.commit()

    def finished(self, names_stamps: dict[str, str], config: str) -> set[str]:
        """The names among `names_stamps` whose row is done for this stamp and config."""
        done = set()
        for name, stamp, row_config in self.db.execute("SELECT name, stamp, config FROM videos WHERE status = 'done'"):
            if names_stamps.get(name) == stamp and row_config == config:
                done.add(name)
        return done

    def record(self, name: str, stamp: str, config: str, result: dict) -> None:
        with self.db:  # one transaction: the whole video or nothing
            self.db.execute(
                "INSERT OR REPLACE INTO videos (name, stamp, config, status, result, updated) VALUES (?, ?, ?, ?, ?, ?)",
                (name, stamp, config, result["status"], json.dumps(result, sort_keys=True), time.time()),
            )

    def results(self, names: list[str]) -> dict[str, dict]:
        wanted = set(names)
        return {
            name: json.loads(result)
            for name, result in self.db.execute("SELECT name, result FROM videos ORDER BY name")
            if name in wanted
        }

    def status_counts(self) -> dict[str, int]:
        return dict(self.db.execute("SELECT status, COUNT(*) FROM videos GROUP BY status").fetchall())

    def close(self) -> None:
        self.db.close()
