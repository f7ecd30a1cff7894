"""Server-side semantics real clients rely on, driven through the official client.

Every test runs on the emulator and on the real control plane: on the seed
(``kube``, or ``seeded`` when it only reads it), or on objects of its own
(``scratch``):
versions and conflicts, Status bodies, validation, generation and revisions,
status and spec writes, selectors and pages, the three patch types, deletion
and its propagation, Endpoints, decoding errors.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from kubernetes.client.rest import ApiException

from tests.emulator.conftest import BLUE_IMAGE, Kube, configmap, image, job_manifest, service


def _status(error: ApiException) -> dict[str, Any]:
    found: dict[str, Any] = json.loads(error.body)
    return found


def _settled(kube: Kube, name: str) -> dict[str, Any]:
    """The Deployment once its controller has seen its latest spec."""

    def seen() -> dict[str, Any] | None:
        found = kube.stored("deployments", name)
        observed = found.get("status", {}).get("observedGeneration", 0)
        return found if observed >= found["metadata"]["generation"] else None

    return kube.eventually(f"{name} observed", seen)


def test_seed_matches_the_original_system(seeded: Kube) -> None:
    # GIVEN the default seed
    # WHEN the product reads its objects
    config = seeded.core.read_namespaced_config_map("canary-env", seeded.namespace)
    blue = seeded.apps.read_namespaced_deployment("blue-deployment", seeded.namespace)
    canary = seeded.core.read_namespaced_service("canary-service", seeded.namespace)
    # THEN they are as the original system stored them, fully rolled out
    assert config.data["canaryEnv"] == json.dumps(
        {"selector": "blue", "image": BLUE_IMAGE}, separators=(",", ":")
    )
    assert blue.spec.template.spec.containers[0].image == BLUE_IMAGE
    assert blue.metadata.annotations["deployment.kubernetes.io/revision"] == "1"
    assert blue.status.available_replicas == 2
    assert canary.spec.selector == {"app": "blue"}
    assert canary.spec.ports[0].port == 80
    assert canary.spec.ports[0].target_port == 8080


def test_two_writers_the_stale_one_gets_409_and_its_retry_wins(scratch: Kube) -> None:
    configmap(scratch)
    # GIVEN two writers that read the same version
    first = scratch.core.read_namespaced_config_map("canary-env", scratch.namespace)
    second = scratch.core.read_namespaced_config_map("canary-env", scratch.namespace)
    version = first.metadata.resource_version
    # WHEN the first writes, then the second writes with its stale resourceVersion
    scratch.core.patch_namespaced_config_map(
        "canary-env",
        scratch.namespace,
        {"metadata": {"resourceVersion": version}, "data": {"first": "1"}},
    )
    with pytest.raises(ApiException) as stale:
        scratch.core.patch_namespaced_config_map(
            "canary-env",
            scratch.namespace,
            {
                "metadata": {"resourceVersion": second.metadata.resource_version},
                "data": {"second": "2"},
            },
        )
    # THEN the second gets a Conflict Status; re-reading and retrying keeps both changes
    assert stale.value.status == 409
    assert _status(stale.value)["reason"] == "Conflict"
    fresh = scratch.core.read_namespaced_config_map("canary-env", scratch.namespace)
    scratch.core.patch_namespaced_config_map(
        "canary-env",
        scratch.namespace,
        {"metadata": {"resourceVersion": fresh.metadata.resource_version}, "data": {"second": "2"}},
    )
    final = scratch.core.read_namespaced_config_map("canary-env", scratch.namespace).data
    assert final["first"] == "1"
    assert final["second"] == "2"
    assert "canaryEnv" in final


def test_put_with_stale_resource_version_conflicts(scratch: Kube) -> None:
    configmap(scratch)
    # GIVEN a configmap read, then changed by someone else
    mine = scratch.core.read_namespaced_config_map("canary-env", scratch.namespace)
    scratch.mutate("configmaps", "canary-env", lambda obj: obj["data"].update(other="x"))
    # WHEN the stale copy is replaced
    mine.data["mine"] = "y"
    with pytest.raises(ApiException) as stale:
        scratch.core.replace_namespaced_config_map("canary-env", scratch.namespace, mine)
    # THEN 409 and the other writer's change survives
    assert stale.value.status == 409
    assert "other" in scratch.core.read_namespaced_config_map("canary-env", scratch.namespace).data


def test_a_change_behind_the_back_makes_the_stale_patch_conflict(scratch: Kube) -> None:
    configmap(scratch)
    # GIVEN the product read the configmap
    read = scratch.core.read_namespaced_config_map("canary-env", scratch.namespace)
    # WHEN someone else changes it, then the product patches with its stale version
    scratch.mutate("configmaps", "canary-env", lambda obj: obj["data"].update(operator="manual"))
    with pytest.raises(ApiException) as stale:
        scratch.core.patch_namespaced_config_map(
            "canary-env",
            scratch.namespace,
            {
                "metadata": {"resourceVersion": read.metadata.resource_version},
                "data": {"canaryEnv": "{}"},
            },
        )
    # THEN 409; the retry on a fresh read wins and keeps the other change
    assert stale.value.status == 409
    fresh = scratch.core.read_namespaced_config_map("canary-env", scratch.namespace)
    scratch.core.patch_namespaced_config_map(
        "canary-env",
        scratch.namespace,
        {
            "metadata": {"resourceVersion": fresh.metadata.resource_version},
            "data": {"canaryEnv": "{}"},
        },
    )
    final = scratch.core.read_namespaced_config_map("canary-env", scratch.namespace).data
    assert final == {"canaryEnv": "{}", "operator": "manual"}


def test_every_write_bumps_one_global_resource_version(scratch: Kube) -> None:
    configmap(scratch)
    service(scratch)
    # GIVEN two objects of different kinds
    before = int(
        scratch.core.read_namespaced_config_map(
            "canary-env", scratch.namespace
        ).metadata.resource_version
    )
    # WHEN both are written
    cm = scratch.core.patch_namespaced_config_map(
        "canary-env", scratch.namespace, {"data": {"a": "1"}}
    )
    svc = scratch.core.patch_namespaced_service(
        "canary-service", scratch.namespace, {"metadata": {"labels": {"x": "y"}}}
    )
    # THEN their versions come from one increasing counter
    assert before < int(cm.metadata.resource_version) < int(svc.metadata.resource_version)


def test_a_no_op_patch_keeps_the_resource_version(scratch: Kube) -> None:
    configmap(scratch)
    current = scratch.core.read_namespaced_config_map("canary-env", scratch.namespace)
    unchanged = scratch.core.patch_namespaced_config_map(
        "canary-env", scratch.namespace, {"data": {"canaryEnv": current.data["canaryEnv"]}}
    )
    assert unchanged.metadata.resource_version == current.metadata.resource_version


def test_missing_object_is_a_404_status(seeded: Kube) -> None:
    with pytest.raises(ApiException) as missing:
        seeded.apps.read_namespaced_deployment("purple-deployment", seeded.namespace)
    status = _status(missing.value)
    assert missing.value.status == 404
    assert status["reason"] == "NotFound"
    assert status["message"] == 'deployments.apps "purple-deployment" not found'
    assert status["details"] == {
        "name": "purple-deployment",
        "group": "apps",
        "kind": "deployments",
    }


def test_create_twice_is_already_exists(scratch: Kube) -> None:
    body = {"metadata": {"name": "extra"}, "data": {"k": "v"}}
    created = scratch.core.create_namespaced_config_map(scratch.namespace, body)
    with pytest.raises(ApiException) as duplicate:
        scratch.core.create_namespaced_config_map(scratch.namespace, body)
    assert created.metadata.uid
    assert created.metadata.creation_timestamp is not None
    assert duplicate.value.status == 409
    assert _status(duplicate.value)["reason"] == "AlreadyExists"


def test_namespace_in_body_must_match_the_url(seeded: Kube) -> None:
    body = {"metadata": {"name": "elsewhere", "namespace": "default"}}
    with pytest.raises(ApiException) as mismatch:
        seeded.core.create_namespaced_config_map(seeded.namespace, body)
    assert mismatch.value.status == 400
    assert _status(mismatch.value)["reason"] == "BadRequest"
    assert seeded.get("configmaps", "elsewhere") is None


def test_namespace_comes_from_the_url(scratch: Kube) -> None:
    created = scratch.core.create_namespaced_config_map(
        scratch.namespace, {"metadata": {"name": "n"}}
    )
    assert created.metadata.namespace == scratch.namespace


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda d: d["spec"].pop("selector"), "spec.selector"),
        (
            lambda d: d["spec"]["template"]["spec"]["containers"][0].pop("image"),
            "spec.template.spec.containers[0].image",
        ),
        (
            lambda d: d["spec"]["template"]["spec"].update(containers=[]),
            "spec.template.spec.containers",
        ),
        (
            lambda d: d["spec"]["template"]["metadata"].update(labels={"app": "other"}),
            "spec.template.metadata.labels",
        ),
    ],
)
def test_invalid_deployment_is_422_and_changes_nothing(seeded: Kube, change, field) -> None:
    # GIVEN a deployment manifest missing something required
    manifest = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "broken"},
        "spec": seeded.stored("deployments", "blue-deployment")["spec"],
    }
    change(manifest)
    # WHEN it is created
    with pytest.raises(ApiException) as rejected:
        seeded.apps.create_namespaced_deployment(seeded.namespace, manifest)
    # THEN 422 Invalid names the field, and nothing was stored
    status = _status(rejected.value)
    assert rejected.value.status == 422
    assert status["reason"] == "Invalid"
    assert field in [cause["field"] for cause in status["details"]["causes"]]
    assert seeded.get("deployments", "broken") is None


def test_generation_counts_spec_changes_only(kube: Kube) -> None:
    # GIVEN the seeded deployment at generation 1
    name = "blue-deployment"
    # WHEN only labels change
    relabelled = kube.apps.patch_namespaced_deployment(
        name, kube.namespace, {"metadata": {"labels": {"team": "web"}}}
    )
    # THEN generation stays; a spec change bumps it
    assert relabelled.metadata.generation == 1
    scaled = kube.apps.patch_namespaced_deployment(name, kube.namespace, {"spec": {"replicas": 3}})
    assert scaled.metadata.generation == 2


def test_revision_annotation_follows_template_changes_only(kube: Kube) -> None:
    # GIVEN revision 1
    name = "green-deployment"
    revision = "deployment.kubernetes.io/revision"
    # WHEN the replica count changes, then the image
    kube.apps.patch_namespaced_deployment(name, kube.namespace, {"spec": {"replicas": 3}})
    after_scale = _settled(kube, name)
    kube.apps.patch_namespaced_deployment(
        name,
        kube.namespace,
        {"spec": {"template": {"spec": {"containers": [{"name": "web", "image": image("a")}]}}}},
    )
    after_image = _settled(kube, name)
    # THEN only the template change made a new revision
    assert after_scale["metadata"]["annotations"][revision] == "1"
    assert after_image["metadata"]["annotations"][revision] == "2"


def test_status_writes_ignore_spec_and_spec_writes_ignore_status(kube: Kube) -> None:
    name = "blue-deployment"
    through_main = kube.apps.patch_namespaced_deployment(
        name, kube.namespace, {"status": {"replicas": 99}}
    )
    assert through_main.status.replicas == 2
    through_status = kube.apps.patch_namespaced_deployment_status(
        name, kube.namespace, {"spec": {"replicas": 7}}
    )
    assert through_status.spec.replicas == 2


def test_label_selectors_equality_and_set_based(seeded: Kube) -> None:
    def names(selector: str) -> set[str]:
        pods = seeded.core.list_namespaced_pod(seeded.namespace, label_selector=selector).items
        return {p.metadata.labels["app"] for p in pods}

    assert names("app=blue") == {"blue"}
    assert names("app!=blue") == {"green"}
    assert names("app in (blue,green)") == {"blue", "green"}
    assert names("app notin (blue)") == {"green"}
    assert names("app") == {"blue", "green"}
    assert names("!app") == set()
    assert (
        len(seeded.core.list_namespaced_pod(seeded.namespace, label_selector="app=blue").items) == 2
    )


def test_field_selector_on_name_and_unsupported_field(seeded: Kube) -> None:
    found = seeded.core.list_namespaced_config_map(
        seeded.namespace, field_selector="metadata.name=canary-env"
    ).items
    assert [c.metadata.name for c in found] == ["canary-env"]
    with pytest.raises(ApiException) as unsupported:
        seeded.core.list_namespaced_config_map(seeded.namespace, field_selector="data.x=1")
    assert unsupported.value.status == 400


def test_list_paginates_with_limit_and_continue(seeded: Kube) -> None:
    first = seeded.core.list_namespaced_pod(seeded.namespace, limit=3)
    rest = seeded.core.list_namespaced_pod(
        seeded.namespace, limit=3, _continue=first.metadata._continue
    )
    names = [p.metadata.name for p in first.items + rest.items]
    assert len(first.items) == 3
    assert first.metadata.remaining_item_count == 1
    assert rest.metadata._continue is None
    assert len(names) == len(set(names)) == 4


def test_strategic_merge_keeps_other_containers_fields(kube: Kube) -> None:
    # WHEN the product patches only the container image
    kube.apps.patch_namespaced_deployment(
        "blue-deployment",
        kube.namespace,
        {"spec": {"template": {"spec": {"containers": [{"name": "web", "image": image("b")}]}}}},
    )
    # THEN env, ports and mounts of the container stay
    container = kube.apps.read_namespaced_deployment(
        "blue-deployment", kube.namespace
    ).spec.template.spec.containers[0]
    assert container.image == image("b")
    assert [e.name for e in container.env] == ["WORDPRESS_DB_HOST", "WORDPRESS_DB_NAME"]
    assert container.volume_mounts[0].name == "uploads"


def test_strategic_merge_delete_directive(kube: Kube) -> None:
    kube.apps.patch_namespaced_deployment(
        "blue-deployment",
        kube.namespace,
        {
            "spec": {
                "template": {
                    "spec": {
                        "containers": [
                            {
                                "name": "web",
                                "env": [{"name": "WORDPRESS_DB_NAME", "$patch": "delete"}],
                            }
                        ]
                    }
                }
            }
        },
    )
    container = kube.apps.read_namespaced_deployment(
        "blue-deployment", kube.namespace
    ).spec.template.spec.containers[0]
    assert [e.name for e in container.env] == ["WORDPRESS_DB_HOST"]


def test_json_patch_and_merge_patch(scratch: Kube) -> None:
    service(scratch)
    # json-patch: the client sends a list body as application/json-patch+json
    patched = scratch.core.patch_namespaced_service(
        "canary-service",
        scratch.namespace,
        [{"op": "replace", "path": "/spec/selector/app", "value": "green"}],
    )
    assert patched.spec.selector == {"app": "green"}
    # a failing test op is rejected and changes nothing
    with pytest.raises(ApiException) as failed:
        scratch.core.patch_namespaced_service(
            "canary-service",
            scratch.namespace,
            [
                {"op": "test", "path": "/spec/selector/app", "value": "blue"},
                {"op": "replace", "path": "/spec/selector/app", "value": "blue"},
            ],
        )
    assert failed.value.status == 422
    assert scratch.core.read_namespaced_service(
        "canary-service", scratch.namespace
    ).spec.selector == {"app": "green"}


def test_merge_patch_null_deletes_a_key(scratch: Kube) -> None:
    configmap(scratch)
    scratch.core.patch_namespaced_config_map(
        "canary-env",
        scratch.namespace,
        {"data": {"canaryEnv": None, "new": "1"}},
        _content_type="application/merge-patch+json",
    )
    assert scratch.core.read_namespaced_config_map("canary-env", scratch.namespace).data == {
        "new": "1"
    }


def _hook_pods(kube: Kube) -> list[Any]:
    return list(kube.core.list_namespaced_pod(kube.namespace, label_selector="job-name=hook").items)


def test_delete_job_with_background_propagation_takes_its_pods(scratch: Kube) -> None:
    scratch.batch.create_namespaced_job(scratch.namespace, job_manifest("hook", ["true"]))
    scratch.eventually("the hook's pod", lambda: _hook_pods(scratch))
    scratch.batch.delete_namespaced_job("hook", scratch.namespace, propagation_policy="Background")
    scratch.eventually("no pod left", lambda: not _hook_pods(scratch))


def test_delete_job_without_policy_orphans_pods_like_batch_v1(scratch: Kube) -> None:
    scratch.batch.create_namespaced_job(scratch.namespace, job_manifest("hook", ["true"]))
    scratch.eventually("the hook's pod", lambda: _hook_pods(scratch))
    status, headers, _ = scratch.raw("DELETE", "/apis/batch/v1/namespaces/{ns}/jobs/hook")
    assert status == 200
    assert "child pods are preserved by default" in headers.get("Warning", "")

    def orphans() -> list[Any] | None:
        pods = _hook_pods(scratch)
        gone = scratch.get("jobs", "hook") is None
        return pods if gone and all(p.metadata.owner_references is None for p in pods) else None

    assert len(scratch.eventually("the pod orphaned", orphans)) == 1


def test_deleting_a_deployment_removes_its_replica_sets_and_pods(kube: Kube) -> None:
    kube.apps.delete_namespaced_deployment("blue-deployment", kube.namespace)

    def gone() -> bool:
        sets = kube.apps.list_namespaced_replica_set(kube.namespace, label_selector="app=blue")
        pods = kube.core.list_namespaced_pod(kube.namespace, label_selector="app=blue")
        return not sets.items and not pods.items

    kube.eventually("no ReplicaSet or pod of blue left", gone)


def test_endpoints_follow_the_service_selector(kube: Kube) -> None:
    # GIVEN the canary service selecting the blue pods
    def ips(app: str) -> set[str]:
        pods = kube.core.list_namespaced_pod(kube.namespace, label_selector=f"app={app}").items
        return {p.status.pod_ip for p in pods}

    def addresses() -> tuple[set[str], list[int]]:
        found = kube.core.read_namespaced_endpoints("canary-service", kube.namespace)
        subsets = found.subsets or []
        return (
            {a.ip for s in subsets for a in s.addresses or []},
            [p.port for s in subsets for p in s.ports or []],
        )

    blue, green = ips("blue"), ips("green")
    kube.eventually("the blue pods' endpoints", lambda: addresses()[0] == blue)
    # WHEN the selector is switched to green
    kube.core.patch_namespaced_service(
        "canary-service", kube.namespace, {"spec": {"selector": {"app": "green"}}}
    )
    # THEN the endpoints list the green pods on the target port
    kube.eventually("the green pods' endpoints", lambda: addresses()[0] == green)
    assert addresses()[1] == [8080]


@pytest.mark.parametrize(
    ("change", "refusal"),
    [
        (
            lambda d: d["spec"].update(replicas="three"),
            "string into Go struct field DeploymentSpec.spec.replicas of type int32",
        ),
        (
            lambda d: d["spec"]["template"]["spec"]["containers"][0].update(command="wp"),
            "string into Go struct field Container.spec.template.spec.containers.command "
            "of type []string",
        ),
        (
            lambda d: d["metadata"].update(labels={"app": 1}),
            "number into Go struct field ObjectMeta.metadata.labels of type string",
        ),
        (
            lambda d: d["spec"].update(paused="yes"),
            "string into Go struct field DeploymentSpec.spec.paused of type bool",
        ),
        (
            lambda d: d["spec"]["template"]["spec"]["containers"][0]["ports"][0].update(
                containerPort="8080"
            ),
            "string into Go struct field ContainerPort.spec.template.spec.containers.ports."
            "containerPort of type int32",
        ),
        (
            lambda d: d["spec"]["selector"].update(matchExpressions={"key": "app"}),
            "object into Go struct field LabelSelector.spec.selector.matchExpressions "
            "of type []v1.LabelSelectorRequirement",
        ),
    ],
    ids=["replicas", "command", "label", "paused", "containerPort", "matchExpressions"],
)
def test_wrongly_typed_fields_are_400_and_change_nothing(seeded: Kube, change, refusal) -> None:
    # GIVEN the stored deployment
    stored = seeded.stored("deployments", "blue-deployment")
    body = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": copy.deepcopy(stored["metadata"]),
        "spec": copy.deepcopy(stored["spec"]),
    }
    change(body)
    # WHEN it is replaced with a field of the wrong JSON type
    status, _, raw = seeded.raw(
        "PUT", "/apis/apps/v1/namespaces/{ns}/deployments/blue-deployment", body
    )
    # THEN the server refuses to decode it, naming the Go struct that owns the field
    answer = json.loads(raw)
    assert status == 400
    assert answer["reason"] == "BadRequest"
    assert answer["message"] == (
        'Deployment in version "v1" cannot be handled as a Deployment: '
        f"json: cannot unmarshal {refusal}"
    )
    # AND nothing changed
    after = seeded.stored("deployments", "blue-deployment")
    assert after["spec"] == stored["spec"]
    assert after["metadata"]["generation"] == stored["metadata"]["generation"]
    if not seeded.real:
        assert seeded.emulator.controllers.errors == []


def test_a_path_no_api_group_serves_is_a_plain_404(seeded: Kube) -> None:
    for path in ("/apis/example.com/v1/widgets", "/apis/example.com", "/nonsense"):
        status, headers, raw = seeded.raw("GET", path)
        assert (status, raw) == (404, b"404 page not found\n"), path
        assert headers["Content-Type"].startswith("text/plain")


def test_an_unknown_resource_of_a_served_group_is_a_404_status(seeded: Kube) -> None:
    for path in ("/apis/apps/v2/deployments", "/apis/apps/v1/widgets", "/api/v1/namespaces/{ns}/x"):
        status, _, raw = seeded.raw("GET", path)
        assert status == 404, path
        assert json.loads(raw) == {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": "the server could not find the requested resource",
            "reason": "NotFound",
            "details": {},
            "code": 404,
        }


def test_unsupported_methods_media_types_and_bodies_are_status_objects(seeded: Kube) -> None:
    # a method the resource does not serve
    status, _, raw = seeded.raw("POST", "/api/v1/namespaces/{ns}/pods/x/log", {})
    assert status == 405
    assert json.loads(raw)["message"] == (
        "the server does not allow this method on the requested resource"
    )
    # a patch of a media type no patch has
    status, _, raw = seeded.raw(
        "PATCH", "/api/v1/namespaces/{ns}/configmaps/canary-env", {"data": {}}, "text/plain"
    )
    assert status == 415
    assert json.loads(raw)["reason"] == "UnsupportedMediaType"
    # a body that is not JSON
    status, _, raw = seeded.raw("POST", "/api/v1/namespaces/{ns}/configmaps", b"{not json")
    answer = json.loads(raw)
    assert status == 400
    assert answer["reason"] == "BadRequest"
    assert answer["message"].startswith(
        "the object provided is unrecognized (must be of type ConfigMap): "
        "couldn't get version/kind; json parse error: "
    )
    # a patch that is not JSON
    status, _, raw = seeded.raw(
        "PATCH",
        "/api/v1/namespaces/{ns}/configmaps/canary-env",
        b"{not json",
        "application/merge-patch+json",
    )
    assert (status, json.loads(raw)["message"]) == (400, "invalid JSON patch")


def test_immutable_fields_are_422(scratch: Kube) -> None:
    service(scratch)
    # GIVEN an immutable configmap and a service with an allocated cluster IP
    scratch.core.create_namespaced_config_map(
        scratch.namespace, {"metadata": {"name": "frozen"}, "data": {"a": "1"}, "immutable": True}
    )
    allocated = scratch.core.read_namespaced_service("canary-service", scratch.namespace)
    # WHEN their immutable fields are changed
    with pytest.raises(ApiException) as frozen:
        scratch.core.patch_namespaced_config_map("frozen", scratch.namespace, {"data": {"a": "2"}})
    with pytest.raises(ApiException) as moved:
        scratch.core.patch_namespaced_service(
            "canary-service", scratch.namespace, {"spec": {"clusterIP": "10.100.0.99"}}
        )
    # THEN both are Invalid and nothing changed
    assert frozen.value.status == moved.value.status == 422
    assert scratch.core.read_namespaced_config_map("frozen", scratch.namespace).data == {"a": "1"}
    assert (
        scratch.core.read_namespaced_service("canary-service", scratch.namespace).spec.cluster_ip
        == allocated.spec.cluster_ip
    )
