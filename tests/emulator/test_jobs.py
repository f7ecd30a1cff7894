"""The Job controller and the pods it runs: outcomes, logs, retries, TTL.

Every test runs on the emulator and on the real control plane (``scratch``):
the hooks the product runs are Jobs, and both backends run their pods by the
same conventions (``local.cluster.commands``: ``wp`` refuses to run as root
without ``--allow-root``). Jobs under an injected fault or a clock a test
moves are in ``test_faults`` and ``test_clock``.
"""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes.client.rest import ApiException

from local.cluster.commands import WP_ROOT_ERROR
from tests.emulator.conftest import Kube, job_manifest

FINISHED = ("Complete", "Failed")


def _pods(kube: Kube, job: str) -> list[Any]:
    return list(
        kube.core.list_namespaced_pod(kube.namespace, label_selector=f"job-name={job}").items
    )


def _log(kube: Kube, job: str, **params: object) -> str:
    pods = _pods(kube, job)
    response = kube.core.read_namespaced_pod_log(
        pods[-1].metadata.name, kube.namespace, _preload_content=False, **params
    )
    return str(response.data.decode())


def _conditions(kube: Kube, job: str) -> dict[str, str]:
    """The finished Job's true conditions: type -> reason."""

    def finished() -> dict[str, str] | None:
        status = kube.batch.read_namespaced_job_status(job, kube.namespace).status
        found = {c.type: c.reason for c in status.conditions or [] if c.status == "True"}
        return found if any(kind in found for kind in FINISHED) else None

    return kube.eventually(f"job {job} finished", finished)


def test_wp_as_root_fails_with_wp_clis_own_message(scratch: Kube) -> None:
    # WHEN a hook runs wp as root without --allow-root
    scratch.batch.create_namespaced_job(
        scratch.namespace, job_manifest("flush", ["wp", "cache", "flush"])
    )
    # THEN the Job fails the way the real one did, and the log says why
    assert _conditions(scratch, "flush") == {
        "FailureTarget": "BackoffLimitExceeded",
        "Failed": "BackoffLimitExceeded",
    }
    job = scratch.batch.read_namespaced_job_status("flush", scratch.namespace)
    assert job.status.failed == 1
    assert job.status.succeeded is None
    log = _log(scratch, "flush")
    assert log == WP_ROOT_ERROR
    assert log.startswith("Error: YIKES! It looks like you're running this as root.")


def test_wp_with_allow_root_succeeds(scratch: Kube) -> None:
    scratch.batch.create_namespaced_job(
        scratch.namespace, job_manifest("flush", ["wp", "cache", "flush", "--allow-root"])
    )
    assert _conditions(scratch, "flush") == {
        "SuccessCriteriaMet": "CompletionsReached",
        "Complete": "CompletionsReached",
    }
    job = scratch.batch.read_namespaced_job_status("flush", scratch.namespace)
    assert job.status.succeeded == 1
    assert job.status.active is None
    assert job.status.completion_time is not None
    assert _log(scratch, "flush") == "Success: The cache was flushed.\n"


def test_wp_as_a_non_root_user_needs_no_flag(scratch: Kube) -> None:
    manifest = job_manifest("flush", ["wp", "cache", "flush"])
    manifest["spec"]["template"]["spec"]["securityContext"] = {"runAsUser": 33}  # type: ignore[index]
    scratch.batch.create_namespaced_job(scratch.namespace, manifest)
    assert "Complete" in _conditions(scratch, "flush")


def test_job_pods_carry_the_real_labels_and_owner(scratch: Kube) -> None:
    job = scratch.batch.create_namespaced_job(scratch.namespace, job_manifest("hook", ["true"]))
    uid = job.metadata.uid
    pods = scratch.eventually(
        "the hook's pod",
        lambda: (
            scratch.core.list_namespaced_pod(
                scratch.namespace, label_selector=f"controller-uid={uid}"
            ).items
        ),
    )
    assert len(pods) == 1
    labels = pods[0].metadata.labels
    assert labels["job-name"] == labels["batch.kubernetes.io/job-name"] == "hook"
    assert labels["batch.kubernetes.io/controller-uid"] == uid
    assert pods[0].metadata.name.startswith("hook-")
    assert len(pods[0].metadata.name) == len("hook-") + 5
    assert pods[0].metadata.owner_references[0].uid == uid
    assert job.spec.selector.match_labels == {"batch.kubernetes.io/controller-uid": uid}


def test_backoff_limit_gives_one_pod_per_attempt(scratch: Kube) -> None:
    # GIVEN a Job that may be retried once
    scratch.batch.create_namespaced_job(
        scratch.namespace,
        job_manifest("retry", ["sh", "-c", "echo trying; exit 3"], backoffLimit=1),
    )
    # WHEN its command fails every time
    assert "Failed" in _conditions(scratch, "retry")
    # THEN each attempt had a pod of its own, which failed with the command's status
    pods = _pods(scratch, "retry")
    assert len(pods) == 2
    assert {p.status.phase for p in pods} == {"Failed"}
    terminated = pods[0].status.container_statuses[0].state.terminated
    assert terminated.exit_code == 3
    assert terminated.reason == "Error"
    assert scratch.batch.read_namespaced_job_status("retry", scratch.namespace).status.failed == 2
    assert _log(scratch, "retry") == "trying\n"


COMMANDS: list[tuple[list[str], bool, str]] = [
    (["true"], True, ""),
    (["false"], False, ""),
    (["sh", "-c", "exit 0"], True, ""),
    (["sh", "-c", "exit 7"], False, ""),
    (["echo", "hello", "world"], True, "hello world\n"),
    (["sleep", "1"], True, ""),
    (["sh", "-c", "echo a && false || echo b"], True, "a\nb\n"),
    (["/usr/local/bin/unknown-tool", "--x"], True, ""),
]


def test_commands_behave_as_expected(scratch: Kube) -> None:
    # GIVEN one Job per command, all started at once
    for index, (command, _, _) in enumerate(COMMANDS):
        scratch.batch.create_namespaced_job(
            scratch.namespace, job_manifest(f"cmd-{index}", command)
        )
    # WHEN they end, THEN each succeeded or failed as its command does, and logged its output
    outcomes = [
        (command, "Complete" in _conditions(scratch, f"cmd-{index}"), _log(scratch, f"cmd-{index}"))
        for index, (command, _, _) in enumerate(COMMANDS)
    ]
    assert outcomes == COMMANDS


def test_ttl_after_finished_of_zero_deletes_the_job_and_its_pods(scratch: Kube) -> None:
    # GIVEN a hook Job that may be removed as soon as it finished
    scratch.batch.create_namespaced_job(
        scratch.namespace, job_manifest("short-lived", ["true"], ttlSecondsAfterFinished=0)
    )

    # WHEN it finishes, THEN it is deleted with its pods
    def gone() -> bool:
        try:
            scratch.batch.read_namespaced_job("short-lived", scratch.namespace)
        except ApiException as error:
            return error.status == 404 and not _pods(scratch, "short-lived")
        return False

    scratch.eventually("the Job and its pods deleted", gone)


def test_log_tail_lines_and_container_errors(scratch: Kube) -> None:
    scratch.batch.create_namespaced_job(
        scratch.namespace, job_manifest("lines", ["sh", "-c", "echo one; echo two; echo three"])
    )
    assert "Complete" in _conditions(scratch, "lines")
    assert _log(scratch, "lines", tail_lines=2) == "two\nthree\n"
    pod = _pods(scratch, "lines")[0]
    with pytest.raises(ApiException) as wrong:
        scratch.core.read_namespaced_pod_log(pod.metadata.name, scratch.namespace, container="nope")
    assert wrong.value.status == 400
