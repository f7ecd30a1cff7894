"""The Deployment controller: rollouts on the emulator clock, stalls, recovery, scale."""

from __future__ import annotations

from typing import Any

from local.cluster import Clock, ClusterEmulator
from tests.emulator.conftest import GREEN_IMAGE, NAMESPACE, Kube, image


def _set_image(kube: Kube, name: str, new_image: str) -> None:
    kube.apps.patch_namespaced_deployment(
        name,
        NAMESPACE,
        {"spec": {"template": {"spec": {"containers": [{"name": "web", "image": new_image}]}}}},
    )


def _status(kube: Kube, name: str = "green-deployment") -> dict[str, Any]:
    found = kube.emulator.get("deployments", NAMESPACE, name)
    assert found is not None
    return found["status"]


def _condition(status: dict[str, Any], kind: str) -> dict[str, Any]:
    return next(c for c in status["conditions"] if c["type"] == kind)


def test_instant_rollout_converges_before_the_next_read(kube: Kube) -> None:
    # WHEN the image changes on an instant clock
    _set_image(kube, "green-deployment", image("a"))
    # THEN the very next read sees a finished rollout on a new ReplicaSet
    status = _status(kube)
    assert status["updatedReplicas"] == status["availableReplicas"] == status["replicas"] == 2
    assert _condition(status, "Progressing")["reason"] == "NewReplicaSetAvailable"
    replica_sets = kube.apps.list_namespaced_replica_set(NAMESPACE, label_selector="app=green")
    by_revision = {
        rs.metadata.annotations["deployment.kubernetes.io/revision"]: rs
        for rs in replica_sets.items
    }
    assert by_revision["1"].spec.replicas == 0  # kept for history
    new = by_revision["2"]
    assert new.spec.replicas == 2
    assert new.metadata.name == f"green-deployment-{new.metadata.labels['pod-template-hash']}"
    pods = kube.core.list_namespaced_pod(NAMESPACE, label_selector="app=green").items
    assert {p.metadata.owner_references[0].name for p in pods} == {new.metadata.name}
    assert all(p.metadata.name.startswith(new.metadata.name + "-") for p in pods)
    assert all(len(p.metadata.name) == len(new.metadata.name) + 6 for p in pods)


def test_rollout_is_gradual_on_a_stepped_clock(stepped: Kube) -> None:
    # GIVEN a 20-second rollout of 2 replicas with 25% surge / 25% unavailable
    _set_image(stepped, "green-deployment", image("a"))
    # WHEN no time has passed
    status = _status(stepped)
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
    halfway = _status(stepped)
    stepped.emulator.clock.advance(10)
    done = _status(stepped)
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
    _set_image(stepped, "green-deployment", broken)
    stepped.emulator.clock.advance(599)
    before = _status(stepped)
    # THEN it is still progressing with the old pods available
    assert _condition(before, "Progressing")["status"] == "True"
    assert before["availableReplicas"] == 2
    # WHEN the deadline passes
    stepped.emulator.clock.advance(2)
    after = _status(stepped)
    progressing = _condition(after, "Progressing")
    # THEN the real controller's verdict, and the crashing pod keeps restarting
    assert progressing["status"] == "False"
    assert progressing["reason"] == "ProgressDeadlineExceeded"
    assert progressing["message"].endswith("has timed out progressing.")
    assert progressing["message"].startswith('ReplicaSet "green-deployment-')
    assert _condition(after, "Available")["status"] == "True"
    assert after["unavailableReplicas"] == 1
    crashing = [
        p
        for p in stepped.core.list_namespaced_pod(NAMESPACE, label_selector="app=green").items
        if p.status.container_statuses[0].state.waiting is not None
    ]
    assert len(crashing) == 1
    state = crashing[0].status.container_statuses[0]
    assert state.state.waiting.reason == "CrashLoopBackOff"
    assert state.restart_count > 3


def test_image_pull_failure_shows_image_pull_back_off(kube: Kube) -> None:
    broken = image("e")
    kube.emulator.faults.break_image(broken, mode="ImagePullBackOff")
    _set_image(kube, "green-deployment", broken)
    pods = kube.core.list_namespaced_pod(NAMESPACE, label_selector="app=green").items
    pulling = [p for p in pods if p.spec.containers[0].image == broken]
    assert pulling[0].status.phase == "Pending"
    assert pulling[0].status.container_statuses[0].state.waiting.reason == "ImagePullBackOff"
    assert _condition(_status(kube), "Progressing")["reason"] == "ProgressDeadlineExceeded"


def test_rolling_back_to_a_good_image_recovers(kube: Kube) -> None:
    # GIVEN a stalled rollout of a broken image
    broken = image("f")
    kube.emulator.faults.break_image(broken)
    _set_image(kube, "green-deployment", broken)
    assert _condition(_status(kube), "Progressing")["reason"] == "ProgressDeadlineExceeded"
    # WHEN the previous image is put back
    _set_image(kube, "green-deployment", GREEN_IMAGE)
    # THEN the old ReplicaSet comes back as revision 3 and the rollout completes
    status = _status(kube)
    assert _condition(status, "Progressing")["reason"] == "NewReplicaSetAvailable"
    assert status["availableReplicas"] == status["updatedReplicas"] == 2
    deployment = kube.apps.read_namespaced_deployment("green-deployment", NAMESPACE)
    assert deployment.metadata.annotations["deployment.kubernetes.io/revision"] == "3"
    replica_sets = kube.apps.list_namespaced_replica_set(NAMESPACE, label_selector="app=green")
    assert len(replica_sets.items) == 2
    pods = kube.core.list_namespaced_pod(NAMESPACE, label_selector="app=green").items
    assert {p.spec.containers[0].image for p in pods} == {GREEN_IMAGE}


def test_scale_subresource_changes_the_pod_count(kube: Kube) -> None:
    kube.apps.patch_namespaced_deployment_scale(
        "blue-deployment", NAMESPACE, {"spec": {"replicas": 4}}
    )
    scale = kube.apps.read_namespaced_deployment_scale("blue-deployment", NAMESPACE)
    assert scale.spec.replicas == 4
    assert scale.status.replicas == 4
    assert scale.status.selector == "app=blue"
    pods = kube.core.list_namespaced_pod(NAMESPACE, label_selector="app=blue").items
    assert len(pods) == 4
    assert all(p.status.phase == "Running" for p in pods)


def test_revision_history_limit_prunes_old_replica_sets(kube: Kube) -> None:
    kube.apps.patch_namespaced_deployment(
        "blue-deployment", NAMESPACE, {"spec": {"revisionHistoryLimit": 1}}
    )
    for char in "abc":
        _set_image(kube, "blue-deployment", image(char))
    replica_sets = kube.apps.list_namespaced_replica_set(NAMESPACE, label_selector="app=blue")
    revisions = sorted(
        rs.metadata.annotations["deployment.kubernetes.io/revision"] for rs in replica_sets.items
    )
    assert revisions == ["3", "4"]


def test_scaled_clock_rolls_out_in_real_time() -> None:
    # GIVEN a clock 100 times faster than real time and a 20-second rollout
    with ClusterEmulator(clock=Clock.scaled(100), rollout_seconds=20) as emulator:
        emulator.mutate(
            "deployments",
            NAMESPACE,
            "green-deployment",
            lambda d: d["spec"]["template"]["spec"]["containers"][0].update(image=image("a")),
        )
        # WHEN about 0.3 real seconds pass
        import time

        deadline = time.monotonic() + 2
        status: dict[str, Any] = {}
        while time.monotonic() < deadline:
            found = emulator.get("deployments", NAMESPACE, "green-deployment")
            assert found is not None
            status = found["status"]
            if _condition(status, "Progressing")["reason"] == "NewReplicaSetAvailable":
                break
            time.sleep(0.05)
        # THEN the rollout finished
        assert _condition(status, "Progressing")["reason"] == "NewReplicaSetAvailable"


def test_rollout_records_the_controllers_events(kube: Kube) -> None:
    _set_image(kube, "green-deployment", image("a"))
    events = kube.core.list_namespaced_event(
        NAMESPACE,
        field_selector="involvedObject.kind=Deployment,involvedObject.name=green-deployment",
    ).items
    messages = [e.message for e in events if e.reason == "ScalingReplicaSet"]
    assert any(
        m.startswith("Scaled up replica set green-deployment-") and m.endswith("from 0 to 1")
        for m in messages
    )
    assert any(m.startswith("Scaled down replica set green-deployment-") for m in messages)
