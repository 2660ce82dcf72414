"""What the HTTP layer reads, and the few writes it makes itself (a delivery retried by hand,
a key revoked): typed calls over the store actor, so routes never hold the store handle or name a
query. Everything else a route changes goes through the runner, the deployer or the AuthSessions actor."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from ..actors.store import StoreHandle, StoreStatistics
from ..job_spec import JobRecord, JobRunRecord
from ..messages import AttemptRecord, ProjectVersion, RunRecord
from ..policy.run_filters import Condition
from ..queue_spec import RepeatItemRecord
from ..secrets import SecretBox
from ..store import auth_queries, dashboard_queries, delivery_queries, job_queries, queries, queue_queries
from ..store.auth_queries import AuthOperation, AuthSessionRecord, OperationKind
from ..store.delivery_queries import Delivery
from ..store.keys import ApiKey, key_is_valid, list_api_keys, revoke_api_key

RESULTS_PAGE = 50


class Records:
    def __init__(self, store: StoreHandle) -> None:
        self._store = store

    def statistics(self) -> StoreStatistics:
        return self._store.statistics()

    # -- projects, runs, attempts -----------------------------------------------------------

    async def projects(self) -> list[ProjectVersion]:
        return await self._store.read(queries.current_projects)

    async def project_history(self, name: str, limit: int = 20) -> list[tuple[ProjectVersion, Any]]:
        return await self._store.read(queries.project_history, name, limit)

    async def run(self, run_id: str) -> RunRecord | None:
        return await self._store.read(queries.get_run, run_id)

    async def runs(
        self, project: str, conditions: list[Condition], limit: int, offset: int, before_seq: int | None = None
    ) -> tuple[list[RunRecord], int]:
        return await self._store.read(queries.list_runs, project, conditions, limit, offset, before_seq)

    async def attempts(self, run_id: str) -> list[AttemptRecord]:
        return await self._store.read(queries.list_attempts, run_id)

    async def finished_by_minute(self, since: str) -> list[tuple[str, str, int]]:
        return await self._store.read(dashboard_queries.finished_by_minute, since)

    async def active_runs(self, limit: int) -> list[RunRecord]:
        return await self._store.read(dashboard_queries.active_runs, limit)

    # -- queues ----------------------------------------------------------------------------

    async def queue_item(self, project: str, queue_id: str, run_id: str) -> RunRecord | None:
        return await self._store.read(queue_queries.get_item, project, queue_id, run_id)

    async def repeat_items(self, project: str, queue_id: str) -> list[RepeatItemRecord]:
        return await self._store.read(queue_queries.list_repeats, project, queue_id)

    async def repeat_item(self, project: str, queue_id: str, item_id: str) -> RepeatItemRecord | None:
        return await self._store.read(queue_queries.get_repeat, project, queue_id, item_id)

    # -- jobs and JobRuns -------------------------------------------------------------------

    async def jobs(self, project: str) -> list[JobRecord]:
        return await self._store.read(job_queries.list_jobs, project)

    async def job(self, project: str, job_id: str) -> JobRecord | None:
        return await self._store.read(job_queries.get_job, project, job_id)

    async def job_run(self, project: str, job_id: str, job_run_id: str) -> JobRunRecord | None:
        return await self._store.read(job_queries.get_job_run, project, job_id, job_run_id)

    async def job_runs(
        self, project: str, job_id: str, page_size: int, page_number: int, sort_by: str
    ) -> tuple[list[JobRunRecord], int]:
        return await self._store.read(job_queries.list_job_runs, project, job_id, page_size, page_number, sort_by)

    async def job_runs_counts(self, job_run_ids: list[str]) -> dict[str, dict[str, int]]:
        return await self._store.read(job_queries.job_runs_counts, job_run_ids)

    async def job_run_results(self, job_run_id: str) -> AsyncIterator[RunRecord]:
        """Every run of the JobRun in acceptance order, read a page at a time."""
        after = 0
        while page := await self._store.read(job_queries.job_run_results, job_run_id, after, RESULTS_PAGE):
            for run in page:
                yield run
            after = page[-1].seq

    # -- deliveries -------------------------------------------------------------------------

    async def deliveries(
        self, status: str | None, run_id: str | None, limit: int, offset: int
    ) -> tuple[list[Delivery], int]:
        return await self._store.read(delivery_queries.list_deliveries, status, run_id, limit, offset)

    async def delivery(self, delivery_id: str) -> Delivery | None:
        return await self._store.read(delivery_queries.get_delivery, delivery_id)

    async def retry_delivery(self, delivery_id: str) -> Delivery:
        return await self._store.write(delivery_queries.retry_delivery, delivery_id)

    # -- AuthSessions (never their parameters or state) ----------------------------------------

    async def auth_sessions(self, project: str) -> list[AuthSessionRecord]:
        return await self._store.read(auth_queries.list_sessions, project)

    async def auth_session(self, project: str, session_id: str) -> AuthSessionRecord | None:
        return await self._store.read(auth_queries.get_session, project, session_id)

    async def auth_parameters(self, box: SecretBox, project: str, session_id: str) -> Any:
        """A CREDENTIALS session's parameters, for Intuned's runtime; None for any other session."""
        record = await self.auth_session(project, session_id)
        if record is None or record.type != "CREDENTIALS":
            return None
        return (await self._store.read(auth_queries.session_secrets, box, project, session_id)).parameters

    async def auth_operation(self, project: str, kind: OperationKind, op_id: str) -> AuthOperation | None:
        return await self._store.read(auth_queries.get_operation, project, kind, op_id)

    # -- persistent store (the runtime's backend functions) ----------------------------------

    async def kv_get(self, project: str, key: str) -> Any:
        return await self._store.read(queries.kv_get, project, key)

    async def kv_set(self, project: str, key: str, value: Any) -> None:
        await self._store.write(queries.kv_set, project, key, value)

    # -- keys and quarantine ----------------------------------------------------------------

    async def key_is_valid(self, digest: str) -> bool:
        return await self._store.read(key_is_valid, digest)

    async def keys(self) -> list[ApiKey]:
        return await self._store.read(list_api_keys)

    async def revoke_key(self, key_id: str) -> ApiKey:
        return await self._store.write(revoke_api_key, key_id)

    async def quarantine(self) -> list[dict[str, Any]]:
        return await self._store.read(queries.list_quarantine)
