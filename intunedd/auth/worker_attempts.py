"""``SessionAttempts`` on real workers: each check or create is one attempt of the project's
``auth-sessions/check.py`` or ``create.py``, with its own log (and trace) in the artifacts folder
under the id of the validation it belongs to."""

from __future__ import annotations

from typing import Any

from ..actors.attempts import Attempts
from ..messages import ProjectVersion
from ..workers import protocol
from ..workers.attempt import AttemptOutcome, KeyValue

CHECK_API = "auth-sessions/check"
CREATE_API = "auth-sessions/create"


class WorkerAttempts:
    def __init__(
        self,
        attempts: Attempts,
        project: ProjectVersion,
        session_id: str,
        parameters: Any,
        *,
        validation_id: str,
        proxy: str | None,
        timeout_s: float,
        save_trace: bool,
        kv: KeyValue,
    ) -> None:
        self._attempts = attempts
        self._project = project
        self._session_id = session_id
        self._parameters = parameters
        self.validation_id = validation_id
        self._proxy = proxy
        self._timeout_s = timeout_s
        self._save_trace = save_trace
        self._kv = kv
        self.made = 0
        self.last_error: dict[str, Any] | None = None  # of the last attempt that failed, for the failure's details

    async def check(self, state: Any) -> bool:
        outcome = await self._attempt(CHECK_API, "auth-check", auth_state=state, auth_parameters=self._parameters)
        return outcome.status == "completed" and outcome.result is True

    async def create(self) -> Any | None:
        outcome = await self._attempt(CREATE_API, "auth-create", auth_parameters=self._parameters)
        return outcome.session if outcome.status == "completed" else None

    async def _attempt(self, api: str, function: str, **fields: Any) -> AttemptOutcome:
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
        outcome = await self._attempts.run(self._project, start, timeout_s=self._timeout_s, kv=self._kv)
        if outcome.error is not None:
            # The code only: a message from the login script may quote its parameters.
            self.last_error = {"api": api, "code": outcome.error.get("code")}
        return outcome
