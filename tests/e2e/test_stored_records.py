"""Records already stored are hostile input too: read again at every start, a damaged one is
quarantined (or its run failed) and the daemon starts and serves the rest."""

from __future__ import annotations

import sqlite3

import pytest

from .conftest import DaemonFactory

pytestmark = pytest.mark.e2e

ECHO = {"api/echo.py": "async def automation(page, params, **kwargs):\n    return params\n"}


def _insert_run(db: sqlite3.Connection, run_id: str, *, version: int, options: str) -> None:
    db.execute(
        "INSERT INTO runs (id, project, version, api, parameters, options, status, run_type, created_at) "
        "VALUES (?, 'stored', ?, 'echo', '{}', ?, 'pending', 'STANDALONE', '2026-01-01T00:00:00.000Z')",
        (run_id, version, options),
    )


def test_damaged_stored_records_neither_stop_the_daemon_nor_the_other_runs(daemon_factory: DaemonFactory) -> None:
    daemon = daemon_factory()
    daemon.deploy("stored", ECHO)
    kept = daemon.start_run("stored", {"api": "echo", "parameters": {"kept": 1}})
    daemon.wait_for("stored", kept)
    assert daemon.stop() == 0
    good_options = '{"max_attempts": 1, "request_timeout_s": 60, "save_trace": false}'
    with sqlite3.connect(daemon.state_dir / "intunedd.db") as db:
        _insert_run(db, "garbledoptionsAAAAAAA", version=1, options="{not json")
        _insert_run(db, "missingversionAAAAAAA", version=99, options=good_options)
        _insert_run(db, "wellformedrunAAAAAAAA", version=1, options=good_options)
        db.execute("UPDATE project_versions SET apis='[' WHERE project='stored' AND version=1")
        db.execute(
            "INSERT INTO project_versions (project, version, path, apis, api_access, max_concurrent, settings, "
            "deployed_at) SELECT project, 2, path, '[\"echo\"]', 1, 1, '{}', deployed_at FROM project_versions "
            "WHERE project='stored' AND version=1"
        )
        db.execute("UPDATE projects SET current_version=2 WHERE name='stored'")
        db.execute(
            "INSERT INTO auth_sessions (project, id, type, status, source, parameters, options, created_at, "
            "updated_at) VALUES ('stored', 'garbled', 'CREDENTIALS', 'READY', 'API', x'00ff', '{}', "
            "'2026-01-01T00:00:00.000Z', '2026-01-01T00:00:00.000Z')"
        )
    daemon.start()

    with daemon.client() as c:
        quarantined = c.get(f"/api/v1/workspace/{daemon.workspace}/quarantine").json()["items"]
        sessions = c.get(daemon.path("stored", "/auth-sessions")).json()
    assert sorted((q["kind"], q["recordId"]) for q in quarantined) == [
        ("auth_session", "stored/garbled"), ("run", "garbledoptionsAAAAAAA"),
    ]  # fmt: skip
    assert all("cannot" in q["reason"] for q in quarantined)
    assert [s["id"] for s in sessions] == ["garbled"]  # its record reads; only its parameters do not unseal
    unrunnable = daemon.wait_for("stored", "missingversionAAAAAAA")
    assert (unrunnable["status"], unrunnable["error"]["code"]) == ("failed", "run-unrunnable")
    # Version 1's record is damaged too (its API list): the run that needs it fails, alone.
    assert daemon.wait_for("stored", "wellformedrunAAAAAAAA")["status"] == "failed"
    fresh = daemon.start_run("stored", {"api": "echo", "parameters": {"fresh": 1}})
    assert daemon.wait_for("stored", fresh)["result"] == {"fresh": 1}
    assert daemon.process is not None and daemon.process.poll() is None
