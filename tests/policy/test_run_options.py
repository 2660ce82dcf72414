from __future__ import annotations

from intunedd.job_spec import JobConfiguration, JobSpec, PayloadItem, Retry
from intunedd.messages import ProjectVersion, RunRequest
from intunedd.policy.run_options import Defaults, for_item, for_request

DAEMON_SINK = {"type": "webhook", "url": "https://daemon.example/hook"}
PROJECT_SINK = {"type": "webhook", "url": "https://project.example/hook"}
OWN_SINK = {"type": "webhook", "url": "https://own.example/hook"}
DEFAULTS = Defaults(max_attempts=3, request_timeout_s=600, sink=DAEMON_SINK)


def _project(sink: dict[str, str] | None = None) -> ProjectVersion:
    return ProjectVersion(
        name="p", version=1, path="/p", apis=["a"], api_access=True, max_concurrent=1, deployed_at="", default_sink=sink
    )


def test_a_request_without_options_takes_the_daemon_defaults() -> None:
    options = for_request(RunRequest(), _project(), DEFAULTS)
    assert (options.max_attempts, options.request_timeout_s, options.save_trace) == (3, 600, True)
    assert options.sink == DAEMON_SINK


def test_a_request_own_options_win() -> None:
    request = RunRequest(max_attempts=1, request_timeout_s=5, save_trace=False, proxy="http://p:1", sink=OWN_SINK)
    options = for_request(request, _project(PROJECT_SINK), DEFAULTS)
    assert (options.max_attempts, options.request_timeout_s, options.save_trace) == (1, 5, False)
    assert (options.proxy, options.sink) == ("http://p:1", OWN_SINK)


def test_the_project_default_sink_comes_before_the_daemon_default() -> None:
    assert for_request(RunRequest(), _project(PROJECT_SINK), DEFAULTS).sink == PROJECT_SINK
    assert for_request(RunRequest(), _project(), Defaults(max_attempts=1, request_timeout_s=1)).sink is None


def test_an_item_takes_its_own_then_the_job_configuration_then_the_defaults() -> None:
    spec = JobSpec(
        payload=[],
        configuration=JobConfiguration(retry=Retry(maximum_attempts=5), request_timeout=60, save_trace=False),
        proxy="http://job:1",
    )
    item = PayloadItem(api_name="a", request_timeout=7, retry=Retry(maximum_attempts=2))
    own = for_item(spec, item, _project(), DEFAULTS)
    assert (own.max_attempts, own.request_timeout_s, own.save_trace, own.proxy) == (2, 7, False, "http://job:1")
    inherited = for_item(spec, PayloadItem(api_name="a"), _project(PROJECT_SINK), DEFAULTS)
    assert (inherited.max_attempts, inherited.request_timeout_s, inherited.sink) == (5, 60, PROJECT_SINK)
    bare = for_item(JobSpec(payload=[], configuration=JobConfiguration(), sink=OWN_SINK), PayloadItem(api_name="a"),
                    _project(PROJECT_SINK), DEFAULTS)  # fmt: skip
    assert (bare.max_attempts, bare.request_timeout_s, bare.save_trace, bare.sink) == (3, 600, True, OWN_SINK)
