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
