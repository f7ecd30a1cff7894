"""Fault injection, the control paths and the request log: what only the emulator has.

These tests run on the emulator alone. A real control plane cannot be told to
fail, throttle or hang the next request, to fail a Job's command, or to list
the requests it served; the simulated kubelet beside it marks images by the
same conventions, which ``test_rollouts`` and ``tests/kube`` check on both.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time

import pytest
import urllib3
from kubernetes import client
from kubernetes.client.rest import ApiException

from local.cluster import ClusterEmulator
from local.cluster.commands import WP_ROOT_ERROR
from tests.emulator.conftest import NAMESPACE, Kube, http, job_manifest


@pytest.mark.parametrize(
    ("status", "reason"),
    [(500, "InternalError"), (503, "ServiceUnavailable"), (429, "TooManyRequests")],
)
def test_the_next_matching_request_fails_then_service_resumes(
    emulated: Kube, status: int, reason: str
) -> None:
    # GIVEN one injected failure for PATCHes of the configmap
    emulated.emulator.faults.fail_requests(
        method="PATCH", path=r"/configmaps/canary-env$", status=status, count=1
    )
    # WHEN the product patches twice
    with pytest.raises(ApiException) as failed:
        emulated.core.patch_namespaced_config_map("canary-env", NAMESPACE, {"data": {"a": "1"}})
    emulated.core.patch_namespaced_config_map("canary-env", NAMESPACE, {"data": {"a": "2"}})
    # THEN the first got a Status of that kind and changed nothing; the second went through
    assert failed.value.status == status
    assert json.loads(failed.value.body)["reason"] == reason
    if status == 429:
        assert failed.value.headers["Retry-After"] == "1"
    assert emulated.core.read_namespaced_config_map("canary-env", NAMESPACE).data["a"] == "2"


@pytest.mark.parametrize(
    ("status", "retry_after", "header"),
    [(503, 2, "2"), (429, 3, "3"), (429, None, "1"), (503, None, None), (500, None, None)],
)
def test_an_injected_failure_asks_for_the_retry_after_it_was_given(
    emulated: Kube, status: int, retry_after: int | None, header: str | None
) -> None:
    # GIVEN one injected failure of the configmap's PATCH, with or without a Retry-After
    emulated.emulator.faults.fail_requests(
        method="PATCH",
        path=r"/configmaps/canary-env$",
        status=status,
        count=1,
        retry_after=retry_after,
    )
    # WHEN the product patches
    with pytest.raises(ApiException) as failed:
        emulated.core.patch_namespaced_config_map("canary-env", NAMESPACE, {"data": {"a": "1"}})
    # THEN the answer asks for that wait in the header and in the Status, as a server would
    assert failed.value.status == status
    assert failed.value.headers.get("Retry-After") == header
    details = json.loads(failed.value.body).get("details") or {}
    assert details.get("retryAfterSeconds") == (int(header) if header else None)


@pytest.mark.parametrize("retry_after", [-1, 1.5, True, "1"])
def test_a_retry_after_that_is_not_whole_seconds_is_refused(
    emulated: Kube, retry_after: object
) -> None:
    # WHEN a failure is asked for with a Retry-After that is not a whole number of seconds
    with pytest.raises(ValueError, match="retry_after must be a whole number of seconds"):
        emulated.emulator.faults.fail_requests(status=503, retry_after=retry_after)  # type: ignore[arg-type]
    # THEN no fault was added
    assert emulated.core.read_namespaced_config_map("canary-env", NAMESPACE).data


def test_faults_only_hit_the_matching_method(emulated: Kube) -> None:
    emulated.emulator.faults.fail_requests(method="PATCH", path="configmaps", status=503, count=1)
    assert emulated.core.read_namespaced_config_map("canary-env", NAMESPACE).data


def test_a_hanging_request_outlasts_the_client_timeout(emulated: Kube) -> None:
    # GIVEN the next GET of the configmap hangs for 2 seconds
    emulated.emulator.faults.hang_requests(method="GET", path="canary-env", seconds=2.0, count=1)
    # WHEN a client with a 0.3 s read timeout and no automatic retry asks
    configuration = client.Configuration(host=emulated.emulator.url)
    configuration.retries = False
    impatient = client.CoreV1Api(client.ApiClient(configuration))
    started = time.monotonic()
    with pytest.raises(urllib3.exceptions.ReadTimeoutError):
        impatient.read_namespaced_config_map("canary-env", NAMESPACE, _request_timeout=(1, 0.3))
    # THEN it gives up on time, and the next request is served normally
    assert time.monotonic() - started < 1.5
    assert emulated.core.read_namespaced_config_map("canary-env", NAMESPACE).data


def test_stop_does_not_wait_for_hanging_requests() -> None:
    emulator = ClusterEmulator().start()
    emulator.faults.hang_requests(seconds=30)

    def ask() -> None:
        with contextlib.suppress(OSError):
            http(emulator, "GET", "/version", timeout=5)

    threading.Thread(target=ask, daemon=True).start()
    deadline = time.monotonic() + 5
    while not any(r.path == "/version" for r in emulator.requests):
        assert time.monotonic() < deadline, "the request never reached the emulator"
        time.sleep(0.01)
    started = time.monotonic()
    emulator.stop()
    assert time.monotonic() - started < 1.0


def test_control_path_injects_faults_and_moves_the_clock(emulated: Kube) -> None:
    emulator = emulated.emulator
    status, _, _ = http(
        emulator,
        "POST",
        "/_emulator/faults/requests",
        {"method": "GET", "path": "canary-env", "status": 503, "count": 1},
    )
    assert status == 200
    assert http(emulator, "GET", f"/api/v1/namespaces/{NAMESPACE}/configmaps/canary-env")[0] == 503
    before = emulator.clock.now()
    assert http(emulator, "POST", "/_emulator/clock/advance", {"seconds": 60})[0] == 200
    assert emulator.clock.now() == before + 60
    status, _, body = http(
        emulator,
        "POST",
        "/_emulator/faults/images",
        {"image": "sha256:" + "f" * 64, "mode": "Sideways"},
    )
    assert status == 400
    assert "mode must be one of" in json.loads(body)["error"]


def test_control_path_breaks_an_image_like_a_broken_push(emulated: Kube) -> None:
    digest = "sha256:" + "9" * 64
    http(
        emulated.emulator,
        "POST",
        "/_emulator/faults/images",
        {"image": digest, "mode": "ImagePullBackOff"},
    )
    assert emulated.emulator.faults.image_fault(f"repo@{digest}") == "ImagePullBackOff"
    assert emulated.emulator.faults.image_fault("repo@sha256:" + "8" * 64) is None


def test_requests_are_recorded_for_benchmarks(emulated: Kube) -> None:
    emulated.emulator.reset_requests()
    emulated.core.read_namespaced_config_map("canary-env", NAMESPACE)
    emulated.core.list_namespaced_pod(NAMESPACE, label_selector="app=blue")
    assert [(r.method, r.path) for r in emulated.emulator.requests] == [
        ("GET", f"/api/v1/namespaces/{NAMESPACE}/configmaps/canary-env"),
        ("GET", f"/api/v1/namespaces/{NAMESPACE}/pods"),
    ]
    assert emulated.emulator.requests[1].query == {"labelSelector": "app=blue"}


def test_an_invalid_path_regex_is_a_400_naming_it(emulated: Kube) -> None:
    # WHEN a request fault is asked for with a path that is no regular expression
    status, _, body = http(emulated.emulator, "POST", "/_emulator/faults/requests", {"path": "("})
    # THEN the answer is a 400 Status saying so, and no fault was added
    answer = json.loads(body)
    assert status == 400
    assert (answer["kind"], answer["reason"], answer["code"]) == ("Status", "BadRequest", 400)
    assert "'(' is not a valid regular expression" in answer["message"]
    assert emulated.core.read_namespaced_config_map("canary-env", NAMESPACE).data


@pytest.mark.parametrize(
    ("path", "body", "named"),
    [
        ("/_emulator/faults/jobs", {"match": "flush", "cuont": 1}, "cuont"),
        ("/_emulator/faults/images", {"image": "sha256:" + "f" * 64, "mdoe": "x"}, "mdoe"),
        ("/_emulator/faults/requests", {"path": "x", "times": 2}, "times"),
        ("/_emulator/faults/hangs", {"secs": 1}, "secs"),
        ("/_emulator/clock/advance", {"seconds": 1, "by": 2}, "by"),
    ],
)
def test_an_unknown_control_field_is_a_400_naming_it(
    emulated: Kube, path: str, body: dict[str, object], named: str
) -> None:
    # WHEN a control path gets a field it does not know
    before = emulated.emulator.clock.now()
    status, _, answer = http(emulated.emulator, "POST", path, body)
    # THEN it refuses with the field's name, and nothing was injected or moved
    assert status == 400
    assert f"unknown field(s) {named}" in json.loads(answer)["message"]
    assert emulated.emulator.faults.job_fault("flush", "") is None
    assert emulated.emulator.faults.image_fault("repo@sha256:" + "f" * 64) is None
    assert emulated.emulator.clock.now() == before


@pytest.mark.parametrize(
    ("path", "body", "message"),
    [
        ("/_emulator/faults/jobs", {}, "missing required field(s) match"),
        ("/_emulator/faults/jobs", {"match": "x", "count": 0}, "count must be a positive"),
        ("/_emulator/faults/jobs", {"match": "x", "count": "2"}, "count must be an integer"),
        ("/_emulator/faults/requests", {"count": -1}, "count must be a positive"),
        ("/_emulator/clock/advance", {"seconds": "soon"}, "seconds must be a number"),
        ("/_emulator/faults/jobs", ["match"], "the body must be a JSON object"),
    ],
)
def test_a_mistyped_control_value_is_a_400_saying_what_is_wrong(
    emulated: Kube, path: str, body: object, message: str
) -> None:
    status, _, answer = http(emulated.emulator, "POST", path, body)
    assert status == 400
    assert message in json.loads(answer)["message"]


def test_job_fault_count_limits_how_many_job_runs_fail(emulated: Kube) -> None:
    # GIVEN a job fault for the next run only, through the control path
    status, _, _ = http(
        emulated.emulator, "POST", "/_emulator/faults/jobs", {"match": "flush", "count": 1}
    )
    assert status == 200
    # THEN the first matching run fails and the next one is left alone
    assert emulated.emulator.faults.job_fault("hook-flush-1", "") == "fail"
    assert emulated.emulator.faults.job_fault("hook-flush-2", "") is None


# Jobs under an injected fault -------------------------------------------------------


def _job_conditions(kube: Kube, job: str) -> dict[str, str]:
    status = kube.batch.read_namespaced_job_status(job, NAMESPACE).status
    return {c.type: c.reason for c in status.conditions or []}


def _job_log(kube: Kube, job: str) -> str:
    pods = kube.core.list_namespaced_pod(NAMESPACE, label_selector=f"job-name={job}").items
    response = kube.core.read_namespaced_pod_log(
        pods[-1].metadata.name, NAMESPACE, _preload_content=False
    )
    return str(response.data.decode())


def test_fault_makes_a_job_fail_or_hang(emulated: Kube) -> None:
    emulated.emulator.faults.fail_jobs("migrate", mode="fail")
    emulated.emulator.faults.fail_jobs("warm", mode="hang")
    emulated.batch.create_namespaced_job(NAMESPACE, job_manifest("migrate-db", ["true"]))
    emulated.batch.create_namespaced_job(NAMESPACE, job_manifest("x", ["sh", "-c", "warm cache"]))
    assert "Failed" in _job_conditions(emulated, "migrate-db")
    hanging = emulated.batch.read_namespaced_job_status("x", NAMESPACE).status
    assert hanging.active == 1
    assert not hanging.conditions


def test_an_injected_failure_logs_a_failure_not_the_commands_success(emulated: Kube) -> None:
    # GIVEN an injected failure for a hook that would otherwise flush the cache
    # (test_jobs checks on both backends that, unfaulted, it logs its success)
    emulated.emulator.faults.fail_jobs("flush", mode="fail")
    command = ["wp", "cache", "flush", "--allow-root"]
    # WHEN the hook runs
    emulated.batch.create_namespaced_job(NAMESPACE, job_manifest("hook-flush", command))
    # THEN the Job failed and its log says so instead of claiming the flush worked
    assert "Failed" in _job_conditions(emulated, "hook-flush")
    log = _job_log(emulated, "hook-flush")
    assert "Success" not in log
    assert log == "Error: injected failure (emulator fault)\n"
    assert log != WP_ROOT_ERROR
    terminated = (
        emulated.core.list_namespaced_pod(NAMESPACE, label_selector="job-name=hook-flush")
        .items[0]
        .status.container_statuses[0]
        .state.terminated
    )
    assert terminated.exit_code == 1


def test_a_counted_job_fault_fails_only_the_next_run(emulated: Kube) -> None:
    # GIVEN a failure injected for one run
    emulated.emulator.faults.fail_jobs("flush", count=1)
    # WHEN the hook runs twice
    emulated.batch.create_namespaced_job(NAMESPACE, job_manifest("flush-1", ["true"]))
    emulated.batch.create_namespaced_job(NAMESPACE, job_manifest("flush-2", ["true"]))
    # THEN only the first failed
    assert "Failed" in _job_conditions(emulated, "flush-1")
    assert "Complete" in _job_conditions(emulated, "flush-2")
