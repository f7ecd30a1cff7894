"""The three patch types as the API server applies them.

Strategic merge (what the product sends to Deployments and Services, what
kubectl sends for ``set image``, ``apply`` and ``rollout undo``), JSON merge
patch (RFC 7386: what the product sends to Ingresses and HTTPRoutes) and JSON
patch (RFC 6902). Every test runs on the emulator and on the real control
plane (``scratch``), sending the patch to a stored object and reading back
what the server made of it, refusals included: a refused patch changes nothing.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from tests.emulator.conftest import Kube

SMP = "application/strategic-merge-patch+json"
MERGE = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"
IMAGE_BLUE = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/wp@sha256:" + "a" * 64
IMAGE_GREEN = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/wp@sha256:" + "b" * 64
UNPROCESSABLE = "the server rejected our request due to an error in our request"
ARGS = "/spec/template/spec/containers/0/args"


def deployment_manifest() -> dict[str, Any]:
    """A Deployment with two containers and every kind of list a pod template has."""
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": "green-deployment",
            "labels": {"app": "green", "tier": "web"},
            "finalizers": ["example.com/a", "example.com/b"],
        },
        "spec": {
            "replicas": 0,
            "selector": {"matchLabels": {"app": "green"}},
            "template": {
                "metadata": {"labels": {"app": "green"}},
                "spec": {
                    "containers": [
                        {
                            "name": "web",
                            "image": IMAGE_BLUE,
                            "command": ["apache2-foreground"],
                            "args": ["-D", "FOREGROUND"],
                            "env": [
                                {"name": "WP_ENV", "value": "prod"},
                                {"name": "DB_HOST", "value": "db"},
                            ],
                            "ports": [
                                {"containerPort": 80, "name": "http"},
                                {"containerPort": 443, "name": "https"},
                            ],
                            "volumeMounts": [
                                {"name": "uploads", "mountPath": "/var/www/uploads"},
                                {"name": "config", "mountPath": "/etc/wp"},
                            ],
                        },
                        {"name": "sidecar", "image": "busybox:1.37"},
                    ],
                    "volumes": [
                        {"name": "uploads", "emptyDir": {}},
                        {"name": "config", "configMap": {"name": "wp-config"}},
                    ],
                    "imagePullSecrets": [{"name": "ecr"}],
                    "tolerations": [{"key": "spot", "operator": "Exists"}],
                    "hostAliases": [{"ip": "10.0.0.1", "hostnames": ["db"]}],
                },
            },
        },
    }


SERVICE = {
    "apiVersion": "v1",
    "kind": "Service",
    "metadata": {"name": "canary"},
    "spec": {
        "selector": {"app": "blue"},
        "ports": [
            {"port": 80, "targetPort": 80, "name": "http"},
            {"port": 443, "targetPort": 443, "name": "https"},
        ],
    },
}
CONFIGMAP = {
    "apiVersion": "v1",
    "kind": "ConfigMap",
    "metadata": {"name": "canary-env", "labels": {"a": "1"}},
    "data": {"k": "v"},
}


@dataclass
class Target:
    """One stored object and the patches sent to it."""

    kube: Kube
    path: str

    def stored(self) -> dict[str, Any]:
        found: dict[str, Any] = self.kube.json("GET", self.path)
        return found

    def patch(self, body: Any, kind: str = SMP) -> dict[str, Any]:
        """Send a patch that must apply; the object as the server stored it."""
        status, _, raw = self.kube.raw("PATCH", self.path, body, kind)
        assert status == 200, f"{status}: {raw[:800]!r}"
        found: dict[str, Any] = json.loads(raw)
        return found

    def written(self) -> dict[str, Any]:
        """What a patch could change (not what controllers keep writing: status, versions)."""
        found = self.stored()
        meta = found["metadata"]
        kept = ("name", "labels", "finalizers", "generation")
        return {
            "metadata": {key: meta.get(key) for key in kept},
            **{key: found.get(key) for key in ("spec", "data")},
        }

    def refused(self, body: Any, kind: str = SMP) -> tuple[int, dict[str, Any]]:
        """Send a patch that must be refused: (status, Status body); nothing changed."""
        before = self.written()
        status, _, raw = self.kube.raw("PATCH", self.path, body, kind)
        assert status >= 400, f"{status}: {raw[:800]!r}"
        assert self.written() == before
        answer: dict[str, Any] = json.loads(raw)
        assert answer["kind"] == "Status"
        return status, answer


def _create(kube: Kube, collection: str, manifest: dict[str, Any]) -> Target:
    created = kube.json("POST", collection, manifest)
    return Target(kube, f"{collection}/{created['metadata']['name']}")


@pytest.fixture
def deployment(scratch: Kube) -> Iterator[Target]:
    """The Deployment of ``deployment_manifest`` (no replicas), its finalizers lifted after."""
    target = _create(scratch, "/apis/apps/v1/namespaces/{ns}/deployments", deployment_manifest())

    def observed() -> bool:
        # The controller writes the status and the revision once; a test reads after that.
        found = target.stored()
        return found.get("status", {}).get("observedGeneration") == found["metadata"][
            "generation"
        ] and "deployment.kubernetes.io/revision" in found["metadata"].get("annotations", {})

    scratch.eventually("the Deployment seen by its controller", observed)
    yield target
    scratch.raw("PATCH", target.path, {"metadata": {"finalizers": None}}, MERGE)


@pytest.fixture
def service(scratch: Kube) -> Target:
    return _create(scratch, "/api/v1/namespaces/{ns}/services", SERVICE)


@pytest.fixture
def configmap(scratch: Kube) -> Target:
    return _create(scratch, "/api/v1/namespaces/{ns}/configmaps", CONFIGMAP)


def template_spec(obj: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = obj["spec"]["template"]["spec"]
    return spec


def container(obj: dict[str, Any], name: str = "web") -> dict[str, Any]:
    return next(c for c in template_spec(obj)["containers"] if c["name"] == name)


def names(items: list[dict[str, Any]], key: str = "name") -> list[Any]:
    return [item[key] for item in items]


def containers_patch(containers: list[Any], **extra: Any) -> dict[str, Any]:
    return {"spec": {"template": {"spec": {"containers": containers, **extra}}}}


# Strategic merge: maps, scalars, null
# ------------------------------------


def test_strategic_merge_merges_maps_recursively_and_replaces_scalars(deployment: Target) -> None:
    # GIVEN a Deployment
    before = deployment.stored()
    # WHEN a patch touches a label and a scalar of the spec
    result = deployment.patch(
        {
            "metadata": {"labels": {"tier": "frontend", "team": "wp"}},
            "spec": {"progressDeadlineSeconds": 300},
        }
    )
    # THEN labels merge key by key and the scalar is replaced, the rest untouched
    assert result["metadata"]["labels"] == {"app": "green", "tier": "frontend", "team": "wp"}
    assert result["spec"]["progressDeadlineSeconds"] == 300
    assert result["spec"]["template"] == before["spec"]["template"]


def test_strategic_merge_null_deletes_a_key(deployment: Target) -> None:
    # WHEN a patch sets a label to null, and a label that does not exist
    result = deployment.patch({"metadata": {"labels": {"tier": None, "absent": None}}})
    # THEN the label is gone and the missing one is not created
    assert result["metadata"]["labels"] == {"app": "green"}


def test_strategic_merge_adds_missing_maps_without_their_nulls(scratch: Kube) -> None:
    # GIVEN a ConfigMap without annotations or data
    target = _create(
        scratch, "/api/v1/namespaces/{ns}/configmaps", {"metadata": {"name": "canary-env"}}
    )
    # WHEN a patch adds both, with a null inside the new map
    result = target.patch(
        {"metadata": {"annotations": {"a": "1", "b": None}}, "data": {"canaryEnv": "{}"}}
    )
    # THEN they are created and the null is not stored
    assert result["metadata"]["annotations"] == {"a": "1"}
    assert result["data"] == {"canaryEnv": "{}"}


def test_a_patch_whose_result_is_invalid_changes_nothing(deployment: Target) -> None:
    # WHEN a patch removes what a container needs
    status, answer = deployment.refused(containers_patch([{"name": "web", "image": None}]))
    # THEN the result is refused as invalid, and the stored object is as it was
    assert status == 422
    assert answer["reason"] == "Invalid"
    assert container(deployment.stored())["image"] == IMAGE_BLUE


# Strategic merge: lists merged by their patch merge key
# ------------------------------------------------------


def test_containers_merge_by_name_keeping_the_other_containers(deployment: Target) -> None:
    before = deployment.stored()
    # WHEN only web's image is patched
    result = deployment.patch(containers_patch([{"name": "web", "image": IMAGE_GREEN}]))
    # THEN web keeps every other field and the sidecar is still there, in place
    assert container(result)["image"] == IMAGE_GREEN
    assert container(result)["env"] == container(before)["env"]
    assert names(template_spec(result)["containers"]) == ["web", "sidecar"]


def test_init_containers_merge_by_name(deployment: Target) -> None:
    # GIVEN a pod template with two init containers
    deployment.patch(
        {
            "spec": {
                "template": {
                    "spec": {
                        "initContainers": [
                            {"name": "a", "image": "x:1"},
                            {"name": "b", "image": "y:1"},
                        ]
                    }
                }
            }
        }
    )
    # WHEN one is patched and a new one added
    result = deployment.patch(
        {
            "spec": {
                "template": {
                    "spec": {
                        "initContainers": [
                            {"name": "b", "image": "z:1"},
                            {"name": "c", "image": "w:1"},
                        ]
                    }
                }
            }
        }
    )
    # THEN they are merged by name
    found = template_spec(result)["initContainers"]
    assert [(c["name"], c["image"]) for c in found] == [("a", "x:1"), ("b", "z:1"), ("c", "w:1")]


def test_env_merges_by_name(deployment: Target) -> None:
    # WHEN one variable changes and another is added
    result = deployment.patch(
        containers_patch(
            [
                {
                    "name": "web",
                    "env": [{"name": "DB_HOST", "value": "db2"}, {"name": "NEW", "value": "1"}],
                }
            ]
        )
    )
    # THEN the list is merged by name, the untouched entry kept in front
    assert container(result)["env"] == [
        {"name": "WP_ENV", "value": "prod"},
        {"name": "DB_HOST", "value": "db2"},
        {"name": "NEW", "value": "1"},
    ]


def test_an_element_new_to_a_merged_list_goes_before_the_servers_own(deployment: Target) -> None:
    # WHEN a patch names only a new pull secret
    result = deployment.patch(containers_patch([], imagePullSecrets=[{"name": "extra"}]))
    # THEN the patch's elements come first, the server's others after them
    assert template_spec(result)["imagePullSecrets"] == [{"name": "extra"}, {"name": "ecr"}]
    assert names(template_spec(result)["containers"]) == ["web", "sidecar"]


def test_env_entry_field_set_to_null_is_removed_from_that_entry(deployment: Target) -> None:
    # WHEN the patch switches a variable to valueFrom and nulls its value
    result = deployment.patch(
        containers_patch(
            [
                {
                    "name": "web",
                    "env": [
                        {
                            "name": "WP_ENV",
                            "value": None,
                            "valueFrom": {"configMapKeyRef": {"name": "c", "key": "k"}},
                        }
                    ],
                }
            ]
        )
    )
    # THEN the entry has valueFrom only
    assert container(result)["env"][0] == {
        "name": "WP_ENV",
        "valueFrom": {"configMapKeyRef": {"name": "c", "key": "k"}},
    }


def test_container_ports_merge_by_container_port(deployment: Target) -> None:
    # WHEN port 443 is renamed and 8080 added
    result = deployment.patch(
        containers_patch(
            [
                {
                    "name": "web",
                    "ports": [{"containerPort": 443, "name": "tls"}, {"containerPort": 8080}],
                }
            ]
        )
    )
    # THEN ports are merged by containerPort (and get the default protocol)
    assert container(result)["ports"] == [
        {"containerPort": 80, "name": "http", "protocol": "TCP"},
        {"containerPort": 443, "name": "tls", "protocol": "TCP"},
        {"containerPort": 8080, "protocol": "TCP"},
    ]


def test_service_ports_merge_by_port(service: Target) -> None:
    # WHEN port 80's target changes and 8443 is added
    result = service.patch(
        {"spec": {"ports": [{"port": 80, "targetPort": 8080}, {"port": 8443, "name": "alt"}]}}
    )
    # THEN ports are merged by port: the patch's in its order, 443 after them
    assert [(p["port"], p["name"], p["targetPort"]) for p in result["spec"]["ports"]] == [
        (80, "http", 8080),
        (8443, "alt", 8443),
        (443, "https", 443),
    ]


def test_service_selector_switch_merges_the_selector_map(service: Target) -> None:
    before = service.stored()
    result = service.patch({"spec": {"selector": {"app": "green"}}})
    assert result["spec"]["selector"] == {"app": "green"}
    assert result["spec"]["ports"] == before["spec"]["ports"]


def test_volumes_merge_by_name_and_volume_mounts_by_mount_path(deployment: Target) -> None:
    # WHEN a volume changes, one is added, and the mount at /etc/wp moves to it
    result = deployment.patch(
        containers_patch(
            [
                {
                    "name": "web",
                    "volumeMounts": [
                        {"name": "tmp", "mountPath": "/etc/wp"},
                        {"name": "tmp", "mountPath": "/tmp"},
                    ],
                }
            ],
            volumes=[
                {"name": "config", "configMap": {"name": "wp-config-2"}},
                {"name": "tmp", "emptyDir": {}},
            ],
        )
    )
    # THEN volumes are merged by name and mounts by mountPath
    volumes = template_spec(result)["volumes"]
    assert names(volumes) == ["uploads", "config", "tmp"]
    assert volumes[1]["configMap"]["name"] == "wp-config-2"
    assert container(result)["volumeMounts"] == [
        {"name": "uploads", "mountPath": "/var/www/uploads"},
        {"name": "tmp", "mountPath": "/etc/wp"},
        {"name": "tmp", "mountPath": "/tmp"},
    ]


def test_host_aliases_merge_by_ip(deployment: Target) -> None:
    result = deployment.patch(
        containers_patch([], hostAliases=[{"ip": "10.0.0.2", "hostnames": ["cache"]}])
    )
    assert template_spec(result)["hostAliases"] == [
        {"ip": "10.0.0.2", "hostnames": ["cache"]},
        {"ip": "10.0.0.1", "hostnames": ["db"]},
    ]


def test_tolerations_command_and_args_are_replaced_wholesale(deployment: Target) -> None:
    # WHEN a patch gives new tolerations, command and args
    result = deployment.patch(
        containers_patch(
            [{"name": "web", "command": ["wp"], "args": ["cache", "flush"]}],
            tolerations=[{"key": "gpu", "operator": "Exists"}],
        )
    )
    # THEN each list is exactly the patch's
    assert template_spec(result)["tolerations"] == [{"key": "gpu", "operator": "Exists"}]
    assert container(result)["command"] == ["wp"]
    assert container(result)["args"] == ["cache", "flush"]


def test_finalizers_are_a_merged_list_of_values(deployment: Target) -> None:
    # WHEN a patch gives one finalizer, new and one already there
    result = deployment.patch({"metadata": {"finalizers": ["example.com/c", "example.com/b"]}})
    # THEN the values are merged: the new one first, the others as they were ordered
    assert result["metadata"]["finalizers"] == ["example.com/c", "example.com/a", "example.com/b"]


def test_a_list_element_without_its_merge_key_is_an_internal_error(deployment: Target) -> None:
    status, answer = deployment.refused(containers_patch([{"image": IMAGE_GREEN}]))
    assert status == 500
    assert answer["message"] == (
        f"map: map[image:{IMAGE_GREEN}] does not contain declared merge key: name"
    )


def test_a_merge_keyed_list_of_scalars_is_an_internal_error(deployment: Target) -> None:
    status, answer = deployment.refused(containers_patch([{"name": "web", "env": ["A=1"]}]))
    assert status == 500
    assert answer["message"] == (
        "list element types are not identical: "
        "[[map[name:WP_ENV value:prod] map[name:DB_HOST value:db]] [A=1]]"
    )


# Strategic merge: directives
# ---------------------------


def test_patch_delete_removes_the_list_element_with_that_key(deployment: Target) -> None:
    # WHEN the patch deletes the sidecar and one variable
    result = deployment.patch(
        containers_patch(
            [
                {"name": "sidecar", "$patch": "delete"},
                {"name": "web", "env": [{"name": "DB_HOST", "$patch": "delete"}]},
            ]
        )
    )
    # THEN both are gone and the rest is untouched
    assert names(template_spec(result)["containers"]) == ["web"]
    assert container(result)["env"] == [{"name": "WP_ENV", "value": "prod"}]
    assert container(result)["image"] == IMAGE_BLUE


def test_patch_delete_of_a_missing_element_changes_nothing(deployment: Target) -> None:
    before = deployment.stored()
    result = deployment.patch(containers_patch([{"name": "ghost", "$patch": "delete"}]))
    assert result["spec"] == before["spec"]
    assert result["metadata"]["generation"] == before["metadata"]["generation"]


def test_patch_delete_on_a_map_empties_it(deployment: Target) -> None:
    result = deployment.patch({"metadata": {"labels": {"$patch": "delete"}}})
    assert "labels" not in result["metadata"]


def test_patch_replace_on_a_map_replaces_it(deployment: Target) -> None:
    result = deployment.patch({"metadata": {"labels": {"$patch": "replace", "only": "this"}}})
    assert result["metadata"]["labels"] == {"only": "this"}


def test_patch_replace_in_a_merged_list_makes_it_the_other_elements(deployment: Target) -> None:
    # WHEN env is replaced with the list directive
    result = deployment.patch(
        containers_patch(
            [{"name": "web", "env": [{"$patch": "replace"}, {"name": "ONLY", "value": "1"}]}]
        )
    )
    # THEN env holds only the patch's other entries, and no directive is stored
    assert container(result)["env"] == [{"name": "ONLY", "value": "1"}]


def test_patch_replace_on_an_element_is_for_the_whole_list(deployment: Target) -> None:
    # WHEN one container carries the replace directive (and nothing else does)
    status, answer = deployment.refused(
        containers_patch([{"name": "web", "$patch": "replace", "image": IMAGE_GREEN}])
    )
    # THEN the list became the other elements, none: a pod template without containers
    assert status == 422
    assert "spec.template.spec.containers" in [c["field"] for c in answer["details"]["causes"]]


def test_an_unknown_patch_value_is_an_internal_error(deployment: Target) -> None:
    status, answer = deployment.refused({"metadata": {"labels": {"$patch": "remove"}}})
    assert status == 500
    assert answer["message"] == "unknown patch type: remove in map: map[$patch:remove]"


def test_an_unknown_directive_is_dropped_like_any_unknown_field(deployment: Target) -> None:
    before = deployment.stored()
    result = deployment.patch(containers_patch([], **{"$mergeEverything": True}))
    assert result["spec"] == before["spec"]


def test_kubectl_set_image_patch_changes_the_image_only(deployment: Target) -> None:
    # GIVEN the Deployment as stored
    before = deployment.stored()
    # WHEN the patch kubectl set image sends is applied
    result = deployment.patch(
        {
            "spec": {
                "template": {
                    "spec": {
                        "$setElementOrder/containers": [{"name": "web"}, {"name": "sidecar"}],
                        "containers": [{"image": IMAGE_GREEN, "name": "web"}],
                    }
                }
            }
        }
    )
    # THEN only the image changed
    expected = before["spec"]["template"]
    container(before)["image"] = IMAGE_GREEN
    assert result["spec"]["template"] == expected


def test_set_element_order_reorders_the_merged_list(deployment: Target) -> None:
    result = deployment.patch(
        containers_patch(
            [{"name": "log", "image": "fluent:1"}],
            **{
                "$setElementOrder/containers": [
                    {"name": "log"},
                    {"name": "sidecar"},
                    {"name": "web"},
                ]
            },
        )
    )
    assert names(template_spec(result)["containers"]) == ["log", "sidecar", "web"]


def test_set_element_order_puts_unnamed_elements_first_by_their_old_order(
    deployment: Target,
) -> None:
    # GIVEN env WP_ENV, DB_HOST, X
    deployment.patch(containers_patch([{"name": "web", "env": [{"name": "X", "value": "x"}]}]))
    deployment.patch(
        containers_patch(
            [
                {
                    "name": "web",
                    "$setElementOrder/env": [
                        {"name": "WP_ENV"},
                        {"name": "DB_HOST"},
                        {"name": "X"},
                    ],
                }
            ]
        )
    )
    # WHEN a patch orders only X and WP_ENV
    result = deployment.patch(
        containers_patch(
            [{"name": "web", "$setElementOrder/env": [{"name": "X"}, {"name": "WP_ENV"}]}]
        )
    )
    # THEN those two follow the order, and DB_HOST goes where the old order puts it
    assert names(container(result)["env"]) == ["DB_HOST", "X", "WP_ENV"]


def test_set_element_order_of_a_list_of_values(deployment: Target) -> None:
    result = deployment.patch(
        {"metadata": {"$setElementOrder/finalizers": ["example.com/b", "example.com/a"]}}
    )
    assert result["metadata"]["finalizers"] == ["example.com/b", "example.com/a"]


def test_set_element_order_without_merge_keys_is_an_internal_error(deployment: Target) -> None:
    status, answer = deployment.refused(
        containers_patch([], **{"$setElementOrder/containers": [{"image": "x"}]})
    )
    assert status == 500
    assert answer["message"] == "map: map[image:x] does not contain declared merge key: name"


def test_delete_from_primitive_list_removes_values(deployment: Target) -> None:
    # WHEN the directive removes a finalizer (and one that is not there) and an arg
    patch = containers_patch([{"name": "web", "$deleteFromPrimitiveList/args": ["-D"]}])
    patch["metadata"] = {
        "$deleteFromPrimitiveList/finalizers": ["example.com/a", "example.com/missing"]
    }
    result = deployment.patch(patch)
    # THEN only those values are gone
    assert result["metadata"]["finalizers"] == ["example.com/b"]
    assert container(result)["args"] == ["FOREGROUND"]


def test_delete_from_primitive_list_on_a_missing_list_changes_nothing(service: Target) -> None:
    before = service.stored()
    result = service.patch({"metadata": {"$deleteFromPrimitiveList/finalizers": ["a.io/x"]}})
    assert "finalizers" not in result["metadata"]
    assert result["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]


def test_retain_keys_drops_fields_not_listed(deployment: Target) -> None:
    # WHEN the patch switches a volume to emptyDir, retaining only name and emptyDir
    result = deployment.patch(
        containers_patch(
            [],
            volumes=[{"name": "config", "emptyDir": {}, "$retainKeys": ["emptyDir", "name"]}],
        )
    )
    # THEN the configMap source is gone
    assert template_spec(result)["volumes"][1] == {"name": "config", "emptyDir": {}}


def test_retain_keys_must_list_every_patched_key(deployment: Target) -> None:
    status, answer = deployment.refused(
        {"spec": {"strategy": {"type": "Recreate", "$retainKeys": ["rollingUpdate"]}}}
    )
    assert (status, answer["reason"]) == (400, "BadRequest")
    assert answer["message"] == "invalid patch format of retainKeys"


def test_kubectl_rollout_undo_strategic_patch_replaces_the_template(deployment: Target) -> None:
    # WHEN the template of an older revision is written back with $patch: replace
    old_template = {
        "metadata": {"labels": {"app": "green"}},
        "spec": {"containers": [{"name": "web", "image": IMAGE_GREEN}]},
    }
    result = deployment.patch({"spec": {"template": {"$patch": "replace", **old_template}}})
    # THEN the template is exactly the old one (with the server's defaults), nothing merged in
    assert names(template_spec(result)["containers"]) == ["web"]
    assert container(result)["image"] == IMAGE_GREEN
    assert "env" not in container(result)
    assert "volumes" not in template_spec(result)
    assert result["spec"]["replicas"] == 0


def test_patch_delete_of_the_whole_object_leaves_no_name(deployment: Target) -> None:
    status, answer = deployment.refused({"$patch": "delete"})
    assert (status, answer["reason"]) == (400, "BadRequest")
    assert answer["message"] == (
        "the name of the object (green-deployment based on URL) was undeterminable: "
        "name must be provided"
    )


def test_strategic_merge_is_not_served_for_custom_resources(scratch: Kube) -> None:
    # GIVEN an HTTPRoute (a custom resource on a real cluster)
    route = _create(
        scratch,
        "/apis/gateway.networking.k8s.io/v1/namespaces/{ns}/httproutes",
        {
            "apiVersion": "gateway.networking.k8s.io/v1",
            "kind": "HTTPRoute",
            "metadata": {"name": "web"},
            "spec": {"parentRefs": [{"name": "gateway"}]},
        },
    )
    # WHEN it gets a strategic merge patch, THEN it is refused as a media type...
    status, answer = route.refused({"metadata": {"labels": {"a": "b"}}})
    assert (status, answer["reason"]) == (415, "UnsupportedMediaType")
    # ...which a JSON merge patch is not
    assert route.patch({"metadata": {"labels": {"a": "b"}}}, MERGE)["metadata"]["labels"] == {
        "a": "b"
    }


# JSON merge patch (RFC 7386)
# ---------------------------


def test_merge_patch_merges_objects_and_deletes_nulls(deployment: Target) -> None:
    result = deployment.patch({"metadata": {"labels": {"app": "blue", "tier": None}}}, MERGE)
    assert result["metadata"]["labels"] == {"app": "blue"}


def test_merge_patch_replaces_lists_wholesale(deployment: Target) -> None:
    # WHEN a merge patch gives one container, and one finalizer
    result = deployment.patch(
        {
            "metadata": {"finalizers": ["example.com/c"]},
            **containers_patch([{"name": "web", "image": IMAGE_GREEN}]),
        },
        MERGE,
    )
    # THEN each list is exactly the patch's (RFC 7386 has no list merging)
    assert names(template_spec(result)["containers"]) == ["web"]
    assert "env" not in container(result)
    assert result["metadata"]["finalizers"] == ["example.com/c"]


def test_merge_patch_follows_the_rfc_7386_example(scratch: Kube) -> None:
    # GIVEN the example document of RFC 7386 section 3, as fields of a ConfigMap
    target = _create(
        scratch,
        "/api/v1/namespaces/{ns}/configmaps",
        {
            "metadata": {
                "name": "example",
                "annotations": {"title": "Goodbye!", "content": "This will be unchanged"},
                "labels": {"givenName": "John", "familyName": "Doe"},
                "finalizers": ["example.com/example", "example.com/sample"],
            },
        },
    )
    # WHEN the RFC's patch is applied
    result = target.patch(
        {
            "metadata": {
                "annotations": {"title": "Hello!", "phoneNumber": "+01-123-456-7890"},
                "labels": {"familyName": None},
                "finalizers": ["example.com/example"],
            }
        },
        MERGE,
    )
    target.patch({"metadata": {"finalizers": None}}, MERGE)
    # THEN the result is the RFC's
    assert result["metadata"]["annotations"] == {
        "title": "Hello!",
        "content": "This will be unchanged",
        "phoneNumber": "+01-123-456-7890",
    }
    assert result["metadata"]["labels"] == {"givenName": "John"}
    assert result["metadata"]["finalizers"] == ["example.com/example"]


def test_merge_patch_adds_a_new_map_without_its_nulls(configmap: Target) -> None:
    result = configmap.patch({"metadata": {"annotations": {"a": "1", "b": None}}}, MERGE)
    assert result["metadata"]["annotations"] == {"a": "1"}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            [1],
            "error decoding patch: json: cannot unmarshal array into Go value of type "
            "map[string]interface {}",
        ),
        (
            "data",
            "error decoding patch: json: cannot unmarshal string into Go value of type "
            "map[string]interface {}",
        ),
        (None, "Invalid JSON Patch"),
    ],
    ids=["array", "string", "null"],
)
def test_merge_patch_must_be_an_object(configmap: Target, body: Any, message: str) -> None:
    raw = json.dumps(body).encode()
    status, answer = configmap.refused(raw, MERGE)
    assert (status, answer["reason"], answer["message"]) == (400, "BadRequest", message)


def test_a_patch_cannot_rename_the_object(configmap: Target) -> None:
    status, answer = configmap.refused({"metadata": {"name": "other"}}, MERGE)
    assert (status, answer["reason"]) == (400, "BadRequest")
    assert answer["message"] == (
        "the name of the object (other) does not match the name on the URL (canary-env)"
    )


# JSON patch (RFC 6902)
# ---------------------


def test_json_patch_add_remove_replace(configmap: Target) -> None:
    result = configmap.patch(
        [
            {"op": "add", "path": "/data/new", "value": "x"},
            {"op": "replace", "path": "/data/k", "value": "w"},
            {"op": "remove", "path": "/metadata/labels/a"},
        ],
        JSON_PATCH,
    )
    assert result["data"] == {"k": "w", "new": "x"}
    assert "labels" not in result["metadata"]


def test_json_patch_array_operations_and_the_append_marker(deployment: Target) -> None:
    # GIVEN args -D FOREGROUND; WHEN inserting at 1, appending with "-" and removing index 0
    result = deployment.patch(
        [
            {"op": "add", "path": f"{ARGS}/1", "value": "b"},
            {"op": "add", "path": f"{ARGS}/-", "value": "d"},
            {"op": "remove", "path": f"{ARGS}/0"},
        ],
        JSON_PATCH,
    )
    # THEN the array is edited in place
    assert container(result)["args"] == ["b", "FOREGROUND", "d"]


def test_json_patch_move_and_copy(configmap: Target) -> None:
    result = configmap.patch(
        [
            {"op": "copy", "from": "/metadata/labels", "path": "/metadata/annotations"},
            {"op": "move", "from": "/data/k", "path": "/data/moved"},
        ],
        JSON_PATCH,
    )
    assert result["metadata"]["annotations"] == result["metadata"]["labels"] == {"a": "1"}
    assert result["data"] == {"moved": "v"}


def test_json_patch_pointer_escaping(configmap: Target) -> None:
    configmap.patch({"metadata": {"annotations": {"example.com/revision": "1"}}})
    result = configmap.patch(
        [{"op": "replace", "path": "/metadata/annotations/example.com~1revision", "value": "2"}],
        JSON_PATCH,
    )
    assert result["metadata"]["annotations"] == {"example.com/revision": "2"}


def test_json_patch_test_op_passes_and_fails(deployment: Target) -> None:
    # WHEN the test matches, the rest applies
    result = deployment.patch(
        [
            {"op": "test", "path": "/spec/template/spec/containers/0/image", "value": IMAGE_BLUE},
            {
                "op": "replace",
                "path": "/spec/template/spec/containers/0/image",
                "value": IMAGE_GREEN,
            },
        ],
        JSON_PATCH,
    )
    assert container(result)["image"] == IMAGE_GREEN
    # THEN a failing test refuses the whole patch, as does a number of another spelling
    for value in (IMAGE_BLUE, None):
        status, answer = deployment.refused(
            [{"op": "test", "path": "/spec/template/spec/containers/0/image", "value": value}],
            JSON_PATCH,
        )
        assert (status, answer["reason"], answer["message"]) == (422, "Invalid", UNPROCESSABLE)
    deployment.patch(
        [{"op": "test", "path": "/spec/revisionHistoryLimit", "value": 10}], JSON_PATCH
    )
    for other in (10.0, "10", True):
        status, _ = deployment.refused(
            [{"op": "test", "path": "/spec/revisionHistoryLimit", "value": other}], JSON_PATCH
        )
        assert status == 422


@pytest.mark.parametrize(
    "operation",
    [
        {"op": "remove", "path": "/metadata/labels/missing"},
        {"op": "remove", "path": f"{ARGS}/5"},
        {"op": "add", "path": f"{ARGS}/5", "value": "x"},
        {"op": "add", "path": "/metadata/missing/x", "value": "x"},
        {"op": "add", "path": "no-slash", "value": "x"},
        {"op": "replace", "path": f"{ARGS}/2", "value": "x"},
        {"op": "move", "path": "/metadata/labels/a"},
        {"op": "move", "from": "/metadata/labels", "path": "/metadata/labels/x"},
        {"op": "frobnicate", "path": "/metadata/labels/a"},
        {"path": "/metadata/labels/a"},
    ],
    ids=[
        "remove-missing-key",
        "remove-past-the-end",
        "add-past-the-end",
        "add-under-a-missing-parent",
        "path-without-slash",
        "replace-past-the-end",
        "move-without-from",
        "move-into-itself",
        "unknown-op",
        "missing-op",
    ],
)
def test_a_json_patch_operation_that_does_not_apply_is_422(
    deployment: Target, operation: dict[str, Any]
) -> None:
    # GIVEN a patch whose first operation applies and whose second does not
    patch = [{"op": "add", "path": "/metadata/labels/b", "value": "x"}, operation]
    # WHEN / THEN it is refused without saying which, and nothing of it is applied
    status, answer = deployment.refused(patch, JSON_PATCH)
    assert (status, answer["reason"], answer["message"]) == (422, "Invalid", UNPROCESSABLE)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            ["not an object"],
            "json: cannot unmarshal string into Go value of type handlers.jsonPatchOp",
        ),
        (
            [{"op": 1, "path": "/a"}],
            "json: cannot unmarshal number into Go struct field jsonPatchOp.op of type string",
        ),
        (
            {"op": "add"},
            "json: cannot unmarshal object into Go value of type []handlers.jsonPatchOp",
        ),
    ],
    ids=["operation-not-an-object", "op-not-a-string", "not-a-list"],
)
def test_a_json_patch_that_does_not_decode_is_400(
    deployment: Target, body: Any, message: str
) -> None:
    status, answer = deployment.refused(body, JSON_PATCH)
    assert (status, answer["reason"]) == (400, "BadRequest")
    assert answer["message"] == f"error decoding patch: {message}"


def test_json_patch_leniencies_of_the_api_server(deployment: Target) -> None:
    # WHEN operations RFC 6902 forbids are sent: an index with a leading zero, a negative
    # index, a replace of a key that does not exist
    result = deployment.patch(
        [
            {"op": "add", "path": f"{ARGS}/01", "value": "one"},
            {"op": "add", "path": f"{ARGS}/-1", "value": "last"},
            {"op": "remove", "path": f"{ARGS}/-2"},
            {"op": "replace", "path": "/metadata/labels/new", "value": "x"},
        ],
        JSON_PATCH,
    )
    # THEN the API server applies them as its library does
    assert container(result)["args"] == ["-D", "one", "last"]
    assert result["metadata"]["labels"]["new"] == "x"


def test_kubectl_rollout_undo_json_patch_replaces_the_template(deployment: Target) -> None:
    old_template = {
        "metadata": {"labels": {"app": "green"}},
        "spec": {"containers": [{"name": "web", "image": IMAGE_GREEN}]},
    }
    result = deployment.patch(
        [
            {"op": "replace", "path": "/spec/template", "value": old_template},
            {
                "op": "replace",
                "path": "/metadata/annotations",
                "value": {"deployment.kubernetes.io/revision": "3"},
            },
        ],
        JSON_PATCH,
    )
    assert names(template_spec(result)["containers"]) == ["web"]
    assert container(result)["image"] == IMAGE_GREEN
    assert result["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "3"


def test_json_patch_replace_of_the_whole_object_needs_its_name(configmap: Target) -> None:
    status, answer = configmap.refused(
        [{"op": "replace", "path": "", "value": {"data": {"b": "2"}}}], JSON_PATCH
    )
    assert (status, answer["reason"]) == (400, "BadRequest")
    assert answer["message"] == (
        "the name of the object (canary-env based on URL) was undeterminable: name must be provided"
    )
