"""Watch streams through ``kubernetes.watch.Watch``: initial state, resume, expiry, selectors.

Every test runs on the emulator and on the real control plane (``kube``,
``seeded`` or ``scratch``: see ``conftest``),
except the one that shrinks the emulator's event history to make a version
expire (a real API server's history is its own), which runs on the emulator.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from kubernetes import watch
from kubernetes.client.rest import ApiException

from local.cluster import ClusterEmulator
from tests.emulator.conftest import Kube, configmap, connect

Seen = list[tuple[str, str]]


def _collect(
    kube: Kube,
    until: Callable[[Seen], bool],
    *,
    each: Callable[[Seen], None] | None = None,
    list_call: Callable[..., Any] | None = None,
    seconds: int = 20,
    **params: Any,
) -> Seen:
    """(type, name) of the events of a configmap watch, until ``until(seen)`` holds.

    ``each(seen)`` runs after every event. The watch gives up after ``seconds``.
    """
    seen: Seen = []
    stream = watch.Watch()
    for event in stream.stream(
        list_call or kube.core.list_namespaced_config_map,
        kube.namespace,
        timeout_seconds=seconds,
        **params,
    ):
        seen.append((event["type"], event["object"].metadata.name))
        if each is not None:
            each(seen)
        if until(seen):
            stream.stop()
    return seen


def _count(n: int) -> Callable[[Seen], bool]:
    return lambda seen: len(seen) >= n


def test_watch_from_a_list_resource_version_sees_later_changes_only(scratch: Kube) -> None:
    # GIVEN a list and its resourceVersion
    listed = scratch.core.list_namespaced_config_map(scratch.namespace)
    # WHEN objects change after it
    scratch.core.create_namespaced_config_map(scratch.namespace, {"metadata": {"name": "later"}})
    scratch.core.patch_namespaced_config_map("later", scratch.namespace, {"data": {"k": "v"}})
    scratch.core.delete_namespaced_config_map("later", scratch.namespace)
    # THEN a watch from that version replays exactly those changes, in order
    events = _collect(scratch, _count(3), resource_version=listed.metadata.resource_version)
    assert events == [("ADDED", "later"), ("MODIFIED", "later"), ("DELETED", "later")]


def test_watch_without_version_starts_with_the_current_state(seeded: Kube) -> None:
    # GIVEN the namespace's configmaps
    names = {
        c.metadata.name for c in seeded.core.list_namespaced_config_map(seeded.namespace).items
    }
    # WHEN a watch starts without a version, THEN it first announces each of them
    events = _collect(seeded, _count(len(names)))
    assert sorted(events) == sorted(("ADDED", name) for name in names)
    assert "canary-env" in names


def test_watch_sees_a_change_made_while_it_waits(scratch: Kube) -> None:
    configmap(scratch)

    # GIVEN a watch that has announced the configmap
    def change_once(seen: Seen) -> None:
        if seen == [("ADDED", "canary-env")]:
            scratch.mutate("configmaps", "canary-env", lambda obj: obj["data"].update(x="1"))

    # WHEN someone changes the object, THEN the watcher is told
    events = _collect(
        scratch,
        lambda seen: seen[-1][0] == "MODIFIED",
        each=change_once,
        field_selector="metadata.name=canary-env",
    )
    assert events == [("ADDED", "canary-env"), ("MODIFIED", "canary-env")]


def test_watch_with_a_label_selector_filters_events(kube: Kube) -> None:
    # GIVEN a list's version, then green scaled up, then blue
    def pods(app: str) -> list[Any]:
        return list(
            kube.core.list_namespaced_pod(kube.namespace, label_selector=f"app={app}").items
        )

    listed = kube.core.list_namespaced_pod(kube.namespace)
    before = {p.metadata.name for p in listed.items}
    kube.apps.patch_namespaced_deployment_scale(
        "green-deployment", kube.namespace, {"spec": {"replicas": 3}}
    )
    kube.eventually("a third green pod", lambda: len(pods("green")) == 3)
    kube.apps.patch_namespaced_deployment_scale(
        "blue-deployment", kube.namespace, {"spec": {"replicas": 3}}
    )
    kube.eventually("a third blue pod", lambda: len(pods("blue")) == 3)
    # WHEN pods are watched from that version through the selector app=blue
    apps: list[str] = []
    stream = watch.Watch()
    for event in stream.stream(
        kube.core.list_namespaced_pod,
        kube.namespace,
        label_selector="app=blue",
        resource_version=listed.metadata.resource_version,
        timeout_seconds=20,
    ):
        apps.append(event["object"].metadata.labels["app"])
        if event["type"] == "ADDED" and event["object"].metadata.name not in before:
            stream.stop()
    # THEN everything up to the new blue pod (after every green one) is blue
    assert apps
    assert set(apps) == {"blue"}


def test_watch_from_an_expired_version_is_410_gone() -> None:
    # GIVEN more writes than the event history keeps
    with ClusterEmulator(watch_history=50) as emulator:
        kube = connect(emulator)
        first = kube.core.read_namespaced_config_map("canary-env", kube.namespace)
        for index in range(60):

            def change(obj: dict[str, Any], i: int = index) -> None:
                obj["data"].update(n=str(i))

            emulator.mutate("configmaps", kube.namespace, "canary-env", change)
        # WHEN a watch resumes from the old version
        with pytest.raises(ApiException) as expired:
            _collect(kube, _count(1), resource_version=first.metadata.resource_version)
        # THEN the client sees the 410 it knows how to handle (relist), and a recent
        # version still works
        assert expired.value.status == 410
        recent = kube.core.list_namespaced_config_map(kube.namespace).metadata.resource_version
        kube.core.patch_namespaced_config_map("canary-env", kube.namespace, {"data": {"z": "1"}})
        assert _collect(kube, _count(1), resource_version=recent) == [("MODIFIED", "canary-env")]
        kube.api.close()


def test_watch_stream_is_chunked_json_lines(seeded: Kube) -> None:
    # WHEN configmaps are watched over plain HTTP
    response = seeded.api.rest_client.pool_manager.request(
        "GET",
        seeded.api.configuration.host
        + seeded.path("/api/v1/namespaces/{ns}/configmaps?watch=true&timeoutSeconds=20"),
        headers={"Accept": "application/json"},
        preload_content=False,
    )
    try:
        first = next(response.stream(amt=None, decode_content=True)).decode()
        # THEN the answer is chunked, one JSON event per line
        assert response.status == 200
        assert response.headers["Transfer-Encoding"] == "chunked"
        line = first.splitlines()[0]
        assert line.startswith('{"type":"ADDED","object":{')
        assert json.loads(line)["object"]["kind"] == "ConfigMap"
    finally:
        response.release_conn()
        response.close()


def test_leaving_a_label_selector_is_a_deleted_event_for_the_watcher(scratch: Kube) -> None:
    configmap(scratch)
    # GIVEN a watch on configmaps labelled stage=canary, from now
    listed = scratch.core.list_namespaced_config_map(scratch.namespace)
    scratch.core.patch_namespaced_config_map(
        "canary-env", scratch.namespace, {"metadata": {"labels": {"stage": "canary"}}}
    )
    scratch.core.patch_namespaced_config_map(
        "canary-env", scratch.namespace, {"metadata": {"labels": {"stage": "done"}}}
    )
    # WHEN the object gets the label and then loses it
    events = _collect(
        scratch,
        _count(2),
        resource_version=listed.metadata.resource_version,
        label_selector="stage=canary",
    )
    # THEN the watcher sees it arrive and leave
    assert events == [("ADDED", "canary-env"), ("DELETED", "canary-env")]
