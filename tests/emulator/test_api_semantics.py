"""Server-side semantics real clients rely on, driven through the official client."""

from __future__ import annotations

import copy
import json

import pytest
from kubernetes.client.rest import ApiException

from tests.emulator.conftest import BLUE_IMAGE, NAMESPACE, Kube, http, image, job_manifest


def _status(error: ApiException) -> dict[str, object]:
    return json.loads(error.body)


def test_seed_matches_the_original_system(kube: Kube) -> None:
    # GIVEN the default seed
    # WHEN the product reads its objects
    config = kube.core.read_namespaced_config_map("canary-env", NAMESPACE)
    blue = kube.apps.read_namespaced_deployment("blue-deployment", NAMESPACE)
    canary = kube.core.read_namespaced_service("canary-service", NAMESPACE)
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


def test_two_writers_the_stale_one_gets_409_and_its_retry_wins(kube: Kube) -> None:
    # GIVEN two writers that read the same version
    first = kube.core.read_namespaced_config_map("canary-env", NAMESPACE)
    second = kube.core.read_namespaced_config_map("canary-env", NAMESPACE)
    version = first.metadata.resource_version
    # WHEN the first writes, then the second writes with its stale resourceVersion
    kube.core.patch_namespaced_config_map(
        "canary-env", NAMESPACE, {"metadata": {"resourceVersion": version}, "data": {"first": "1"}}
    )
    with pytest.raises(ApiException) as stale:
        kube.core.patch_namespaced_config_map(
            "canary-env",
            NAMESPACE,
            {
                "metadata": {"resourceVersion": second.metadata.resource_version},
                "data": {"second": "2"},
            },
        )
    # THEN the second gets a Conflict Status; re-reading and retrying keeps both changes
    assert stale.value.status == 409
    assert _status(stale.value)["reason"] == "Conflict"
    fresh = kube.core.read_namespaced_config_map("canary-env", NAMESPACE)
    kube.core.patch_namespaced_config_map(
        "canary-env",
        NAMESPACE,
        {"metadata": {"resourceVersion": fresh.metadata.resource_version}, "data": {"second": "2"}},
    )
    final = kube.core.read_namespaced_config_map("canary-env", NAMESPACE).data
    assert final["first"] == "1"
    assert final["second"] == "2"
    assert "canaryEnv" in final


def test_put_with_stale_resource_version_conflicts(kube: Kube) -> None:
    # GIVEN a configmap read, then changed by someone else
    mine = kube.core.read_namespaced_config_map("canary-env", NAMESPACE)
    kube.emulator.mutate(
        "configmaps", NAMESPACE, "canary-env", lambda obj: obj["data"].update(other="x")
    )
    # WHEN the stale copy is replaced
    mine.data["mine"] = "y"
    with pytest.raises(ApiException) as stale:
        kube.core.replace_namespaced_config_map("canary-env", NAMESPACE, mine)
    # THEN 409 and the other writer's change survives
    assert stale.value.status == 409
    assert "other" in kube.core.read_namespaced_config_map("canary-env", NAMESPACE).data


def test_every_write_bumps_one_global_resource_version(kube: Kube) -> None:
    # GIVEN two objects of different kinds
    before = int(
        kube.core.read_namespaced_config_map("canary-env", NAMESPACE).metadata.resource_version
    )
    # WHEN both are written
    cm = kube.core.patch_namespaced_config_map("canary-env", NAMESPACE, {"data": {"a": "1"}})
    svc = kube.core.patch_namespaced_service(
        "canary-service", NAMESPACE, {"metadata": {"labels": {"x": "y"}}}
    )
    # THEN their versions come from one increasing counter
    assert before < int(cm.metadata.resource_version) < int(svc.metadata.resource_version)


def test_a_no_op_patch_keeps_the_resource_version(kube: Kube) -> None:
    current = kube.core.read_namespaced_config_map("canary-env", NAMESPACE)
    unchanged = kube.core.patch_namespaced_config_map(
        "canary-env", NAMESPACE, {"data": {"canaryEnv": current.data["canaryEnv"]}}
    )
    assert unchanged.metadata.resource_version == current.metadata.resource_version


def test_missing_object_is_a_404_status(kube: Kube) -> None:
    with pytest.raises(ApiException) as missing:
        kube.apps.read_namespaced_deployment("purple-deployment", NAMESPACE)
    status = _status(missing.value)
    assert missing.value.status == 404
    assert status["reason"] == "NotFound"
    assert status["message"] == 'deployments.apps "purple-deployment" not found'
    assert status["details"] == {
        "name": "purple-deployment",
        "group": "apps",
        "kind": "deployments",
    }


def test_create_twice_is_already_exists(kube: Kube) -> None:
    body = {"metadata": {"name": "extra"}, "data": {"k": "v"}}
    created = kube.core.create_namespaced_config_map(NAMESPACE, body)
    with pytest.raises(ApiException) as duplicate:
        kube.core.create_namespaced_config_map(NAMESPACE, body)
    assert created.metadata.uid
    assert created.metadata.creation_timestamp is not None
    assert duplicate.value.status == 409
    assert _status(duplicate.value)["reason"] == "AlreadyExists"


def test_namespace_in_body_must_match_the_url(kube: Kube) -> None:
    body = {"metadata": {"name": "elsewhere", "namespace": "default"}}
    with pytest.raises(ApiException) as mismatch:
        kube.core.create_namespaced_config_map(NAMESPACE, body)
    assert mismatch.value.status == 400
    assert _status(mismatch.value)["reason"] == "BadRequest"
    assert kube.emulator.get("configmaps", NAMESPACE, "elsewhere") is None


def test_namespace_comes_from_the_url(kube: Kube) -> None:
    created = kube.core.create_namespaced_config_map(NAMESPACE, {"metadata": {"name": "n"}})
    assert created.metadata.namespace == NAMESPACE


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
def test_invalid_deployment_is_422_and_changes_nothing(kube: Kube, change, field) -> None:
    # GIVEN a deployment manifest missing something required
    manifest = kube.emulator.get("deployments", NAMESPACE, "blue-deployment")
    assert manifest is not None
    manifest = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "broken"},
        "spec": manifest["spec"],
    }
    change(manifest)
    # WHEN it is created
    with pytest.raises(ApiException) as rejected:
        kube.apps.create_namespaced_deployment(NAMESPACE, manifest)
    # THEN 422 Invalid names the field, and nothing was stored
    status = _status(rejected.value)
    assert rejected.value.status == 422
    assert status["reason"] == "Invalid"
    assert field in [cause["field"] for cause in status["details"]["causes"]]
    assert kube.emulator.get("deployments", NAMESPACE, "broken") is None


def test_generation_counts_spec_changes_only(kube: Kube) -> None:
    # GIVEN the seeded deployment at generation 1
    name = "blue-deployment"
    # WHEN only labels change
    relabelled = kube.apps.patch_namespaced_deployment(
        name, NAMESPACE, {"metadata": {"labels": {"team": "web"}}}
    )
    # THEN generation stays; a spec change bumps it
    assert relabelled.metadata.generation == 1
    scaled = kube.apps.patch_namespaced_deployment(name, NAMESPACE, {"spec": {"replicas": 3}})
    assert scaled.metadata.generation == 2


def test_revision_annotation_follows_template_changes_only(kube: Kube) -> None:
    # GIVEN revision 1
    name = "green-deployment"
    # WHEN the replica count changes, then the image
    kube.apps.patch_namespaced_deployment(name, NAMESPACE, {"spec": {"replicas": 3}})
    after_scale = kube.apps.read_namespaced_deployment(name, NAMESPACE)
    kube.apps.patch_namespaced_deployment(
        name,
        NAMESPACE,
        {"spec": {"template": {"spec": {"containers": [{"name": "web", "image": image("a")}]}}}},
    )
    after_image = kube.apps.read_namespaced_deployment(name, NAMESPACE)
    # THEN only the template change made a new revision
    assert after_scale.metadata.annotations["deployment.kubernetes.io/revision"] == "1"
    assert after_image.metadata.annotations["deployment.kubernetes.io/revision"] == "2"


def test_status_writes_ignore_spec_and_spec_writes_ignore_status(kube: Kube) -> None:
    name = "blue-deployment"
    through_main = kube.apps.patch_namespaced_deployment(
        name, NAMESPACE, {"status": {"replicas": 99}}
    )
    assert through_main.status.replicas == 2
    through_status = kube.apps.patch_namespaced_deployment_status(
        name, NAMESPACE, {"spec": {"replicas": 7}}
    )
    assert through_status.spec.replicas == 2


def test_label_selectors_equality_and_set_based(kube: Kube) -> None:
    def names(selector: str) -> set[str]:
        pods = kube.core.list_namespaced_pod(NAMESPACE, label_selector=selector).items
        return {p.metadata.labels["app"] for p in pods}

    assert names("app=blue") == {"blue"}
    assert names("app!=blue") == {"green"}
    assert names("app in (blue,green)") == {"blue", "green"}
    assert names("app notin (blue)") == {"green"}
    assert names("app") == {"blue", "green"}
    assert names("!app") == set()
    assert len(kube.core.list_namespaced_pod(NAMESPACE, label_selector="app=blue").items) == 2


def test_field_selector_on_name_and_unsupported_field(kube: Kube) -> None:
    found = kube.core.list_namespaced_config_map(
        NAMESPACE, field_selector="metadata.name=canary-env"
    ).items
    assert [c.metadata.name for c in found] == ["canary-env"]
    with pytest.raises(ApiException) as unsupported:
        kube.core.list_namespaced_config_map(NAMESPACE, field_selector="data.x=1")
    assert unsupported.value.status == 400


def test_list_paginates_with_limit_and_continue(kube: Kube) -> None:
    first = kube.core.list_namespaced_pod(NAMESPACE, limit=3)
    rest = kube.core.list_namespaced_pod(NAMESPACE, limit=3, _continue=first.metadata._continue)
    names = [p.metadata.name for p in first.items + rest.items]
    assert len(first.items) == 3
    assert first.metadata.remaining_item_count == 1
    assert rest.metadata._continue is None
    assert len(names) == len(set(names)) == 4


def test_strategic_merge_keeps_other_containers_fields(kube: Kube) -> None:
    # WHEN the product patches only the container image
    kube.apps.patch_namespaced_deployment(
        "blue-deployment",
        NAMESPACE,
        {"spec": {"template": {"spec": {"containers": [{"name": "web", "image": image("b")}]}}}},
    )
    # THEN env, ports and mounts of the container stay
    container = kube.apps.read_namespaced_deployment(
        "blue-deployment", NAMESPACE
    ).spec.template.spec.containers[0]
    assert container.image == image("b")
    assert [e.name for e in container.env] == ["WORDPRESS_DB_HOST", "WORDPRESS_DB_NAME"]
    assert container.volume_mounts[0].name == "uploads"


def test_strategic_merge_delete_directive(kube: Kube) -> None:
    kube.apps.patch_namespaced_deployment(
        "blue-deployment",
        NAMESPACE,
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
        "blue-deployment", NAMESPACE
    ).spec.template.spec.containers[0]
    assert [e.name for e in container.env] == ["WORDPRESS_DB_HOST"]


def test_json_patch_and_merge_patch(kube: Kube) -> None:
    # json-patch: the client sends a list body as application/json-patch+json
    patched = kube.core.patch_namespaced_service(
        "canary-service",
        NAMESPACE,
        [{"op": "replace", "path": "/spec/selector/app", "value": "green"}],
    )
    assert patched.spec.selector == {"app": "green"}
    # a failing test op is rejected and changes nothing
    with pytest.raises(ApiException) as failed:
        kube.core.patch_namespaced_service(
            "canary-service",
            NAMESPACE,
            [
                {"op": "test", "path": "/spec/selector/app", "value": "blue"},
                {"op": "replace", "path": "/spec/selector/app", "value": "blue"},
            ],
        )
    assert failed.value.status == 422
    assert kube.core.read_namespaced_service("canary-service", NAMESPACE).spec.selector == {
        "app": "green"
    }


def test_merge_patch_null_deletes_a_key(kube: Kube) -> None:
    status, _, _ = http(
        kube.emulator,
        "PATCH",
        f"/api/v1/namespaces/{NAMESPACE}/configmaps/canary-env",
        {"data": {"canaryEnv": None, "new": "1"}},
        "application/merge-patch+json",
    )
    assert status == 200
    assert kube.core.read_namespaced_config_map("canary-env", NAMESPACE).data == {"new": "1"}


def test_delete_job_with_background_propagation_takes_its_pods(kube: Kube) -> None:
    kube.batch.create_namespaced_job(NAMESPACE, job_manifest("hook", ["true"]))
    assert kube.core.list_namespaced_pod(NAMESPACE, label_selector="job-name=hook").items
    kube.batch.delete_namespaced_job("hook", NAMESPACE, propagation_policy="Background")
    assert kube.core.list_namespaced_pod(NAMESPACE, label_selector="job-name=hook").items == []


def test_delete_job_without_policy_orphans_pods_like_batch_v1(kube: Kube) -> None:
    kube.batch.create_namespaced_job(NAMESPACE, job_manifest("hook", ["true"]))
    kube.batch.delete_namespaced_job("hook", NAMESPACE)
    orphans = kube.core.list_namespaced_pod(NAMESPACE, label_selector="job-name=hook").items
    assert len(orphans) == 1
    assert orphans[0].metadata.owner_references is None


def test_deleting_a_deployment_removes_its_replica_sets_and_pods(kube: Kube) -> None:
    kube.apps.delete_namespaced_deployment("blue-deployment", NAMESPACE)
    assert kube.apps.list_namespaced_replica_set(NAMESPACE, label_selector="app=blue").items == []
    assert kube.core.list_namespaced_pod(NAMESPACE, label_selector="app=blue").items == []


def test_endpoints_follow_the_service_selector(kube: Kube) -> None:
    # GIVEN the canary service selecting the blue pods
    blue_ips = {
        p.status.pod_ip
        for p in kube.core.list_namespaced_pod(NAMESPACE, label_selector="app=blue").items
    }
    green_ips = {
        p.status.pod_ip
        for p in kube.core.list_namespaced_pod(NAMESPACE, label_selector="app=green").items
    }
    before = kube.core.read_namespaced_endpoints("canary-service", NAMESPACE)
    # WHEN the selector is switched to green
    kube.core.patch_namespaced_service(
        "canary-service", NAMESPACE, {"spec": {"selector": {"app": "green"}}}
    )
    after = kube.core.read_namespaced_endpoints("canary-service", NAMESPACE)
    # THEN the endpoints list the green pods on the target port
    assert {a.ip for a in before.subsets[0].addresses} == blue_ips
    assert {a.ip for a in after.subsets[0].addresses} == green_ips
    assert after.subsets[0].ports[0].port == 8080


@pytest.mark.parametrize(
    "change",
    [
        lambda d: d["spec"].update(replicas="three"),
        lambda d: d["spec"]["template"]["spec"]["containers"][0].update(command="wp"),
        lambda d: d["metadata"].update(labels={"app": 1}),
        lambda d: d["spec"].update(paused="yes"),
    ],
)
def test_wrongly_typed_fields_are_400_and_change_nothing(kube: Kube, change) -> None:
    # GIVEN the stored deployment
    stored = kube.emulator.get("deployments", NAMESPACE, "blue-deployment")
    assert stored is not None
    body = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": copy.deepcopy(stored["metadata"]),
        "spec": copy.deepcopy(stored["spec"]),
    }
    change(body)
    # WHEN it is replaced with a field of the wrong JSON type
    status, _, raw = http(
        kube.emulator,
        "PUT",
        f"/apis/apps/v1/namespaces/{NAMESPACE}/deployments/blue-deployment",
        body,
    )
    # THEN the server refuses to decode it, as Go's decoder would, and nothing changed
    assert status == 400
    assert json.loads(raw)["message"].startswith("json: cannot unmarshal ")
    assert kube.emulator.get("deployments", NAMESPACE, "blue-deployment") == stored
    assert kube.emulator.controllers.errors == []


def test_unknown_paths_and_methods_are_status_objects(kube: Kube) -> None:
    status, _, raw = http(kube.emulator, "GET", "/apis/example.com/v1/widgets")
    assert status == 404
    assert json.loads(raw)["kind"] == "Status"
    status, _, raw = http(kube.emulator, "POST", f"/api/v1/namespaces/{NAMESPACE}/pods/x/log", {})
    assert status == 405
    status, _, raw = http(
        kube.emulator,
        "PATCH",
        f"/api/v1/namespaces/{NAMESPACE}/configmaps/canary-env",
        {"data": {}},
        "text/plain",
    )
    assert status == 415
    status, _, raw = http(
        kube.emulator, "POST", f"/api/v1/namespaces/{NAMESPACE}/configmaps", b"{not json"
    )
    assert status == 400


def test_immutable_fields_are_422(kube: Kube) -> None:
    # GIVEN an immutable configmap and a service with an allocated cluster IP
    kube.core.create_namespaced_config_map(
        NAMESPACE, {"metadata": {"name": "frozen"}, "data": {"a": "1"}, "immutable": True}
    )
    service = kube.core.read_namespaced_service("canary-service", NAMESPACE)
    # WHEN their immutable fields are changed
    with pytest.raises(ApiException) as frozen:
        kube.core.patch_namespaced_config_map("frozen", NAMESPACE, {"data": {"a": "2"}})
    with pytest.raises(ApiException) as moved:
        kube.core.patch_namespaced_service(
            "canary-service", NAMESPACE, {"spec": {"clusterIP": "10.100.0.99"}}
        )
    # THEN both are Invalid and nothing changed
    assert frozen.value.status == moved.value.status == 422
    assert kube.core.read_namespaced_config_map("frozen", NAMESPACE).data == {"a": "1"}
    assert (
        kube.core.read_namespaced_service("canary-service", NAMESPACE).spec.cluster_ip
        == service.spec.cluster_ip
    )
