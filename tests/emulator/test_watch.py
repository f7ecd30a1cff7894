"""Watch streams through ``kubernetes.watch.Watch``: initial state, resume, expiry, selectors."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from kubernetes import watch
from kubernetes.client.rest import ApiException

from local.cluster import ClusterEmulator
from tests.emulator.conftest import NAMESPACE, Kube, connect, http


def _collect(kube: Kube, stop_after: int, **params: Any) -> list[tuple[str, str]]:
    seen: list[tuple[str, str]] = []
    stream = watch.Watch()
    for event in stream.stream(
        kube.core.list_namespaced_config_map, NAMESPACE, timeout_seconds=5, **params
    ):
        seen.append((event["type"], event["object"].metadata.name))
        if len(seen) >= stop_after:
            stream.stop()
    return seen


def test_watch_from_a_list_resource_version_sees_later_changes_only(kube: Kube) -> None:
    # GIVEN a list and its resourceVersion
    listed = kube.core.list_namespaced_config_map(NAMESPACE)
    # WHEN objects change after it
    kube.core.create_namespaced_config_map(NAMESPACE, {"metadata": {"name": "later"}})
    kube.core.patch_namespaced_config_map("later", NAMESPACE, {"data": {"k": "v"}})
    kube.core.delete_namespaced_config_map("later", NAMESPACE)
    # THEN a watch from that version replays exactly those changes, in order
    events = _collect(kube, 3, resource_version=listed.metadata.resource_version)
    assert events == [("ADDED", "later"), ("MODIFIED", "later"), ("DELETED", "later")]


def test_watch_without_version_starts_with_the_current_state(kube: Kube) -> None:
    assert _collect(kube, 1) == [("ADDED", "canary-env")]


def test_watch_sees_a_change_made_while_it_waits(kube: Kube) -> None:
    # GIVEN a watch that has caught up
    timer = threading.Timer(
        0.2,
        kube.emulator.mutate,
        args=("configmaps", NAMESPACE, "canary-env", lambda obj: obj["data"].update(x="1")),
    )
    timer.start()
    # WHEN someone changes the object, THEN the watcher is told
    assert _collect(kube, 2) == [("ADDED", "canary-env"), ("MODIFIED", "canary-env")]
    timer.join()


def test_watch_with_a_label_selector_filters_events(kube: Kube) -> None:
    listed = kube.core.list_namespaced_pod(NAMESPACE)
    kube.apps.patch_namespaced_deployment_scale(
        "blue-deployment", NAMESPACE, {"spec": {"replicas": 3}}
    )
    kube.apps.patch_namespaced_deployment_scale(
        "green-deployment", NAMESPACE, {"spec": {"replicas": 3}}
    )
    stream = watch.Watch()
    apps = set()
    for event in stream.stream(
        kube.core.list_namespaced_pod,
        NAMESPACE,
        label_selector="app=blue",
        resource_version=listed.metadata.resource_version,
        timeout_seconds=1,
    ):
        apps.add(event["object"].metadata.labels["app"])
    assert apps == {"blue"}


def test_watch_from_an_expired_version_is_410_gone() -> None:
    # GIVEN more writes than the event history keeps
    with ClusterEmulator(watch_history=50) as emulator:
        kube = connect(emulator)
        first = kube.core.read_namespaced_config_map("canary-env", NAMESPACE)
        for index in range(60):
            emulator.mutate(
                "configmaps",
                NAMESPACE,
                "canary-env",
                lambda obj, i=index: obj["data"].update(n=str(i)),
            )
        # WHEN a watch resumes from the old version
        with pytest.raises(ApiException) as expired:
            _collect(kube, 1, resource_version=first.metadata.resource_version)
        # THEN the client sees the 410 it knows how to handle (relist), and a recent
        # version still works
        assert expired.value.status == 410
        recent = kube.core.list_namespaced_config_map(NAMESPACE).metadata.resource_version
        kube.core.patch_namespaced_config_map("canary-env", NAMESPACE, {"data": {"z": "1"}})
        assert _collect(kube, 1, resource_version=recent) == [("MODIFIED", "canary-env")]


def test_watch_stream_is_chunked_json_lines(kube: Kube) -> None:
    status, headers, body = http(
        kube.emulator,
        "GET",
        f"/api/v1/namespaces/{NAMESPACE}/configmaps?watch=true&timeoutSeconds=1",
    )
    assert status == 200
    assert headers["Transfer-Encoding"] == "chunked"
    assert body.decode().splitlines()[0].startswith('{"type":"ADDED","object":{')


def test_leaving_a_label_selector_is_a_deleted_event_for_the_watcher(kube: Kube) -> None:
    # GIVEN a watch on configmaps labelled stage=canary, from now
    listed = kube.core.list_namespaced_config_map(NAMESPACE)
    kube.core.patch_namespaced_config_map(
        "canary-env", NAMESPACE, {"metadata": {"labels": {"stage": "canary"}}}
    )
    kube.core.patch_namespaced_config_map(
        "canary-env", NAMESPACE, {"metadata": {"labels": {"stage": "done"}}}
    )
    # WHEN the object gets the label and then loses it
    events = _collect(
        kube, 2, resource_version=listed.metadata.resource_version, label_selector="stage=canary"
    )
    # THEN the watcher sees it arrive and leave
    assert events == [("ADDED", "canary-env"), ("DELETED", "canary-env")]
