"""The emulator's clock: instant, stepped by a test, or scaled; one clock for every timestamp.

These tests run on the emulator alone: a real control plane's time passes by
itself and cannot be stepped, frozen or sped up. What a rollout or a Job ends
as is checked on both backends in ``test_rollouts`` and ``test_jobs``; here is
*when* it happens on each kind of clock, and that kubectl's own ages and the
server's agree on a fast clock.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes.client.rest import ApiException

from local.cluster import Clock, ClusterEmulator
from local.cluster.timefmt import parse
from tests.emulator.conftest import NAMESPACE, Kube, connect, image, job_manifest, kubectl

_STAMP_KEYS = (
    "creationTimestamp",
    "lastUpdateTime",
    "lastTransitionTime",
    "firstTimestamp",
    "lastTimestamp",
    "startTime",
    "completionTime",
    "startedAt",
    "finishedAt",
)


def _stamps(node: Any) -> Iterator[tuple[str, float]]:
    """Every timestamp the emulator wrote anywhere in an object."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key in _STAMP_KEYS and isinstance(value, str):
                parsed = parse(value)
                assert parsed is not None, f"{key}: {value!r} is not a timestamp"
                yield key, parsed
            else:
                yield from _stamps(value)
    elif isinstance(node, list):
        for item in node:
            yield from _stamps(item)


def _until(what: str, check: Any, seconds: float = 5.0) -> Any:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"{what}: not so after {seconds}s")


def _deployment_status(emulator: ClusterEmulator, name: str = "green-deployment") -> dict[str, Any]:
    found = emulator.get("deployments", NAMESPACE, name)
    assert found is not None
    status: dict[str, Any] = found["status"]
    return status


def _condition(status: dict[str, Any], kind: str) -> dict[str, Any]:
    return next(c for c in status["conditions"] if c["type"] == kind)


def _set_image(emulator: ClusterEmulator, name: str, new_image: str) -> None:
    emulator.mutate(
        "deployments",
        NAMESPACE,
        name,
        lambda d: d["spec"]["template"]["spec"]["containers"][0].update(image=new_image),
    )


def _roll_out(emulator: ClusterEmulator, name: str, digest_char: str) -> None:
    _set_image(emulator, name, image(digest_char))

    def done() -> bool:
        status = _deployment_status(emulator, name)
        return bool(
            status.get("updatedReplicas") == status.get("replicas")
            and status.get("availableReplicas") == status.get("replicas")
            and _condition(status, "Progressing")["reason"] == "NewReplicaSetAvailable"
        )

    _until(f"{name} rolled out", done)


def _job_conditions(kube: Kube, job: str) -> dict[str, str]:
    status = kube.batch.read_namespaced_job_status(job, NAMESPACE).status
    return {c.type: c.reason for c in status.conditions or []}


@pytest.fixture
def fast() -> Iterator[ClusterEmulator]:
    """A cluster whose controllers run 1000 times faster than real time."""
    with ClusterEmulator(clock=Clock.scaled(1000), rollout_seconds=60, job_seconds=30) as emulator:
        yield emulator


# the scaled clock ------------------------------------------------------------------


def test_scaled_clock_reads_the_real_time_and_shortens_controller_work() -> None:
    # GIVEN a clock sixty times faster than real time
    before = time.time()
    clock = Clock.scaled(60)
    # THEN its timestamps are real time, and a minute of controller work takes a second
    assert before - 0.01 <= clock.now() <= time.time() + 0.01
    assert clock.duration(60) == pytest.approx(1.0)
    # AND advancing it still moves its time forward
    clock.advance(30)
    assert clock.now() == pytest.approx(time.time() + 30, abs=0.1)


def test_a_fast_clock_writes_no_timestamp_from_the_future(fast: ClusterEmulator) -> None:
    # GIVEN a cluster seeded at start-up on a fast clock
    started = time.time()
    # WHEN a rollout (a minute of controller time) and a hook Job run
    _roll_out(fast, "green-deployment", "c")
    job = job_manifest("flush", ["echo", "flushed"])
    job["metadata"] = {"name": "flush", "namespace": NAMESPACE}
    fast.apply(job)

    def complete() -> bool:
        found = fast.get("jobs", NAMESPACE, "flush") or {}
        return bool(found.get("status", {}).get("completionTime"))

    _until("the Job complete", complete)
    # THEN every timestamp, seeded or written later, lies between the seed and now
    now = time.time()
    kinds = ("deployments", "replicasets", "pods", "events", "jobs", "configmaps", "services")
    stamps = [(kind, key, at) for kind in kinds for key, at in _stamps(fast.list(kind, NAMESPACE))]
    assert {kind for kind, _, _ in stamps} == set(kinds)
    future = [(kind, key) for kind, key, at in stamps if at > now + 1]
    assert future == []
    assert min(at for _, _, at in stamps) >= int(started) - 5


def test_kubectl_ages_agree_with_the_real_time(fast: ClusterEmulator) -> None:
    # GIVEN a rollout on a fast clock, and real time passing after it (25 minutes of
    # controller time: a clock running ahead of the real one would show)
    _roll_out(fast, "green-deployment", "d")
    time.sleep(1.5)
    # WHEN kubectl describes the Deployment (ages computed by kubectl) and lists it
    described = kubectl(fast.url, "describe", "deployment", "green-deployment").stdout
    listed = kubectl(fast.url, "get", "deployment", "green-deployment", "--no-headers").stdout
    # THEN no event is dated in the future, and the server's AGE is seconds, not hours
    assert "ScalingReplicaSet" in described
    assert "<invalid>" not in described
    age = listed.split()[-1]
    assert age.endswith("s"), listed
    assert int(age[:-1]) < 60, listed


def test_a_job_that_finished_in_time_is_not_failed_by_a_late_look() -> None:
    # GIVEN a fast clock and a hook Job that finishes long before its deadline
    with ClusterEmulator(clock=Clock.scaled(100), job_seconds=1) as emulator:
        manifest = job_manifest("hook", ["true"], activeDeadlineSeconds=50)
        manifest["metadata"] = {"name": "hook", "namespace": NAMESPACE}
        emulator.apply(manifest)
        # (50 seconds of the Job's time are 0.5 real seconds on this clock)
        past_deadline = time.monotonic() + emulator.clock.duration(50 + 10)
        # WHEN nobody looks at the cluster until the deadline has passed
        _until("the deadline passed", lambda: time.monotonic() > past_deadline)
        job = emulator.get("jobs", NAMESPACE, "hook")
    # THEN the Job completed: the pod's end, not the moment of looking, decides
    assert job is not None
    assert [c["type"] for c in job["status"]["conditions"] if c["status"] == "True"] == [
        "SuccessCriteriaMet",
        "Complete",
    ]


def test_scaled_clock_rolls_out_in_real_time() -> None:
    # GIVEN a clock 100 times faster than real time and a 20-second rollout
    with ClusterEmulator(clock=Clock.scaled(100), rollout_seconds=20) as emulator:
        # WHEN the image changes
        _set_image(emulator, "green-deployment", image("a"))
        # THEN the rollout is over within a fraction of a real second or two
        _until(
            "the rollout finished",
            lambda: (
                _condition(_deployment_status(emulator), "Progressing")["reason"]
                == "NewReplicaSetAvailable"
            ),
            seconds=2,
        )


# the stepped clock -----------------------------------------------------------------


def test_job_times_and_conditions_come_from_the_clock() -> None:
    # GIVEN a stepped clock moved far from the real time
    with ClusterEmulator(clock=Clock.stepped(), job_seconds=5) as emulator:
        kube: Kube = connect(emulator)
        emulator.clock.advance(10_000)
        start = emulator.clock.now()
        # WHEN a Job runs to completion
        kube.batch.create_namespaced_job(NAMESPACE, job_manifest("timed", ["true"]))
        emulator.clock.advance(6)
        job = emulator.get("jobs", NAMESPACE, "timed")
        kube.api.close()
    # THEN its start, completion and condition times are the clock's, not the wall clock's
    assert job is not None
    assert parse(job["status"]["startTime"]) == int(start)
    assert parse(job["status"]["completionTime"]) == int(start + 6)
    complete = next(c for c in job["status"]["conditions"] if c["type"] == "Complete")
    assert parse(complete["lastTransitionTime"]) == int(start + 6)
    assert parse(job["metadata"]["creationTimestamp"]) == int(start)


def test_job_runs_for_job_seconds_on_the_stepped_clock(stepped: Kube) -> None:
    stepped.batch.create_namespaced_job(NAMESPACE, job_manifest("slow", ["echo", "done"]))
    running = stepped.batch.read_namespaced_job_status("slow", NAMESPACE).status
    assert running.active == 1
    assert running.start_time is not None
    stepped.emulator.clock.advance(5)
    assert "Complete" in _job_conditions(stepped, "slow")


def test_ttl_after_finished_counts_from_the_end_on_the_stepped_clock(stepped: Kube) -> None:
    stepped.batch.create_namespaced_job(
        NAMESPACE, job_manifest("short-lived", ["true"], ttlSecondsAfterFinished=30)
    )
    stepped.emulator.clock.advance(5)
    assert "Complete" in _job_conditions(stepped, "short-lived")
    stepped.emulator.clock.advance(29)
    assert stepped.batch.read_namespaced_job("short-lived", NAMESPACE).metadata.name
    stepped.emulator.clock.advance(2)
    with pytest.raises(ApiException) as gone:
        stepped.batch.read_namespaced_job("short-lived", NAMESPACE)
    assert gone.value.status == 404
    assert (
        stepped.core.list_namespaced_pod(NAMESPACE, label_selector="job-name=short-lived").items
        == []
    )


def test_follow_streams_until_the_pod_finishes(stepped: Kube) -> None:
    # GIVEN a hook pod that is running, not finished
    stepped.batch.create_namespaced_job(NAMESPACE, job_manifest("follow", ["echo", "hi"]))
    pod = stepped.core.list_namespaced_pod(NAMESPACE, label_selector="job-name=follow").items[0]
    stepped.emulator.clock.advance(1)
    # WHEN its log is followed, and the pod finishes while the stream is open
    before = len(stepped.emulator.requests)

    def finish_once_following() -> None:
        _until("the follow request", lambda: len(stepped.emulator.requests) > before)
        stepped.emulator.clock.advance(10)

    finisher = threading.Thread(target=finish_once_following)
    finisher.start()
    response = stepped.core.read_namespaced_pod_log(
        pod.metadata.name, NAMESPACE, follow=True, _preload_content=False
    )
    # THEN the stream ends with the whole log
    assert response.data.decode() == "hi\n"
    finisher.join()


def test_rollout_is_gradual_on_a_stepped_clock(stepped: Kube) -> None:
    # GIVEN a 20-second rollout of 2 replicas with 25% surge / 25% unavailable
    _set_image(stepped.emulator, "green-deployment", image("a"))
    # WHEN no time has passed
    status = _deployment_status(stepped.emulator)
    # THEN one surge pod exists, the old pods keep serving, and the rollout is progressing
    assert status["updatedReplicas"] == 1
    assert status["availableReplicas"] == 2
    assert status["replicas"] == 3
    assert _condition(status, "Progressing")["reason"] in {
        "NewReplicaSetCreated",
        "ReplicaSetUpdated",
    }
    # WHEN half the rollout time passes, then all of it
    stepped.emulator.clock.advance(10)
    halfway = _deployment_status(stepped.emulator)
    stepped.emulator.clock.advance(10)
    done = _deployment_status(stepped.emulator)
    # THEN the new pods replaced the old ones one by one
    assert halfway["updatedReplicas"] == 2
    assert done["updatedReplicas"] == done["availableReplicas"] == 2
    assert "unavailableReplicas" not in done
    assert _condition(done, "Progressing")["reason"] == "NewReplicaSetAvailable"
    assert _condition(done, "Available")["status"] == "True"


def test_broken_image_stalls_until_the_progress_deadline(stepped: Kube) -> None:
    # GIVEN an image that crashes
    broken = image("d")
    stepped.emulator.faults.break_image(broken.split("@")[1], mode="CrashLoopBackOff")
    # WHEN it is rolled out and 599 seconds pass
    _set_image(stepped.emulator, "green-deployment", broken)
    stepped.emulator.clock.advance(599)
    before = _deployment_status(stepped.emulator)
    # THEN it is still progressing with the old pods available
    assert _condition(before, "Progressing")["status"] == "True"
    assert before["availableReplicas"] == 2
    # WHEN the deadline passes
    stepped.emulator.clock.advance(2)
    after = _deployment_status(stepped.emulator)
    # THEN the controller's verdict, and the crashing pod has kept restarting
    assert _condition(after, "Progressing")["reason"] == "ProgressDeadlineExceeded"
    crashing = [
        p
        for p in stepped.core.list_namespaced_pod(NAMESPACE, label_selector="app=green").items
        if p.status.container_statuses[0].state.waiting is not None
    ]
    assert len(crashing) == 1
    state = crashing[0].status.container_statuses[0]
    assert state.state.waiting.reason == "CrashLoopBackOff"
    assert state.restart_count > 3
