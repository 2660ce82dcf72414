"""Schema history. A released migration is never edited: add a new one."""

from __future__ import annotations

import sqlite_utils
from sqlite_utils.migrations import Migrations

migrations = Migrations("intunedd")


@migrations(name="0001_initial")
def _initial(db: sqlite_utils.Database) -> None:
    db.executescript(
        """
        CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
        CREATE TABLE api_keys (
            id TEXT PRIMARY KEY,
            name TEXT NOT NULL,
            key_hash TEXT NOT NULL UNIQUE,
            created_at TEXT NOT NULL
        );
        CREATE TABLE projects (
            name TEXT PRIMARY KEY,
            current_version INTEGER NOT NULL,
            created_at TEXT NOT NULL
        );
        CREATE TABLE project_versions (
            project TEXT NOT NULL REFERENCES projects(name),
            version INTEGER NOT NULL,
            path TEXT NOT NULL,
            apis TEXT NOT NULL,
            api_access INTEGER NOT NULL,
            max_concurrent INTEGER NOT NULL,
            settings TEXT NOT NULL,
            deployed_at TEXT NOT NULL,
            PRIMARY KEY (project, version)
        );
        CREATE TABLE runs (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            id TEXT NOT NULL UNIQUE,
            project TEXT NOT NULL,
            version INTEGER NOT NULL,
            api TEXT NOT NULL,
            parameters TEXT NOT NULL,
            options TEXT NOT NULL,
            status TEXT NOT NULL,
            run_type TEXT NOT NULL,
            job_id TEXT,
            job_run_id TEXT,
            created_at TEXT NOT NULL,
            started_at TEXT,
            ended_at TEXT,
            result TEXT,
            extended_payloads TEXT,
            error TEXT,
            reason TEXT,
            attempts_count INTEGER NOT NULL DEFAULT 0
        );
        CREATE INDEX runs_project_created ON runs (project, created_at);
        CREATE INDEX runs_status ON runs (status);
        CREATE TABLE attempts (
            run_id TEXT NOT NULL REFERENCES runs(id),
            number INTEGER NOT NULL,
            status TEXT NOT NULL,
            started_at TEXT NOT NULL,
            ended_at TEXT,
            error TEXT,
            log_path TEXT,
            trace_path TEXT,
            video_path TEXT,
            PRIMARY KEY (run_id, number)
        );
        CREATE TABLE kv (
            project TEXT NOT NULL,
            key TEXT NOT NULL,
            value TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            PRIMARY KEY (project, key)
        );
        """
    )


@migrations(name="0002_jobs")
def _jobs(db: sqlite_utils.Database) -> None:
    db.executescript(
        """
        CREATE TABLE jobs (
            project TEXT NOT NULL,
            id TEXT NOT NULL,
            spec TEXT NOT NULL,
            state TEXT NOT NULL,
            source TEXT NOT NULL,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            next_run_time TEXT,
            last_run_time TEXT,
            last_slot_ms INTEGER,
            PRIMARY KEY (project, id)
        );
        CREATE TABLE job_runs (
            id TEXT PRIMARY KEY,
            project TEXT NOT NULL,
            job_id TEXT NOT NULL,
            type TEXT NOT NULL,
            status TEXT NOT NULL,
            snapshot TEXT NOT NULL,
            max_concurrent INTEGER NOT NULL,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            start_time TEXT NOT NULL,
            end_time TEXT,
            reason TEXT,
            error TEXT,
            slot_key TEXT UNIQUE
        );
        CREATE INDEX job_runs_job ON job_runs (project, job_id, created_at);
        CREATE INDEX runs_job_run ON runs (job_run_id, status);
        """
    )


@migrations(name="0003_deliveries")
def _deliveries(db: sqlite_utils.Database) -> None:
    db.executescript(
        """
        CREATE TABLE deliveries (
            id TEXT PRIMARY KEY,
            run_id TEXT NOT NULL,
            project TEXT NOT NULL,
            kind TEXT NOT NULL,
            sink TEXT NOT NULL,
            status TEXT NOT NULL,
            attempts INTEGER NOT NULL DEFAULT 0,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            next_attempt_at TEXT NOT NULL,
            first_attempt_at TEXT,
            delivered_at TEXT,
            last_status INTEGER,
            last_error TEXT
        );
        CREATE INDEX deliveries_due ON deliveries (status, next_attempt_at);
        CREATE INDEX deliveries_run ON deliveries (run_id);
        ALTER TABLE project_versions ADD COLUMN default_sink TEXT;
        """
    )


@migrations(name="0004_quarantine")
def _quarantine(db: sqlite_utils.Database) -> None:
    db.executescript(
        """
        CREATE TABLE quarantine (
            kind TEXT NOT NULL,
            record_id TEXT NOT NULL,
            reason TEXT NOT NULL,
            created_at TEXT NOT NULL,
            PRIMARY KEY (kind, record_id)
        );
        """
    )


@migrations(name="0006_retention")
def _retention(db: sqlite_utils.Database) -> None:
    # runs_ended: retention scans finished runs oldest first and stops after a pass's worth.
    # retention_trash: folders whose rows are gone but whose files may not be yet (a crash
    # between the commit and the delete); the next pass finishes them.
    db.executescript(
        """
        CREATE INDEX runs_ended ON runs (ended_at);
        CREATE TABLE retention_trash (path TEXT PRIMARY KEY, created_at TEXT NOT NULL);
        """
    )


@migrations(name="0005_keys")
def _keys(db: sqlite_utils.Database) -> None:
    # prefix: the key's first characters, to tell keys apart in a list; NULL for keys made before.
    db.executescript(
        """
        ALTER TABLE api_keys ADD COLUMN prefix TEXT;
        ALTER TABLE api_keys ADD COLUMN revoked_at TEXT;
        """
    )


@migrations(name="0007_environments")
def _environments(db: sqlite_utils.Database) -> None:
    # environment: JSON {key, runtime, python} of the version's own Python environment; NULL for
    # a project that declares no dependencies (and every version deployed before).
    db.executescript("ALTER TABLE project_versions ADD COLUMN environment TEXT;")


@migrations(name="0008_auth_sessions")
def _auth_sessions(db: sqlite_utils.Database) -> None:
    # parameters, state, proxy and request are sealed (intunedd.secrets): never plaintext on disk.
    # proxy_masked is the proxy with its password hidden, to show back without unsealing.
    db.executescript(
        """
        CREATE TABLE auth_sessions (
            project TEXT NOT NULL,
            id TEXT NOT NULL,
            type TEXT NOT NULL,
            status TEXT NOT NULL,
            source TEXT NOT NULL,
            parameters BLOB,
            state BLOB,
            proxy BLOB,
            proxy_masked TEXT,
            options TEXT NOT NULL,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            last_checked_at TEXT,
            PRIMARY KEY (project, id)
        );
        CREATE TABLE auth_operations (
            id TEXT PRIMARY KEY,
            project TEXT NOT NULL,
            session_id TEXT NOT NULL,
            kind TEXT NOT NULL,
            status TEXT NOT NULL,
            run_id TEXT,
            error TEXT,
            reason TEXT,
            request BLOB NOT NULL,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL
        );
        CREATE INDEX auth_operations_status ON auth_operations (status);
        """
    )


@migrations(name="0009_auth_required")
def _auth_required(db: sqlite_utils.Database) -> None:
    # auth_required: Intuned.json authSessions.enabled, so runs that name no session are refused.
    db.executescript("ALTER TABLE project_versions ADD COLUMN auth_required INTEGER NOT NULL DEFAULT 0;")


@migrations(name="0011_queues")
def _queues(db: sqlite_utils.Database) -> None:
    # A queue item is a run (run_type QUEUE) with queue_id set. next_at: when a repeat item is next
    # appended, kept so a restart neither skips nor doubles one.
    db.executescript(
        """
        CREATE TABLE queues (
            project TEXT NOT NULL,
            id TEXT NOT NULL,
            spec TEXT NOT NULL,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            PRIMARY KEY (project, id)
        );
        CREATE TABLE queue_repeat_items (
            project TEXT NOT NULL,
            queue_id TEXT NOT NULL,
            id TEXT NOT NULL,
            spec TEXT NOT NULL,
            period_ms INTEGER NOT NULL,
            next_at TEXT NOT NULL,
            last_run_id TEXT,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            PRIMARY KEY (project, queue_id, id)
        );
        ALTER TABLE runs ADD COLUMN queue_id TEXT;
        CREATE INDEX runs_queue ON runs (project, queue_id, status);
        """
    )


@migrations(name="0010_rate_admissions")
def _rate_admissions(db: sqlite_utils.Database) -> None:
    # When each item of a rate-limited queue (key) started, so a restart does not reset its windows.
    # at_us: microseconds since the epoch, exact, as the windows compare them.
    db.executescript(
        """
        CREATE TABLE rate_admissions (key TEXT NOT NULL, at_us INTEGER NOT NULL);
        CREATE INDEX rate_admissions_key ON rate_admissions (key, at_us);
        """
    )


@migrations(name="0012_collections")
def _collections(db: sqlite_utils.Database) -> None:
    # The /v1 collections API (store/collection_queries.py). A collection job is also a run of ours
    # (run_type COLLECTION, runs.id = collection_jobs.run_of) with its own attempts. created_at and
    # updated_at of collections and their runs are epoch seconds, as the API shows them; a job's
    # times are ISO text, as its keyset paging compares them. A job's request is copied from the
    # collection when its run starts, so updating the collection never changes a run under way.
    db.executescript(
        """
        CREATE TABLE collections (
            id TEXT PRIMARY KEY,
            name TEXT NOT NULL,
            callback_url TEXT,
            owner_key_id TEXT,
            created_at REAL NOT NULL,
            updated_at REAL NOT NULL
        );
        CREATE TABLE collection_requests (
            collection_id TEXT NOT NULL,
            position INTEGER NOT NULL,
            request TEXT NOT NULL,
            custom_id TEXT,
            PRIMARY KEY (collection_id, position)
        );
        CREATE TABLE collection_runs (
            id TEXT PRIMARY KEY,
            collection_id TEXT NOT NULL,
            status TEXT NOT NULL,
            callback_url TEXT,
            created_at REAL NOT NULL,
            completed_at REAL
        );
        CREATE INDEX collection_runs_collection ON collection_runs (collection_id, created_at);
        CREATE INDEX collection_runs_status ON collection_runs (status);
        CREATE TABLE collection_jobs (
            id TEXT PRIMARY KEY,
            collection_run_id TEXT NOT NULL,
            position INTEGER NOT NULL,
            run_of TEXT NOT NULL,
            url TEXT NOT NULL,
            custom_id TEXT,
            request TEXT NOT NULL,
            status TEXT NOT NULL,
            status_code INTEGER,
            message TEXT,
            block_reason TEXT,
            queued_at TEXT NOT NULL,
            started_at TEXT,
            completed_at TEXT,
            execution_time_ms INTEGER,
            retries_attempted INTEGER,
            is_success INTEGER,
            result TEXT
        );
        CREATE INDEX collection_jobs_run ON collection_jobs (collection_run_id, status);
        CREATE INDEX collection_jobs_run_position ON collection_jobs (collection_run_id, position);
        CREATE INDEX collection_jobs_completed ON collection_jobs (collection_run_id, completed_at, id);
        CREATE INDEX collection_jobs_processing ON collection_jobs (status) WHERE status = 'processing';
        CREATE TABLE collection_idempotency (
            key TEXT NOT NULL,
            api_key_id TEXT NOT NULL,
            collection_id TEXT NOT NULL,
            response TEXT NOT NULL,
            created_at REAL NOT NULL,
            PRIMARY KEY (key, api_key_id)
        );
        """
    )


@migrations(name="0013_run_list_indexes")
def _run_list_indexes(db: sqlite_utils.Database) -> None:
    # The runs list pages newest first (seq DESC) within a project, optionally filtered: an index
    # per filterable column, ending in seq, serves both the filter and the order. run_duration is
    # an expression (RUN_DURATION_SQL in queries.py); it must match that text exactly.
    db.executescript(
        """
        CREATE INDEX runs_project_seq ON runs (project, seq);
        CREATE INDEX runs_project_status ON runs (project, status, seq);
        CREATE INDEX runs_project_api ON runs (project, api, seq);
        CREATE INDEX runs_project_type ON runs (project, run_type, status, seq);
        CREATE INDEX runs_project_job ON runs (project, job_id, seq);
        CREATE INDEX runs_project_started ON runs (project, started_at);
        CREATE INDEX runs_project_duration ON runs (
            project, CAST((julianday(ended_at) - julianday(started_at)) * 86400000 AS INTEGER)
        );
        ANALYZE;
        """
    )
