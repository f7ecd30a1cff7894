"""One clock for every timestamp: kubectl's own ages and the server's agree."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from local.cluster import Clock, ClusterEmulator
from local.cluster.timefmt import parse
from tests.emulator.conftest import NAMESPACE, Kube, connect, image, job_manifest
from tests.emulator.test_kubectl import kubectl

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


def _roll_out(emulator: ClusterEmulator, name: str, digest_char: str) -> None:
    emulator.mutate(
        "deployments",
        NAMESPACE,
        name,
        lambda d: d["spec"]["template"]["spec"]["containers"][0].update(image=image(digest_char)),
    )
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        found = emulator.get("deployments", NAMESPACE, name)
        assert found is not None
        conditions = {c["type"]: c for c in found["status"].get("conditions", [])}
        if (
            found["status"].get("updatedReplicas") == found["spec"]["replicas"]
            and found["status"].get("availableReplicas") == found["spec"]["replicas"]
            and conditions["Progressing"]["reason"] == "NewReplicaSetAvailable"
        ):
            return
        time.sleep(0.02)
    raise AssertionError(f"{name} did not roll out")


@pytest.fixture
def fast() -> Iterator[ClusterEmulator]:
    """A cluster whose controllers run 1000 times faster than real time."""
    with ClusterEmulator(clock=Clock.scaled(1000), rollout_seconds=60, job_seconds=30) as emulator:
        yield emulator


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
    time.sleep(0.1)
    # THEN every timestamp, seeded or written later, lies between the seed and now
    now = time.time()
    kinds = ("deployments", "replicasets", "pods", "events", "jobs", "configmaps", "services")
    stamps = [(kind, key, at) for kind in kinds for key, at in _stamps(fast.list(kind, NAMESPACE))]
    assert {kind for kind, _, _ in stamps} == set(kinds)
    future = [(kind, key) for kind, key, at in stamps if at > now + 1]
    assert future == []
    assert min(at for _, _, at in stamps) >= int(started) - 5


def test_kubectl_ages_agree_with_the_real_time(fast: ClusterEmulator) -> None:
    # GIVEN a rollout on a fast clock, a moment after start-up
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


def test_a_job_that_finished_in_time_is_not_failed_by_a_late_look() -> None:
    # GIVEN a fast clock and a hook Job that finishes long before its deadline
    with ClusterEmulator(clock=Clock.scaled(100), job_seconds=1) as emulator:
        manifest = job_manifest("hook", ["true"], activeDeadlineSeconds=50)
        manifest["metadata"] = {"name": "hook", "namespace": NAMESPACE}
        emulator.apply(manifest)
        # WHEN nobody looks at the cluster until after the deadline
        time.sleep(0.8)
        job = emulator.get("jobs", NAMESPACE, "hook")
    # THEN the Job completed: the pod's end, not the moment of looking, decides
    assert job is not None
    assert [c["type"] for c in job["status"]["conditions"] if c["status"] == "True"] == [
        "SuccessCriteriaMet",
        "Complete",
    ]
