"""``SessionAttempts`` on real workers: each check or create is one attempt of the project's
``auth-sessions/check.py`` or ``create.py``, recorded as an attempt of a run of its own.

That run (``runType`` AUTH_SESSION, API ``auth-sessions/validate``) is created at the first
attempt, so a validation that needs none (a check window) leaves nothing behind. Its parameters
name the session and the run it served (``parentRunId``), never the session's secrets. It is
listed, inspected (attempts, logs, traces) and removed by retention like any run. The runner
never drives it: one left unfinished by a killed daemon is failed at the next start, and the
validation it belonged to happens again with the run that needs it.
"""

from __future__ import annotations

from typing import Any

import trio

from ..actors.attempts import Attempts
from ..actors.store import StoreHandle
from ..messages import ProjectVersion, RunOptions, RunRecord
from ..store import queries, run_transactions
from ..workers import protocol
from ..workers.attempt import AttemptOutcome, KeyValue

RUN_TYPE = "AUTH_SESSION"
RUN_API = "auth-sessions/validate"
CHECK_API = "auth-sessions/check"
CREATE_API = "auth-sessions/create"


class WorkerAttempts:
    def __init__(
        self,
        attempts: Attempts,
        store: StoreHandle,
        project: ProjectVersion,
        session_id: str,
        parameters: Any,
        *,
        validation_id: str,
        served_run_id: str | None,
        proxy: str | None,
        timeout_s: float,
        save_trace: bool,
        kv: KeyValue,
    ) -> None:
        self._attempts = attempts
        self._store = store
        self._project = project
        self._session_id = session_id
        self._parameters = parameters
        self.validation_id = validation_id
        self._served_run_id = served_run_id
        self._proxy = proxy
        self._timeout_s = timeout_s
        self._save_trace = save_trace
        self._kv = kv
        self._run: RunRecord | None = None
        self._running: int | None = None  # the attempt started and not yet finished
        self.made = 0
        self.last_error: dict[str, Any] | None = None  # of the last attempt that failed, for the failure's details

    async def check(self, state: Any) -> bool:
        outcome = await self._attempt(CHECK_API, "auth-check", auth_state=state, auth_parameters=self._parameters)
        return outcome.status == "completed" and outcome.result is True

    async def create(self) -> Any | None:
        outcome = await self._attempt(CREATE_API, "auth-create", auth_parameters=self._parameters)
        return outcome.session if outcome.status == "completed" else None

    async def finish(self, error: dict[str, Any] | None) -> None:
        """End the validation's run: completed, or failed with ``error``."""
        if self._run is not None:
            status = "failed" if error is not None else "completed"
            await self._store.write(queries.finish_run, self._run, status, result=error is None, error=error)

    async def abandon(self, reason: dict[str, Any]) -> None:
        """End the validation's run, and the attempt it was running, canceled with ``reason``. It runs
        while its caller is being cancelled (its session was deleted), hence the shield."""
        if self._run is not None:
            with trio.CancelScope(shield=True):
                await self._store.write(run_transactions.cancel_run, self._run, self._running, reason)

    async def _validation_run(self) -> RunRecord:
        if self._run is None:
            options = RunOptions(max_attempts=0, request_timeout_s=int(self._timeout_s), save_trace=self._save_trace)
            parameters = {"authSessionId": self._session_id, "parentRunId": self._served_run_id}
            self._run = await self._store.write(
                queries.insert_run, self.validation_id, self._project, RUN_API, parameters, options, run_type=RUN_TYPE
            )
        return self._run

    async def _attempt(self, api: str, function: str, **fields: Any) -> AttemptOutcome:
        run = await self._validation_run()
        self.made += 1
        context = protocol.RunContext(
            run_id=self.validation_id,
            project_name=self._project.name,
            api_name=api,
            attempt_number=self.made,
            auth_session_id=self._session_id,
            proxy=self._proxy,
        )
        settings = self._attempts.settings
        start = await self._attempts.start(
            self._project,
            settings.artifacts_path / self.validation_id / str(self.made),
            save_trace=self._save_trace,
            proxy=self._proxy,
            context=context,
            api=api,
            parameters=None,
            function=function,
            **fields,
        )
        await self._store.write(
            queries.start_attempt, run, self.made, start.log_path, start.trace_path, start.video_dir
        )
        self._running = self.made
        outcome = await self._attempts.run(self._project, start, timeout_s=self._timeout_s, kv=self._kv)
        await self._store.write(
            queries.finish_attempt, run, self.made, outcome.status, outcome.error, trace_dropped=outcome.trace_dropped
        )
        self._running = None
        if outcome.error is not None:
            # The code only: a message from the login script may quote its parameters.
            self.last_error = {"api": api, "code": outcome.error.get("code")}
        return outcome
