"""The Deployment controller: new ReplicaSets, stalls, recovery, scale, history, Events.

Every test runs on the emulator and on the real control plane (``kube``); the
emulator's instant clock ends a rollout before the next read, the real one
within seconds. How a rollout moves on a clock a test steps is in ``test_clock``.
"""

from __future__ import annotations

from typing import Any

from tests.emulator.conftest import GREEN_IMAGE, Kube, image

REVISION = "deployment.kubernetes.io/revision"
SHORT_DEADLINE = 4
"""Seconds of progressDeadlineSeconds for a rollout meant to stall: the real controller's
deadline runs in real time."""


def _set_image(kube: Kube, name: str, new_image: str) -> None:
    kube.apps.patch_namespaced_deployment(
        name,
        kube.namespace,
        {"spec": {"template": {"spec": {"containers": [{"name": "web", "image": new_image}]}}}},
    )


def _status(kube: Kube, name: str = "green-deployment") -> dict[str, Any]:
    status: dict[str, Any] = kube.stored("deployments", name).get("status", {})
    return status


def _condition(status: dict[str, Any], kind: str) -> dict[str, Any]:
    return next((c for c in status.get("conditions", []) if c["type"] == kind), {})


def _rolled_out(kube: Kube, name: str = "green-deployment") -> dict[str, Any] | None:
    """The Deployment's status once its newest template serves every replica, else None."""
    found = kube.stored("deployments", name)
    status = found.get("status", {})
    replicas = found["spec"]["replicas"]
    done = (
        status.get("observedGeneration", 0) >= found["metadata"]["generation"]
        and status.get("updatedReplicas") == status.get("availableReplicas") == replicas
        and status.get("replicas") == replicas
        and _condition(status, "Progressing").get("reason") == "NewReplicaSetAvailable"
    )
    return status if done else None


def _pods(kube: Kube, app: str) -> list[Any]:
    return list(kube.core.list_namespaced_pod(kube.namespace, label_selector=f"app={app}").items)


def _replica_sets(kube: Kube, app: str) -> list[Any]:
    return list(
        kube.apps.list_namespaced_replica_set(kube.namespace, label_selector=f"app={app}").items
    )


def test_a_rollout_ends_on_a_new_replica_set_named_after_its_template(kube: Kube) -> None:
    # WHEN the image changes
    _set_image(kube, "green-deployment", image("a"))
    # THEN the rollout finishes on a new ReplicaSet, the old one kept at 0 for history
    status = kube.eventually("the rollout finished", lambda: _rolled_out(kube))
    assert status["updatedReplicas"] == status["availableReplicas"] == status["replicas"] == 2
    by_revision = {rs.metadata.annotations[REVISION]: rs for rs in _replica_sets(kube, "green")}
    assert by_revision["1"].spec.replicas == 0
    new = by_revision["2"]
    assert new.spec.replicas == 2
    assert new.metadata.name == f"green-deployment-{new.metadata.labels['pod-template-hash']}"

    # AND its pods are named after it and owned by it
    def owned() -> list[Any]:
        found = _pods(kube, "green")
        return (
            found
            if all(p.metadata.owner_references[0].name == new.metadata.name for p in found)
            else []
        )

    pods = kube.eventually("only the new ReplicaSet's pods", owned)
    assert len(pods) == 2
    assert all(p.metadata.name.startswith(new.metadata.name + "-") for p in pods)
    assert all(len(p.metadata.name) == len(new.metadata.name) + 6 for p in pods)


def test_a_broken_image_stalls_at_the_progress_deadline_and_its_rollback_recovers(
    kube: Kube,
) -> None:
    # GIVEN an image whose container crashes
    broken = image("d")
    kube.backend.mark_image(broken.split("@")[1], "CrashLoopBackOff")
    # WHEN it is rolled out with a progress deadline of a few seconds
    kube.apps.patch_namespaced_deployment(
        "green-deployment",
        kube.namespace,
        {
            "spec": {
                "progressDeadlineSeconds": SHORT_DEADLINE,
                "template": {"spec": {"containers": [{"name": "web", "image": broken}]}},
            }
        },
    )
    # THEN the rollout stalls at the progress deadline with the controller's verdict
    stalled = kube.eventually(
        "the progress deadline exceeded",
        lambda: (
            (status := _status(kube))
            and _condition(status, "Progressing").get("reason") == "ProgressDeadlineExceeded"
            and status
        ),
        seconds=60,
    )
    progressing = _condition(stalled, "Progressing")
    assert progressing["status"] == "False"
    assert progressing["message"].startswith('ReplicaSet "green-deployment-')
    assert progressing["message"].endswith('" has timed out progressing.')
    assert _condition(stalled, "Available")["status"] == "True"
    assert stalled["availableReplicas"] == 2
    assert stalled["unavailableReplicas"] == 1

    # AND the new pod crash-loops while the old ones serve
    def restarted() -> list[Any]:
        crashing = [p for p in _pods(kube, "green") if p.spec.containers[0].image == broken]
        statuses = [s for p in crashing for s in p.status.container_statuses or []]
        return crashing if statuses and statuses[0].restart_count >= 1 else []

    assert len(kube.eventually("the new pod restarted", restarted)) == 1
    # WHEN the previous image is put back
    _set_image(kube, "green-deployment", GREEN_IMAGE)
    # THEN the old ReplicaSet comes back as revision 3 and the rollout completes
    kube.eventually("the rollback finished", lambda: _rolled_out(kube))
    deployment = kube.apps.read_namespaced_deployment("green-deployment", kube.namespace)
    assert deployment.metadata.annotations[REVISION] == "3"
    assert len(_replica_sets(kube, "green")) == 2
    kube.eventually(
        "only pods of the good image",
        lambda: {p.spec.containers[0].image for p in _pods(kube, "green")} == {GREEN_IMAGE},
    )


def test_image_pull_failure_shows_image_pull_back_off(kube: Kube) -> None:
    # GIVEN an image that cannot be pulled
    broken = image("e")
    kube.backend.mark_image(broken, "ImagePullBackOff")
    # WHEN it is rolled out
    _set_image(kube, "green-deployment", broken)

    # THEN its pod stays Pending, backing off the pull
    def pulling() -> Any:
        pods = [p for p in _pods(kube, "green") if p.spec.containers[0].image == broken]
        statuses = (pods[0].status.container_statuses or []) if pods else []
        waiting = statuses[0].state.waiting if statuses else None
        return pods[0] if waiting is not None and waiting.reason == "ImagePullBackOff" else None

    pod = kube.eventually("the pull backing off", pulling)
    assert pod.status.phase == "Pending"
    assert _status(kube)["availableReplicas"] == 2


def test_scale_subresource_changes_the_pod_count(kube: Kube) -> None:
    kube.apps.patch_namespaced_deployment_scale(
        "blue-deployment", kube.namespace, {"spec": {"replicas": 4}}
    )
    scale = kube.apps.read_namespaced_deployment_scale("blue-deployment", kube.namespace)
    assert scale.spec.replicas == 4
    assert scale.status.selector == "app=blue"
    kube.eventually("four replicas", lambda: _rolled_out(kube, "blue-deployment"))
    scale = kube.apps.read_namespaced_deployment_scale("blue-deployment", kube.namespace)
    assert scale.status.replicas == 4
    pods = _pods(kube, "blue")
    assert len(pods) == 4
    assert all(p.status.phase == "Running" for p in pods)


def test_revision_history_limit_prunes_old_replica_sets(kube: Kube) -> None:
    kube.apps.patch_namespaced_deployment(
        "blue-deployment", kube.namespace, {"spec": {"revisionHistoryLimit": 1}}
    )
    for char in "abc":
        _set_image(kube, "blue-deployment", image(char))
        kube.eventually(f"image {char} rolled out", lambda: _rolled_out(kube, "blue-deployment"))

    def revisions() -> list[str]:
        return sorted(rs.metadata.annotations[REVISION] for rs in _replica_sets(kube, "blue"))

    kube.eventually("only the last two revisions", lambda: revisions() == ["3", "4"])


def test_rollout_records_the_controllers_events(kube: Kube) -> None:
    _set_image(kube, "green-deployment", image("a"))
    kube.eventually("the rollout finished", lambda: _rolled_out(kube))

    def messages() -> list[str]:
        events = kube.core.list_namespaced_event(
            kube.namespace,
            field_selector="involvedObject.kind=Deployment,involvedObject.name=green-deployment",
        ).items
        return [e.message for e in events if e.reason == "ScalingReplicaSet"]

    def both() -> list[str] | None:
        found = messages()
        up = any(
            m.startswith("Scaled up replica set green-deployment-") and m.endswith("from 0 to 1")
            for m in found
        )
        down = any(m.startswith("Scaled down replica set green-deployment-") for m in found)
        return found if up and down else None

    kube.eventually("the scaling events", both)
