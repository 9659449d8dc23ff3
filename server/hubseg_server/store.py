"""Persistent state: SQLite (WAL) index of jobs, label sets and uploads + files written atomically.

Layout under the data directory::

    server.sqlite3            jobs, label_sets, uploads tables (WAL mode)
    results/<job_id>.geojson  detection results (kept until DELETE /v1/jobs/{id}/result)
    labels/<id>.json          label sets exactly as posted
    uploads/<id>.<png|tif>    uploaded region pixels (+ metadata in the uploads table)
    models/                   user model versions (hubseg.models.registry)

One connection per thread (sqlite3 objects must not be shared across threads); every write is one
transaction. A file is written (atomically) before the row that points at it is committed, so a crash
leaves at most an unreferenced file, never a row pointing at nothing.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from hubseg.paths import atomic_write_bytes, atomic_write_text

SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT UNIQUE NOT NULL,
    kind TEXT NOT NULL,
    state TEXT NOT NULL,
    created TEXT NOT NULL,
    started TEXT,
    finished TEXT,
    progress_done INTEGER NOT NULL DEFAULT 0,
    progress_total INTEGER NOT NULL DEFAULT 0,
    progress_message TEXT NOT NULL DEFAULT '',
    error_code TEXT,
    error_message TEXT,
    cancel_requested INTEGER NOT NULL DEFAULT 0,
    request TEXT NOT NULL,
    model TEXT,
    new_model TEXT,
    result_file TEXT,
    upload_id TEXT,
    warnings TEXT,
    summary TEXT
);
CREATE INDEX IF NOT EXISTS jobs_state ON jobs(state);
CREATE TABLE IF NOT EXISTS label_sets (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT UNIQUE NOT NULL,
    created TEXT NOT NULL,
    file TEXT NOT NULL,
    image TEXT NOT NULL,
    pixel_size_um REAL,
    regions_count INTEGER NOT NULL,
    features_count INTEGER NOT NULL,
    model TEXT,
    source TEXT
);
CREATE TABLE IF NOT EXISTS uploads (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT UNIQUE NOT NULL,
    created TEXT NOT NULL,
    file TEXT NOT NULL,
    width INTEGER NOT NULL,
    height INTEGER NOT NULL,
    origin_x REAL NOT NULL,
    origin_y REAL NOT NULL,
    downsample REAL NOT NULL,
    pixel_size_um REAL NOT NULL
);
"""

ACTIVE_STATES = ("queued", "running")
FINAL_STATES = ("succeeded", "failed", "cancelled")
RESTART_MESSAGE = "the server restarted while this job was running; submit it again"


def utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def new_id() -> str:
    return uuid.uuid4().hex


class Store:
    """Thread-safe access to the server's SQLite database and its files."""

    def __init__(self, data_dir: Path):
        self.data_dir = Path(data_dir)
        self.results_dir = self.data_dir / "results"
        self.labels_dir = self.data_dir / "labels"
        self.uploads_dir = self.data_dir / "uploads"
        for folder in (self.results_dir, self.labels_dir, self.uploads_dir):
            folder.mkdir(parents=True, exist_ok=True)
        self.db_path = self.data_dir / "server.sqlite3"
        self._local = threading.local()
        self._conn().executescript(SCHEMA)
        columns = {row["name"] for row in self._query("PRAGMA table_info(jobs)")}
        for column in ("warnings", "summary"):  # data dirs from before these columns existed
            if column not in columns:
                self._conn().execute(f"ALTER TABLE jobs ADD COLUMN {column} TEXT")

    # --- connections -----------------------------------------------------------------------------------
    def _connect(self) -> "_Transaction":
        return _Transaction(self._conn())

    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.db_path, timeout=30.0, isolation_level=None)
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")  # a 201 for a label set survives power loss too
            conn.execute("PRAGMA busy_timeout=30000")
            self._local.conn = conn
        return conn

    def _query(self, sql: str, params: tuple = ()) -> list[sqlite3.Row]:
        # autocommit read: in WAL mode readers never wait for the writer (health stays fast during jobs)
        return self._conn().execute(sql, params).fetchall()

    def _execute(self, sql: str, params: tuple = ()) -> int:
        with self._connect() as conn:
            return conn.execute(sql, params).rowcount

    # --- jobs ------------------------------------------------------------------------------------------
    def create_job(self, kind: str, request: dict[str, Any], model: str | None, upload_id: str | None = None) -> dict:
        job_id = new_id()
        self._execute(
            "INSERT INTO jobs (id, kind, state, created, request, model, upload_id) VALUES (?, ?, 'queued', ?, ?, ?, ?)",
            (job_id, kind, utc_now(), json.dumps(request), model, upload_id),
        )
        return self.get_job(job_id)

    def get_job(self, job_id: str) -> dict | None:
        rows = self._query("SELECT * FROM jobs WHERE id = ?", (job_id,))
        return dict(rows[0]) if rows else None

    def list_jobs(self, state: str | None = None, kind: str | None = None, limit: int = 100) -> list[dict]:
        sql, params, where = "SELECT * FROM jobs", [], []
        if state:
            where.append("state = ?")
            params.append(state)
        if kind:
            where.append("kind = ?")
            params.append(kind)
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY seq DESC LIMIT ?"
        params.append(int(limit))
        return [dict(r) for r in self._query(sql, tuple(params))]

    def queued_job_ids(self) -> list[str]:
        return [r["id"] for r in self._query("SELECT id FROM jobs WHERE state = 'queued' ORDER BY seq")]

    def count_active(self) -> int:
        return self._query("SELECT COUNT(*) AS n FROM jobs WHERE state IN ('queued', 'running')")[0]["n"]

    def mark_running(self, job_id: str) -> bool:
        """queued → running; False when the job is no longer queued (e.g. cancelled meanwhile)."""
        return (
            self._execute(
                "UPDATE jobs SET state = 'running', started = ? WHERE id = ? AND state = 'queued'",
                (utc_now(), job_id),
            )
            == 1
        )

    def set_progress(self, job_id: str, done: int, total: int, message: str) -> None:
        self._execute(
            "UPDATE jobs SET progress_done = ?, progress_total = ?, progress_message = ? WHERE id = ?",
            (int(done), int(total), str(message)[:500], job_id),
        )

    def finish_job(
        self,
        job_id: str,
        state: str,
        *,
        error_code: str | None = None,
        error_message: str | None = None,
        result_file: str | None = None,
        new_model: str | None = None,
    ) -> None:
        self._execute(
            "UPDATE jobs SET state = ?, finished = ?, error_code = ?, error_message = ?, "
            "result_file = COALESCE(?, result_file), new_model = COALESCE(?, new_model) "
            "WHERE id = ? AND state = 'running'",
            (state, utc_now(), error_code, error_message, result_file, new_model, job_id),
        )

    def fail_queued(self, job_id: str, error_code: str, error_message: str) -> bool:
        """queued → failed (e.g. its image is no longer allowed after a restart); False if no longer queued."""
        return self._execute(
            "UPDATE jobs SET state = 'failed', finished = ?, error_code = ?, error_message = ? "
            "WHERE id = ? AND state = 'queued'",
            (utc_now(), error_code, error_message[:2000], job_id),
        ) == 1

    def add_warning(self, job_id: str, message: str) -> None:
        """Append a human-readable warning to a job (shown as ``warnings`` in its JSON)."""
        with self._connect() as conn:
            row = conn.execute("SELECT warnings FROM jobs WHERE id = ?", (job_id,)).fetchone()
            if row is None:
                return
            warnings = json.loads(row["warnings"] or "[]")
            warnings.append(str(message)[:1000])
            conn.execute("UPDATE jobs SET warnings = ? WHERE id = ?", (json.dumps(warnings[-100:]), job_id))

    def set_summary(self, job_id: str, summary: dict) -> None:
        """What a finished job reports beyond its state (a self-training job: ``adaptation`` in its JSON)."""
        self._execute("UPDATE jobs SET summary = ? WHERE id = ?", (json.dumps(summary), job_id))

    def jobs_using_upload(self, upload_id: str) -> list[str]:
        """Unfinished jobs that read the upload: a detection on it (``upload_id`` column) or a training job that
        self-trains on it (``"unlabelled": [{"upload_id": ...}]`` in its request)."""
        rows = self._query("SELECT id FROM jobs WHERE upload_id = ? AND state IN ('queued', 'running')", (upload_id,))
        using = [r["id"] for r in rows]
        trainings = self._query(
            "SELECT id, request FROM jobs WHERE kind = 'training' AND state IN ('queued', 'running') ORDER BY seq")
        for row in trainings:  # few rows: only unfinished jobs
            unlabelled = json.loads(row["request"]).get("unlabelled") or []
            if any(item.get("upload_id") == upload_id for item in unlabelled):
                using.append(row["id"])
        return using

    def request_cancel(self, job_id: str) -> None:
        """Queued → cancelled at once; running → flag only (the worker stops it); final states unchanged."""
        with self._connect() as conn:
            conn.execute(
                "UPDATE jobs SET state = 'cancelled', cancel_requested = 1, finished = ? WHERE id = ? AND state = 'queued'",
                (utc_now(), job_id),
            )
            conn.execute("UPDATE jobs SET cancel_requested = 1 WHERE id = ? AND state = 'running'", (job_id,))

    def recover_after_restart(self) -> list[str]:
        """Jobs left ``running`` by a crash or kill fail with a message; still-queued ones are returned to re-queue."""
        self._execute(
            "UPDATE jobs SET state = 'failed', finished = ?, error_code = 'server_restarted', error_message = ? "
            "WHERE state = 'running'",
            (utc_now(), RESTART_MESSAGE),
        )
        return self.queued_job_ids()

    # --- results ---------------------------------------------------------------------------------------
    def write_result(self, job_id: str, feature_collection: dict) -> str:
        name = f"{job_id}.geojson"
        atomic_write_text(self.results_dir / name, json.dumps(feature_collection, ensure_ascii=False, allow_nan=False))
        return name

    def result_path(self, job: dict) -> Path | None:
        if not job.get("result_file"):
            return None
        path = self.results_dir / job["result_file"]
        return path if path.is_file() else None

    def delete_result(self, job_id: str) -> None:
        job = self.get_job(job_id)
        if not job or not job.get("result_file"):
            return
        self._execute("UPDATE jobs SET result_file = NULL WHERE id = ?", (job_id,))
        (self.results_dir / job["result_file"]).unlink(missing_ok=True)

    # --- label sets ------------------------------------------------------------------------------------
    def add_label_set(self, document: dict) -> dict:
        label_id = new_id()
        name = f"{label_id}.json"
        atomic_write_text(self.labels_dir / name, json.dumps(document, ensure_ascii=False, allow_nan=False))
        features = (document.get("features") or {}).get("features") or []
        self._execute(
            "INSERT INTO label_sets (id, created, file, image, pixel_size_um, regions_count, features_count, model, source) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                label_id,
                utc_now(),
                name,
                json.dumps(document["image"]),
                document.get("pixel_size_um"),
                len(document.get("regions") or []),
                len(features),
                document.get("model"),
                document.get("source"),
            ),
        )
        return self.get_label_summary(label_id)

    def get_label_summary(self, label_id: str) -> dict | None:
        rows = self._query("SELECT * FROM label_sets WHERE id = ?", (label_id,))
        return _label_summary(rows[0]) if rows else None

    def list_label_summaries(self) -> list[dict]:
        return [_label_summary(r) for r in self._query("SELECT * FROM label_sets ORDER BY seq DESC")]

    def label_set_ids(self) -> list[str]:
        return [r["id"] for r in self._query("SELECT id FROM label_sets ORDER BY seq")]

    def label_set_path(self, label_id: str) -> Path | None:
        rows = self._query("SELECT file FROM label_sets WHERE id = ?", (label_id,))
        return self.labels_dir / rows[0]["file"] if rows else None

    def delete_label_set(self, label_id: str) -> bool:
        """Remove a label set (row first, then its file: a crash leaves only an orphan file, swept at start)."""
        path = self.label_set_path(label_id)
        if path is None:
            return False
        self._execute("DELETE FROM label_sets WHERE id = ?", (label_id,))
        path.unlink(missing_ok=True)
        return True

    def read_label_set(self, label_id: str) -> dict | None:
        path = self.label_set_path(label_id)
        if path is None:
            return None
        return json.loads(path.read_text(encoding="utf-8"))

    # --- uploads ---------------------------------------------------------------------------------------
    def add_upload(self, data: bytes, suffix: str, width: int, height: int, origin, downsample, pixel_size_um) -> str:
        upload_id = new_id()
        name = f"{upload_id}{suffix}"
        atomic_write_bytes(self.uploads_dir / name, data)
        self._execute(
            "INSERT INTO uploads (id, created, file, width, height, origin_x, origin_y, downsample, pixel_size_um) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (upload_id, utc_now(), name, width, height, float(origin[0]), float(origin[1]), float(downsample),
             float(pixel_size_um)),
        )
        return upload_id

    def delete_upload(self, upload_id: str) -> bool:
        upload = self.get_upload(upload_id)
        if upload is None:
            return False
        self._execute("DELETE FROM uploads WHERE id = ?", (upload_id,))
        Path(upload["path"]).unlink(missing_ok=True)
        return True

    def referenced_files(self) -> dict[str, set[str]]:
        """File names the database points at, per folder (``results``, ``labels``, ``uploads``)."""
        return {
            "results": {r["result_file"] for r in self._query("SELECT result_file FROM jobs WHERE result_file IS NOT NULL")},
            "labels": {r["file"] for r in self._query("SELECT file FROM label_sets")},
            "uploads": {r["file"] for r in self._query("SELECT file FROM uploads")},
        }

    def results_finished_before(self, cutoff_iso: str) -> list[str]:
        """Ids of finished jobs with a result whose ``finished`` time is before ``cutoff_iso`` (UTC, ISO 8601)."""
        rows = self._query(
            "SELECT id FROM jobs WHERE result_file IS NOT NULL AND finished IS NOT NULL AND finished < ?", (cutoff_iso,)
        )
        return [r["id"] for r in rows]

    def get_upload(self, upload_id: str) -> dict | None:
        rows = self._query("SELECT * FROM uploads WHERE id = ?", (upload_id,))
        if not rows:
            return None
        upload = dict(rows[0])
        upload["path"] = self.uploads_dir / upload["file"]
        return upload


def _label_summary(row: sqlite3.Row) -> dict:
    return {
        "id": row["id"],
        "created": row["created"],
        "image": json.loads(row["image"]),
        "pixel_size_um": row["pixel_size_um"],
        "regions_count": row["regions_count"],
        "features_count": row["features_count"],
        "model": row["model"],
        "source": row["source"],
    }


class _Transaction:
    """``with`` wrapper: BEGIN IMMEDIATE … COMMIT (ROLLBACK on error) on a per-thread connection."""

    def __init__(self, conn: sqlite3.Connection):
        self.conn = conn

    def __enter__(self) -> sqlite3.Connection:
        self.conn.execute("BEGIN IMMEDIATE")
        return self.conn

    def __exit__(self, exc_type, exc, tb) -> None:
        self.conn.execute("ROLLBACK" if exc_type else "COMMIT")
