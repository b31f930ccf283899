"""Jobs persisted in SQLite (stdlib sqlite3) under --data-dir.

A job's input audio lives in ``<data-dir>/jobs/<id>.audio`` until the job finishes.
Results and queued jobs survive a restart; a job that was running when the server
stopped is queued again if its audio is still there, or marked failed with the reason.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
import uuid
from datetime import datetime, timezone
from typing import Any

SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    status TEXT NOT NULL,
    created_at REAL NOT NULL,
    started_at REAL,
    finished_at REAL,
    filename TEXT,
    options TEXT NOT NULL,
    input_path TEXT,
    webhook_url TEXT,
    webhook_status TEXT,
    webhook_error TEXT,
    result TEXT,
    error_code TEXT,
    error_message TEXT,
    attempts INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS jobs_status ON jobs(status, created_at);
"""

MAX_ATTEMPTS = 3


def iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class JobStore:
    def __init__(self, data_dir: str):
        self.dir = os.path.join(data_dir, "jobs")
        os.makedirs(self.dir, exist_ok=True)
        self.path = os.path.join(data_dir, "jobs.sqlite3")
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=30)
        self._db.row_factory = sqlite3.Row
        with self._lock:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _exec(self, sql: str, args: tuple = ()) -> sqlite3.Cursor:
        with self._lock:
            return self._db.execute(sql, args)

    def new_id(self) -> str:
        return "job_" + uuid.uuid4().hex

    def input_path(self, job_id: str) -> str:
        return os.path.join(self.dir, f"{job_id}.audio")

    def create(self, job_id: str, filename: str | None, options: dict[str, Any], input_path: str,
               webhook_url: str | None) -> dict[str, Any]:
        self._exec(
            "INSERT INTO jobs (id, status, created_at, filename, options, input_path, webhook_url, webhook_status)"
            " VALUES (?, 'queued', ?, ?, ?, ?, ?, ?)",
            (job_id, time.time(), filename, json.dumps(options), input_path, webhook_url, "pending" if webhook_url else None),
        )
        return self.get(job_id)  # type: ignore[return-value]

    def row(self, job_id: str) -> sqlite3.Row | None:
        return self._exec("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()

    def get(self, job_id: str, with_result: bool = True) -> dict[str, Any] | None:
        row = self.row(job_id)
        return view(row, with_result) if row else None

    def list(self, status: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        if status:
            rows = self._exec("SELECT * FROM jobs WHERE status = ? ORDER BY created_at DESC LIMIT ?", (status, limit))
        else:
            rows = self._exec("SELECT * FROM jobs ORDER BY created_at DESC LIMIT ?", (limit,))
        return [view(r, with_result=False) for r in rows.fetchall()]

    def mark_running(self, job_id: str) -> bool:
        cur = self._exec(
            "UPDATE jobs SET status = 'running', started_at = ?, attempts = attempts + 1 WHERE id = ? AND status = 'queued'",
            (time.time(), job_id),
        )
        return cur.rowcount == 1

    def mark_succeeded(self, job_id: str, result: dict[str, Any]) -> bool:
        cur = self._exec(
            "UPDATE jobs SET status = 'succeeded', finished_at = ?, result = ?, input_path = NULL WHERE id = ?",
            (time.time(), json.dumps(result, ensure_ascii=False), job_id),
        )
        return cur.rowcount == 1

    def mark_failed(self, job_id: str, code: str, message: str) -> bool:
        cur = self._exec(
            "UPDATE jobs SET status = 'failed', finished_at = ?, error_code = ?, error_message = ?, input_path = NULL WHERE id = ?",
            (time.time(), code, message, job_id),
        )
        return cur.rowcount == 1

    def set_webhook(self, job_id: str, status: str, error: str | None = None) -> None:
        self._exec("UPDATE jobs SET webhook_status = ?, webhook_error = ? WHERE id = ?", (status, error, job_id))

    def delete(self, job_id: str) -> sqlite3.Row | None:
        row = self.row(job_id)
        if row is not None:
            self._exec("DELETE FROM jobs WHERE id = ?", (job_id,))
        return row

    def recover(self) -> tuple[list[sqlite3.Row], list[str]]:
        """After a restart: re-queue interrupted jobs whose audio is still there, fail the
        rest with a reason. Returns (jobs to enqueue in creation order, messages)."""
        notes: list[str] = []
        for row in self._exec("SELECT * FROM jobs WHERE status = 'running'").fetchall():
            path = row["input_path"]
            if row["attempts"] >= MAX_ATTEMPTS:
                self.mark_failed(row["id"], "interrupted", f"the server stopped during this job {row['attempts']} times; giving up")
                notes.append(f"job {row['id']} failed: interrupted {row['attempts']} times")
            elif path and os.path.exists(path):
                self._exec("UPDATE jobs SET status = 'queued', started_at = NULL WHERE id = ?", (row["id"],))
                notes.append(f"job {row['id']} was interrupted by a restart; running it again")
            else:
                self.mark_failed(row["id"], "interrupted", "the server restarted during this job and its input audio is gone")
                notes.append(f"job {row['id']} failed: interrupted and its input audio is gone")
        queued = []
        for row in self._exec("SELECT * FROM jobs WHERE status = 'queued' ORDER BY created_at").fetchall():
            path = row["input_path"]
            if path and os.path.exists(path):
                queued.append(row)
            else:
                self.mark_failed(row["id"], "input_missing", "the job's input audio is missing from the data directory")
                notes.append(f"job {row['id']} failed: its input audio is missing")
        return queued, notes

    def pending_webhooks(self) -> list[str]:
        rows = self._exec(
            "SELECT id FROM jobs WHERE webhook_status = 'pending' AND status IN ('succeeded', 'failed')"
        ).fetchall()
        return [r["id"] for r in rows]

    def purge(self, older_than_hours: float) -> int:
        cutoff = time.time() - older_than_hours * 3600
        cur = self._exec("DELETE FROM jobs WHERE status IN ('succeeded', 'failed') AND finished_at < ?", (cutoff,))
        return cur.rowcount

    def orphan_inputs(self) -> list[str]:
        """Audio files under jobs/ that no queued or running job refers to."""
        live = {r["input_path"] for r in self._exec("SELECT input_path FROM jobs WHERE input_path IS NOT NULL").fetchall()}
        return [os.path.join(self.dir, n) for n in os.listdir(self.dir) if os.path.join(self.dir, n) not in live]


def view(row: sqlite3.Row, with_result: bool = True) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": row["id"],
        "status": row["status"],
        "created_at": iso(row["created_at"]),
        "started_at": iso(row["started_at"]),
        "finished_at": iso(row["finished_at"]),
        "filename": row["filename"],
        "options": json.loads(row["options"]),
        "webhook_url": row["webhook_url"],
        "webhook_status": row["webhook_status"],
    }
    if row["status"] == "succeeded" and with_result and row["result"]:
        out["result"] = json.loads(row["result"])
    if row["status"] == "failed":
        out["error"] = {"code": row["error_code"], "message": row["error_message"]}
    return out
