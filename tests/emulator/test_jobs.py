"""The Job controller and the pods it runs: outcomes, logs, back-off, TTL, faults."""

from __future__ import annotations

import pytest
from kubernetes.client.rest import ApiException

from local.cluster.commands import WP_ROOT_ERROR
from tests.emulator.conftest import NAMESPACE, Kube, job_manifest


def _log(kube: Kube, job: str, **params: object) -> str:
    pods = kube.core.list_namespaced_pod(NAMESPACE, label_selector=f"job-name={job}").items
    response = kube.core.read_namespaced_pod_log(
        pods[-1].metadata.name, NAMESPACE, _preload_content=False, **params
    )
    return response.data.decode()


def _conditions(kube: Kube, job: str) -> dict[str, str]:
    status = kube.batch.read_namespaced_job_status(job, NAMESPACE).status
    return {c.type: c.reason for c in status.conditions or []}


def test_wp_as_root_fails_with_wp_clis_own_message(kube: Kube) -> None:
    # WHEN a hook runs wp as root without --allow-root
    kube.batch.create_namespaced_job(NAMESPACE, job_manifest("flush", ["wp", "cache", "flush"]))
    # THEN the Job fails the way the real one did, and the log says why
    job = kube.batch.read_namespaced_job_status("flush", NAMESPACE)
    assert job.status.failed == 1
    assert job.status.succeeded is None
    assert _conditions(kube, "flush") == {
        "FailureTarget": "BackoffLimitExceeded",
        "Failed": "BackoffLimitExceeded",
    }
    log = _log(kube, "flush")
    assert log == WP_ROOT_ERROR
    assert log.startswith("Error: YIKES! It looks like you're running this as root.")


def test_wp_with_allow_root_succeeds(kube: Kube) -> None:
    kube.batch.create_namespaced_job(
        NAMESPACE, job_manifest("flush", ["wp", "cache", "flush", "--allow-root"])
    )
    job = kube.batch.read_namespaced_job_status("flush", NAMESPACE)
    assert job.status.succeeded == 1
    assert job.status.active is None
    assert job.status.completion_time is not None
    assert _conditions(kube, "flush") == {
        "SuccessCriteriaMet": "CompletionsReached",
        "Complete": "CompletionsReached",
    }
    assert _log(kube, "flush") == "Success: The cache was flushed.\n"


def test_wp_as_a_non_root_user_needs_no_flag(kube: Kube) -> None:
    manifest = job_manifest("flush", ["wp", "cache", "flush"])
    manifest["spec"]["template"]["spec"]["securityContext"] = {"runAsUser": 33}  # type: ignore[index]
    kube.batch.create_namespaced_job(NAMESPACE, manifest)
    assert "Complete" in _conditions(kube, "flush")


def test_job_pods_carry_the_real_labels_and_owner(kube: Kube) -> None:
    job = kube.batch.create_namespaced_job(NAMESPACE, job_manifest("hook", ["true"]))
    uid = job.metadata.uid
    pods = kube.core.list_namespaced_pod(NAMESPACE, label_selector=f"controller-uid={uid}").items
    assert len(pods) == 1
    labels = pods[0].metadata.labels
    assert labels["job-name"] == labels["batch.kubernetes.io/job-name"] == "hook"
    assert labels["batch.kubernetes.io/controller-uid"] == uid
    assert pods[0].metadata.name.startswith("hook-")
    assert len(pods[0].metadata.name) == len("hook-") + 5
    assert pods[0].metadata.owner_references[0].uid == uid
    assert job.spec.selector.match_labels == {"batch.kubernetes.io/controller-uid": uid}


def test_backoff_limit_gives_one_pod_per_attempt(kube: Kube) -> None:
    kube.batch.create_namespaced_job(
        NAMESPACE, job_manifest("retry", ["sh", "-c", "echo trying; exit 3"], backoffLimit=2)
    )
    pods = kube.core.list_namespaced_pod(NAMESPACE, label_selector="job-name=retry").items
    assert len(pods) == 3
    assert {p.status.phase for p in pods} == {"Failed"}
    terminated = pods[0].status.container_statuses[0].state.terminated
    assert terminated.exit_code == 3
    assert terminated.reason == "Error"
    assert kube.batch.read_namespaced_job_status("retry", NAMESPACE).status.failed == 3
    assert _log(kube, "retry") == "trying\n"


@pytest.mark.parametrize(
    ("command", "succeeded", "log"),
    [
        (["true"], True, ""),
        (["false"], False, ""),
        (["sh", "-c", "exit 0"], True, ""),
        (["sh", "-c", "exit 7"], False, ""),
        (["echo", "hello", "world"], True, "hello world\n"),
        (["sleep", "1"], True, ""),
        (["sh", "-c", "echo a && false || echo b"], True, "a\nb\n"),
        (["/usr/local/bin/unknown-tool", "--x"], True, ""),
    ],
)
def test_commands_behave_as_expected(
    kube: Kube, command: list[str], succeeded: bool, log: str
) -> None:
    kube.batch.create_namespaced_job(NAMESPACE, job_manifest("cmd", command))
    expected = "Complete" if succeeded else "Failed"
    assert expected in _conditions(kube, "cmd")
    assert _log(kube, "cmd") == log


def test_job_runs_for_job_seconds_on_the_stepped_clock(stepped: Kube) -> None:
    stepped.batch.create_namespaced_job(NAMESPACE, job_manifest("slow", ["echo", "done"]))
    running = stepped.batch.read_namespaced_job_status("slow", NAMESPACE).status
    assert running.active == 1
    assert running.start_time is not None
    stepped.emulator.clock.advance(5)
    assert "Complete" in _conditions(stepped, "slow")


def test_ttl_after_finished_deletes_the_job_and_its_pods(stepped: Kube) -> None:
    stepped.batch.create_namespaced_job(
        NAMESPACE, job_manifest("short-lived", ["true"], ttlSecondsAfterFinished=30)
    )
    stepped.emulator.clock.advance(5)
    assert "Complete" in _conditions(stepped, "short-lived")
    stepped.emulator.clock.advance(31)
    with pytest.raises(ApiException) as gone:
        stepped.batch.read_namespaced_job("short-lived", NAMESPACE)
    assert gone.value.status == 404
    assert (
        stepped.core.list_namespaced_pod(NAMESPACE, label_selector="job-name=short-lived").items
        == []
    )


def test_fault_makes_a_job_fail_or_hang(kube: Kube) -> None:
    kube.emulator.faults.fail_jobs("migrate", mode="fail")
    kube.emulator.faults.fail_jobs("warm", mode="hang")
    kube.batch.create_namespaced_job(NAMESPACE, job_manifest("migrate-db", ["true"]))
    kube.batch.create_namespaced_job(NAMESPACE, job_manifest("x", ["sh", "-c", "warm cache"]))
    assert "Failed" in _conditions(kube, "migrate-db")
    hanging = kube.batch.read_namespaced_job_status("x", NAMESPACE).status
    assert hanging.active == 1
    assert not hanging.conditions


def test_log_tail_lines_and_container_errors(kube: Kube) -> None:
    kube.batch.create_namespaced_job(
        NAMESPACE, job_manifest("lines", ["sh", "-c", "echo one; echo two; echo three"])
    )
    assert _log(kube, "lines", tail_lines=2) == "two\nthree\n"
    pod = kube.core.list_namespaced_pod(NAMESPACE, label_selector="job-name=lines").items[0]
    with pytest.raises(ApiException) as wrong:
        kube.core.read_namespaced_pod_log(pod.metadata.name, NAMESPACE, container="nope")
    assert wrong.value.status == 400


def test_follow_streams_until_the_pod_finishes(stepped: Kube) -> None:
    import threading

    stepped.batch.create_namespaced_job(NAMESPACE, job_manifest("follow", ["echo", "hi"]))
    pod = stepped.core.list_namespaced_pod(NAMESPACE, label_selector="job-name=follow").items[0]
    stepped.emulator.clock.advance(1)  # running, not finished
    timer = threading.Timer(0.2, stepped.emulator.clock.advance, args=(10,))
    timer.start()
    response = stepped.core.read_namespaced_pod_log(
        pod.metadata.name, NAMESPACE, follow=True, _preload_content=False
    )
    assert response.data.decode() == "hi\n"
    timer.join()


def test_an_injected_failure_logs_a_failure_not_the_commands_success(kube: Kube) -> None:
    # GIVEN an injected failure for a hook that would otherwise flush the cache
    kube.emulator.faults.fail_jobs("flush", mode="fail")
    command = ["wp", "cache", "flush", "--allow-root"]
    # WHEN the hook runs
    kube.batch.create_namespaced_job(NAMESPACE, job_manifest("hook-flush", command))
    # THEN the Job failed and its log says so instead of claiming the flush worked
    assert "Failed" in _conditions(kube, "hook-flush")
    log = _log(kube, "hook-flush")
    assert "Success" not in log
    assert log == "Error: injected failure (emulator fault)\n"
    terminated = (
        kube.core.list_namespaced_pod(NAMESPACE, label_selector="job-name=hook-flush")
        .items[0]
        .status.container_statuses[0]
        .state.terminated
    )
    assert terminated.exit_code == 1


def test_without_the_fault_the_same_hook_logs_its_success(kube: Kube) -> None:
    command = ["wp", "cache", "flush", "--allow-root"]
    kube.batch.create_namespaced_job(NAMESPACE, job_manifest("hook-flush", command))
    assert "Complete" in _conditions(kube, "hook-flush")
    assert _log(kube, "hook-flush") == "Success: The cache was flushed.\n"


def test_a_counted_job_fault_fails_only_the_next_run(kube: Kube) -> None:
    # GIVEN a failure injected for one run
    kube.emulator.faults.fail_jobs("flush", count=1)
    # WHEN the hook runs twice
    kube.batch.create_namespaced_job(NAMESPACE, job_manifest("flush-1", ["true"]))
    kube.batch.create_namespaced_job(NAMESPACE, job_manifest("flush-2", ["true"]))
    # THEN only the first failed
    assert "Failed" in _conditions(kube, "flush-1")
    assert "Complete" in _conditions(kube, "flush-2")
