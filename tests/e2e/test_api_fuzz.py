"""Schemathesis against the real daemon: every operation of /openapi.json, fuzzed, never a 5xx.

The daemon is its own (the fuzzer creates and deletes jobs at random). Path parameters are
sometimes swapped for ids that exist (the workspace always), so cases reach past the 404s
into the handlers. Examples per operation are bounded to keep the module near a minute.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import hypothesis.strategies as st
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup

from .conftest import Daemon, DaemonFactory, Receiver

pytestmark = pytest.mark.e2e

EXAMPLES = {GenerationMode.POSITIVE: 40, GenerationMode.NEGATIVE: 25}
ECHO = {"api/echo.py": "async def automation(page, params, **kwargs):\n    return params\n"}
PROJECT = "fuzz"


@dataclass
class Target:
    """The fuzzed daemon, the receiver its sinks are aimed at, and ids that exist in it."""

    daemon: Daemon
    receiver: Receiver
    known: dict[str, str] = field(default_factory=dict)
    answered: dict[str, set[int]] = field(default_factory=dict)  # statuses seen, per operation

    def prepare(self) -> None:
        """A finished run, a job with a JobRun, and a delivery: ids the fuzzer may aim at."""
        daemon = self.daemon
        daemon.deploy(PROJECT, ECHO)
        sink = {"type": "webhook", "url": f"{self.receiver.url}/ok"}
        run_id = daemon.start_run(PROJECT, {"api": "echo", "parameters": {"n": 1}, "sink": sink})
        daemon.wait_for(PROJECT, run_id)
        self.receiver.wait_for("/ok", 1)
        with daemon.client() as c:
            job = {"id": "fuzz-job", "payload": [{"apiName": "echo", "parameters": {}}], "configuration": {}}
            assert c.post(daemon.path(PROJECT, "/jobs"), json=job).status_code == 201
            triggered = c.post(daemon.path(PROJECT, "/jobs/fuzz-job/trigger"))
            assert triggered.status_code == 200, triggered.text
            deliveries = c.get(f"/api/v1/workspace/{daemon.workspace}/deliveries", params={"run": run_id}).json()
        self.known = {
            "project": PROJECT,
            "run_id": run_id,
            "job_id": "fuzz-job",
            "job_run_id": triggered.json()["jobRunId"],
            "delivery_id": deliveries["items"][0]["id"],
            "number": "1",
        }

    def local_only(self, body: Any) -> None:
        """Generated sinks and proxies would point the daemon at hosts off this machine: proxies
        are dropped and sinks aimed at the local receiver."""
        if not isinstance(body, dict):
            return
        for where in (body, body.get("configuration")):
            if isinstance(where, dict):
                where.pop("proxy", None)
        sink = body.get("sink")
        if isinstance(sink, dict):
            address = {"webhook": "url", "s3": "endpoint"}.get(str(sink.get("type")))
            if address:
                sink[address] = f"{self.receiver.url}/ok"

    def fuzz(self, operation: Any, mode: GenerationMode) -> None:
        daemon = self.daemon
        strategy = operation.as_strategy(generation_mode=mode, path_parameters={"workspace_id": daemon.workspace})
        headers = {"x-api-key": daemon.key}
        seen = self.answered.setdefault(operation.label, set())

        @settings(
            max_examples=EXAMPLES[mode],
            deadline=None,
            database=None,
            derandomize=True,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        @given(data=st.data())
        def run(data: st.DataObject) -> None:
            case = data.draw(strategy)
            for name in case.path_parameters or {}:
                if name in self.known and data.draw(st.booleans()):
                    value = self.known[name]
                    case.path_parameters[name] = int(value) if name == "number" else value
            self.local_only(case.body)
            body = case.body
            if isinstance(body, dict) and "api" in body and data.draw(st.booleans()):
                body["api"] = "echo"  # a run that really starts, with generated options
            if isinstance(body, dict) and "payload" in body and data.draw(st.booleans()):
                # A job that can be saved: a slug id, the project's API, no generated schedule.
                body.pop("schedule", None)
                for item in body["payload"] if isinstance(body["payload"], list) else []:
                    if isinstance(item, dict):
                        item["apiName"] = "echo"
                if "id" in body:
                    body["id"] = f"made-{data.draw(st.integers(0, 9))}"
            response = case.call(base_url=daemon.url, headers=headers, timeout=30)
            seen.add(response.status_code)
            case.validate_response(response, checks=[not_a_server_error], headers=headers)

        run()


def test_no_operation_answers_a_server_error(daemon_factory: DaemonFactory, receiver: Receiver) -> None:
    target = Target(daemon_factory(runs__sync_run_max_wait_s=2), receiver)
    target.prepare()
    schema = schemathesis.openapi.from_url(f"{target.daemon.url}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    # Deletions last, so the known job is still there for the operations that use it.
    operations.sort(key=lambda op: op.method.upper() == "DELETE")
    assert len(operations) >= 30
    failures: list[str] = []
    for operation in operations:
        for mode in EXAMPLES:
            try:
                target.fuzz(operation, mode)
            except Unsatisfiable:
                assert mode is GenerationMode.NEGATIVE, operation.label  # nothing in it can be made invalid
            except (FailureGroup, Exception) as e:  # every operation is tried; all failures are reported together
                failures.append(f"{operation.label} [{mode.value}]: {e}")
    assert not failures, "\n\n".join(failures)
    # The cases reached the handlers, not only the key check and the 404s.
    succeeded = [label for label, seen in target.answered.items() if any(200 <= s < 300 for s in seen)]
    assert len(succeeded) >= 20, "\n".join(f"{k}: {sorted(v)}" for k, v in target.answered.items())
    with target.daemon.client() as c:
        assert c.get("/health").status_code == 200
    assert target.daemon.process is not None and target.daemon.process.poll() is None


@pytest.fixture(scope="module")
def paged(daemon: Daemon) -> str:
    """A project with a job on the shared daemon, for the paging routes to reach the store."""
    daemon.deploy("paging", ECHO)
    job = {"id": "paged", "payload": [{"apiName": "echo", "parameters": {}}], "configuration": {}}
    with daemon.client() as c:
        assert c.post(daemon.path("paging", "/jobs"), json=job).status_code == 201
    return "paging"


@pytest.mark.parametrize(
    ("where", "query"),
    [
        ("/deliveries", "offset=18446744073709551616"),
        ("/projects/paging/runs", "offset=18446744073709551616"),
        ("/projects/paging/jobs/paged/runs", "pageNumber=18446744073709551616"),
        ("/projects/paging/jobs/paged/runs", "pageNumber=36893488147419103&pageSize=500"),
    ],
)
def test_paging_past_sqlite_integers_is_a_400(daemon: Daemon, paged: str, where: str, query: str) -> None:
    """Found by the fuzzer: an offset SQLite cannot hold was a 500 from the store."""
    with daemon.client() as c:
        response = c.get(f"/api/v1/workspace/{daemon.workspace}{where}?{query}")
    assert response.status_code == 400, response.text
    assert response.json()["details"]["field"] == query.split("=")[0]
