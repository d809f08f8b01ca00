"""The render manifest: an SQLite file in the output folder, written only by the command that was
started (workers send their results back to it), one row per job id.

A row says ``done`` only after every output file was renamed into place and hashed, in one
committed transaction; so a run killed at any point leaves either no row for a job or a row whose
files exist with the recorded hashes. A later run skips a job whose row is done with the same key
(a hash of what determines the output) and whose files still have their hashes.
"""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path

from apps.jobs.base import file_digest

SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    key TEXT NOT NULL,
    medium TEXT NOT NULL,
    line INTEGER,
    status TEXT NOT NULL,          -- done | failed
    files TEXT,                    -- JSON: [{"path": relative, "sha256": ...}]
    seed INTEGER,
    emotion TEXT,
    models TEXT,                   -- JSON: [{"name", "class", "weights_sha256"}]
    timings TEXT,                  -- JSON: seconds per stage
    reading TEXT,                  -- JSON: the recognizer's reading (--read)
    error TEXT,
    attempts INTEGER,
    updated REAL
)
"""


class Manifest:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.root = self.path.parent
        self.db = sqlite3.connect(str(self.path))
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")
        self.db.execute(SCHEMA)
        self.db.commit()

    def close(self) -> None:
        self.db.close()

    def row(self, job_id: str) -> dict | None:
        cur = self.db.execute("SELECT * FROM jobs WHERE id = ?", (job_id,))
        r = cur.fetchone()
        if r is None:
            return None
        d = dict(zip([c[0] for c in cur.description], r))
        for k in ("files", "models", "timings", "reading"):
            d[k] = json.loads(d[k]) if d[k] else None
        return d

    def rows(self) -> list[dict]:
        return [self.row(r[0]) for r in self.db.execute("SELECT id FROM jobs ORDER BY rowid")]

    def is_done(self, job_id: str, key: str) -> bool:
        """Done with this key, and every recorded file present with its hash."""
        r = self.row(job_id)
        if r is None or r["status"] != "done" or r["key"] != key:
            return False
        for f in r["files"] or []:
            p = self.root / f["path"]
            if not p.is_file() or file_digest(p) != f["sha256"]:
                return False
        return True

    def record(self, *, job_id: str, key: str, medium: str, line: int, status: str, files: list[Path],
               seed: int | None, emotion: str | None, models: list | None, timings: dict | None,
               reading: dict | None, error: str | None, attempts: int) -> None:
        listed = [{"path": str(Path(p).resolve().relative_to(self.root.resolve())), "sha256": file_digest(p)}
                  for p in files] if status == "done" else []
        with self.db:  # one transaction
            self.db.execute(
                "INSERT OR REPLACE INTO jobs VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (job_id, key, medium, line, status, json.dumps(listed), seed, emotion,
                 json.dumps(models or []), json.dumps(timings or {}), json.dumps(reading) if reading else None,
                 error, attempts, time.time()))
