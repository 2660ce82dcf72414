"""The deploy transaction: a project version, its jobs-as-code and sessions-as-code, committed together."""

from __future__ import annotations

from typing import Any

from ..job_spec import JobRunRecord, JobSpec
from ..messages import ProjectVersion
from ..secrets import SecretBox
from . import auth_queries, job_queries, queries
from .queries import Tx


def record(
    tx: Tx,
    project: ProjectVersion,
    settings: Any,
    code_jobs: dict[str, JobSpec],
    box: SecretBox,
    code_auth_sessions: dict[str, dict[str, Any]],
) -> tuple[list[str], list[JobRunRecord]]:
    """Record the version and apply its ``intuned-resources/jobs``: create or update each,
    delete code jobs whose file is gone. Returns the changed job ids and the active JobRuns
    of deleted jobs, which the runner terminates.

    ``intuned-resources/auth-sessions`` are created or given the file's parameters; a session
    whose file is gone is kept (deleting it would throw away a login): delete it over the API."""
    queries.record_deploy(tx, project, settings)
    for session_id, parameters in code_auth_sessions.items():
        auth_queries.upsert_code_session(tx, box, project.name, session_id, parameters)
    existing = {job.id: job for job in job_queries.list_jobs(tx.db, project.name)}
    changed = list(code_jobs)
    for job_id, spec in code_jobs.items():
        if job_id in existing:
            job_queries.update_job(tx, project.name, job_id, spec, source="CODE")
        else:
            job_queries.insert_job(tx, project.name, job_id, spec, "CODE")
    to_terminate = []
    for job_id, job in existing.items():
        if job.source == "CODE" and job_id not in code_jobs:
            active = job_queries.delete_job(tx, project.name, job_id, source="CODE")
            if active is not None:
                to_terminate.append(active)
            changed.append(job_id)
    return changed, to_terminate
