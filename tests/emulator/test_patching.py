"""The emulator's patch formats: strategic merge, JSON merge (RFC 7386), JSON patch (RFC 6902)."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from local.cluster.patching import PatchError, json_patch, merge_patch, strategic_merge

IMAGE_BLUE = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/wp@sha256:" + "a" * 64
IMAGE_GREEN = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/wp@sha256:" + "b" * 64


def deployment() -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": "green-deployment",
            "labels": {"app": "green", "tier": "web"},
            "finalizers": ["a", "b"],
        },
        "spec": {
            "replicas": 2,
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
                        {"name": "sidecar", "image": "busybox"},
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


def service() -> dict[str, Any]:
    return {
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


def template_spec(obj: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = obj["spec"]["template"]["spec"]
    return spec


def web(obj: dict[str, Any]) -> dict[str, Any]:
    container: dict[str, Any] = template_spec(obj)["containers"][0]
    return container


def containers_patch(containers: list[Any], **extra: Any) -> dict[str, Any]:
    return {"spec": {"template": {"spec": {"containers": containers, **extra}}}}


# Strategic merge: maps, scalars, null, inputs untouched
# -----------------------------------------------------


def test_strategic_merge_merges_maps_recursively_and_replaces_scalars() -> None:
    # GIVEN a Deployment and a patch touching a label and the replica count
    original = deployment()
    patch = {"metadata": {"labels": {"tier": "frontend", "team": "wp"}}, "spec": {"replicas": 3}}

    # WHEN the patch is applied
    result = strategic_merge(original, patch)

    # THEN labels merge key by key and the scalar is replaced, the rest untouched
    assert result["metadata"]["labels"] == {"app": "green", "tier": "frontend", "team": "wp"}
    assert result["spec"]["replicas"] == 3
    assert result["spec"]["template"] == original["spec"]["template"]


def test_strategic_merge_null_deletes_a_key() -> None:
    # GIVEN a Deployment with a tier label
    original = deployment()

    # WHEN a patch sets the label to null and a missing key to null
    result = strategic_merge(original, {"metadata": {"labels": {"tier": None, "absent": None}}})

    # THEN the label is gone and the missing key is not created
    assert result["metadata"]["labels"] == {"app": "green"}


def test_strategic_merge_does_not_mutate_its_inputs() -> None:
    # GIVEN a Deployment and a patch exercising merges, deletes and directives
    original = deployment()
    patch = {
        "metadata": {"labels": {"tier": None}},
        "spec": {
            "template": {
                "spec": {
                    "$setElementOrder/containers": [{"name": "sidecar"}, {"name": "web"}],
                    "containers": [
                        {
                            "name": "web",
                            "image": IMAGE_GREEN,
                            "command": ["wp", "cache", "flush"],
                            "env": [{"name": "X", "value": "1"}],
                        },
                        {"name": "sidecar", "$patch": "delete"},
                    ],
                    "volumes": [{"name": "extra", "emptyDir": {}}],
                }
            }
        },
    }
    original_before, patch_before = copy.deepcopy(original), copy.deepcopy(patch)

    # WHEN the patch is applied and the result then changed
    result = strategic_merge(original, patch)
    web(result)["env"].append({"name": "LATER"})
    web(result)["command"].append("--allow-root")
    result["metadata"]["labels"]["new"] = "x"

    # THEN neither input changed, and the result shares no structure with them
    assert original == original_before
    assert patch == patch_before


def test_strategic_merge_adds_missing_maps_and_lists() -> None:
    # GIVEN a ConfigMap without annotations or data
    original = {"kind": "ConfigMap", "metadata": {"name": "canary-env"}}

    # WHEN a patch adds both, with a null inside the new map
    result = strategic_merge(
        original, {"metadata": {"annotations": {"a": "1", "b": None}}, "data": {"canaryEnv": "{}"}}
    )

    # THEN they are created and the null is not stored
    assert result == {
        "kind": "ConfigMap",
        "metadata": {"name": "canary-env", "annotations": {"a": "1"}},
        "data": {"canaryEnv": "{}"},
    }


# Strategic merge: lists merged by their patch merge key
# ------------------------------------------------------


def test_containers_merge_by_name_keeping_the_other_containers() -> None:
    # GIVEN a Deployment with containers web and sidecar
    original = deployment()

    # WHEN only web's image is patched
    result = strategic_merge(original, containers_patch([{"name": "web", "image": IMAGE_GREEN}]))

    # THEN web keeps every other field and the sidecar is still there
    assert web(result)["image"] == IMAGE_GREEN
    assert web(result)["env"] == web(original)["env"]
    assert [c["name"] for c in template_spec(result)["containers"]] == ["web", "sidecar"]


@pytest.mark.parametrize("field", ["initContainers", "ephemeralContainers"])
def test_init_and_ephemeral_containers_merge_by_name(field: str) -> None:
    # GIVEN a pod spec with two containers in that list
    original = {"spec": {field: [{"name": "a", "image": "x"}, {"name": "b", "image": "y"}]}}

    # WHEN one is patched and a new one added
    result = strategic_merge(
        original, {"spec": {field: [{"name": "b", "image": "z"}, {"name": "c", "image": "w"}]}}
    )

    # THEN they are merged by name
    assert result["spec"][field] == [
        {"name": "a", "image": "x"},
        {"name": "b", "image": "z"},
        {"name": "c", "image": "w"},
    ]


def test_env_merges_by_name() -> None:
    # GIVEN a container with two variables
    original = deployment()

    # WHEN one variable changes and another is added
    patch = containers_patch(
        [
            {
                "name": "web",
                "env": [{"name": "DB_HOST", "value": "db2"}, {"name": "NEW", "value": "1"}],
            }
        ]
    )
    result = strategic_merge(original, patch)

    # THEN the list is merged by name, untouched entries kept in place
    assert web(result)["env"] == [
        {"name": "WP_ENV", "value": "prod"},
        {"name": "DB_HOST", "value": "db2"},
        {"name": "NEW", "value": "1"},
    ]


def test_env_entry_field_set_to_null_is_removed_from_that_entry() -> None:
    # GIVEN a variable with a literal value
    original = deployment()

    # WHEN the patch switches it to valueFrom and nulls value
    patch = containers_patch(
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
    result = strategic_merge(original, patch)

    # THEN the entry has valueFrom only
    assert web(result)["env"][0] == {
        "name": "WP_ENV",
        "valueFrom": {"configMapKeyRef": {"name": "c", "key": "k"}},
    }


def test_container_ports_merge_by_container_port() -> None:
    # GIVEN a container exposing 80 and 443
    original = deployment()

    # WHEN port 443 is renamed and 8080 added
    patch = containers_patch(
        [
            {
                "name": "web",
                "ports": [{"containerPort": 443, "name": "tls"}, {"containerPort": 8080}],
            }
        ]
    )
    result = strategic_merge(original, patch)

    # THEN ports are merged by containerPort
    assert web(result)["ports"] == [
        {"containerPort": 80, "name": "http"},
        {"containerPort": 443, "name": "tls"},
        {"containerPort": 8080},
    ]


def test_service_ports_merge_by_port() -> None:
    # GIVEN a Service with ports 80 and 443
    original = service()

    # WHEN port 80's target changes and 8443 is added
    patch = {"spec": {"ports": [{"port": 80, "targetPort": 8080}, {"port": 8443}]}}
    result = strategic_merge(original, patch)

    # THEN ports are merged by port
    assert result["spec"]["ports"] == [
        {"port": 80, "targetPort": 8080, "name": "http"},
        {"port": 443, "targetPort": 443, "name": "https"},
        {"port": 8443},
    ]


def test_service_selector_switch_merges_the_selector_map() -> None:
    # GIVEN the canary Service selecting blue
    original = service()

    # WHEN the selector is switched to green
    result = strategic_merge(original, {"spec": {"selector": {"app": "green"}}})

    # THEN only the selector changed
    assert result["spec"]["selector"] == {"app": "green"}
    assert result["spec"]["ports"] == original["spec"]["ports"]


def test_volumes_merge_by_name_and_volume_mounts_by_mount_path() -> None:
    # GIVEN a pod template with two volumes mounted in web
    original = deployment()

    # WHEN a volume changes, one is added, and a mount at an existing path is renamed
    patch = containers_patch(
        [
            {
                "name": "web",
                "volumeMounts": [
                    {"name": "cache", "mountPath": "/etc/wp"},
                    {"name": "tmp", "mountPath": "/tmp"},
                ],
            }
        ],
        volumes=[{"name": "config", "configMap": {"name": "wp-config-2"}}, {"name": "tmp"}],
    )
    result = strategic_merge(original, patch)

    # THEN volumes are merged by name and mounts by mountPath
    assert template_spec(result)["volumes"] == [
        {"name": "uploads", "emptyDir": {}},
        {"name": "config", "configMap": {"name": "wp-config-2"}},
        {"name": "tmp"},
    ]
    assert web(result)["volumeMounts"] == [
        {"name": "uploads", "mountPath": "/var/www/uploads"},
        {"name": "cache", "mountPath": "/etc/wp"},
        {"name": "tmp", "mountPath": "/tmp"},
    ]


def test_image_pull_secrets_merge_by_name() -> None:
    # GIVEN a pod template pulling with secret ecr
    original = deployment()

    # WHEN a second secret is patched in
    result = strategic_merge(original, containers_patch([], imagePullSecrets=[{"name": "extra"}]))

    # THEN both secrets are there
    assert template_spec(result)["imagePullSecrets"] == [{"name": "ecr"}, {"name": "extra"}]
    assert template_spec(result)["containers"] == template_spec(original)["containers"]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("tolerations", [{"key": "gpu", "operator": "Exists"}]),
        ("hostAliases", [{"ip": "10.0.0.2", "hostnames": ["cache"]}]),
    ],
)
def test_tolerations_and_host_aliases_are_replaced(field: str, value: list[Any]) -> None:
    # GIVEN a pod template with one entry in the list
    original = deployment()

    # WHEN a patch gives a different entry
    result = strategic_merge(original, containers_patch([], **{field: value}))

    # THEN the list is replaced, not merged
    assert template_spec(result)[field] == value


def test_command_args_and_finalizers_are_replaced_wholesale() -> None:
    # GIVEN a container with a command and args, and an object with finalizers
    original = deployment()

    # WHEN a patch gives new lists
    patch = containers_patch([{"name": "web", "command": ["wp"], "args": ["cache", "flush"]}])
    patch["metadata"] = {"finalizers": ["c"]}
    result = strategic_merge(original, patch)

    # THEN each list is exactly the patch's
    assert web(result)["command"] == ["wp"]
    assert web(result)["args"] == ["cache", "flush"]
    assert result["metadata"]["finalizers"] == ["c"]


def test_a_list_element_without_its_merge_key_is_rejected() -> None:
    # GIVEN a patch whose container lacks a name
    patch = containers_patch([{"image": IMAGE_GREEN}])

    # WHEN / THEN it is rejected, naming the merge key
    with pytest.raises(PatchError, match="merge key 'name'"):
        strategic_merge(deployment(), patch)


def test_a_merge_keyed_list_of_scalars_is_rejected() -> None:
    # GIVEN a patch giving env as plain strings
    patch = containers_patch([{"name": "web", "env": ["A=1"]}])

    # WHEN / THEN it is rejected
    with pytest.raises(PatchError, match="must be an object"):
        strategic_merge(deployment(), patch)


# Strategic merge: directives
# ---------------------------


def test_patch_delete_removes_the_list_element_with_that_key() -> None:
    # GIVEN a Deployment with a sidecar and an env variable
    original = deployment()

    # WHEN the patch deletes the sidecar and one variable
    patch = containers_patch(
        [
            {"name": "sidecar", "$patch": "delete"},
            {"name": "web", "env": [{"name": "DB_HOST", "$patch": "delete"}]},
        ]
    )
    result = strategic_merge(original, patch)

    # THEN both are gone and the rest is untouched
    assert [c["name"] for c in template_spec(result)["containers"]] == ["web"]
    assert web(result)["env"] == [{"name": "WP_ENV", "value": "prod"}]
    assert web(result)["image"] == IMAGE_BLUE


def test_patch_delete_of_a_missing_element_changes_nothing() -> None:
    # GIVEN a Deployment without a container named ghost
    original = deployment()

    # WHEN the patch deletes ghost
    result = strategic_merge(original, containers_patch([{"name": "ghost", "$patch": "delete"}]))

    # THEN the containers are unchanged
    assert result == original


def test_patch_delete_on_a_map_removes_the_map() -> None:
    # GIVEN a Deployment with labels
    original = deployment()

    # WHEN the labels map is deleted with the directive
    result = strategic_merge(original, {"metadata": {"labels": {"$patch": "delete"}}})

    # THEN the labels are gone
    assert "labels" not in result["metadata"]


def test_patch_replace_on_a_map_replaces_it() -> None:
    # GIVEN a Deployment with two labels
    original = deployment()

    # WHEN the labels are replaced
    result = strategic_merge(
        original, {"metadata": {"labels": {"$patch": "replace", "only": "this"}}}
    )

    # THEN only the patch's labels remain
    assert result["metadata"]["labels"] == {"only": "this"}


def test_patch_replace_on_a_merged_list_replaces_it() -> None:
    # GIVEN a container with two env variables
    original = deployment()

    # WHEN env is replaced with the list directive
    patch = containers_patch(
        [{"name": "web", "env": [{"$patch": "replace"}, {"name": "ONLY", "value": "1"}]}]
    )
    result = strategic_merge(original, patch)

    # THEN env holds only the patch's entries and no directive leaks into the object
    assert web(result)["env"] == [{"name": "ONLY", "value": "1"}]


def test_patch_replace_on_one_list_element_replaces_that_element() -> None:
    # GIVEN web with env, ports, mounts
    original = deployment()

    # WHEN web alone is replaced
    patch = containers_patch([{"name": "web", "$patch": "replace", "image": IMAGE_GREEN}])
    result = strategic_merge(original, patch)

    # THEN web is exactly the patch element and sidecar is kept
    assert template_spec(result)["containers"] == [
        {"name": "web", "image": IMAGE_GREEN},
        {"name": "sidecar", "image": "busybox"},
    ]


def test_unknown_patch_value_is_rejected() -> None:
    # GIVEN a patch with $patch: remove (not a Kubernetes directive value)
    patch = {"metadata": {"labels": {"$patch": "remove"}}}

    # WHEN / THEN it is rejected
    with pytest.raises(PatchError, match=r"unknown \$patch value 'remove'"):
        strategic_merge(deployment(), patch)


def test_unknown_directive_is_rejected() -> None:
    # GIVEN a patch with a directive Kubernetes does not know
    patch = containers_patch([], **{"$mergeEverything": True})

    # WHEN / THEN it is rejected, naming the directive and where it is
    with pytest.raises(PatchError, match=r"unknown directive '\$mergeEverything'"):
        strategic_merge(deployment(), patch)


def test_kubectl_set_image_patch_changes_the_image_only() -> None:
    # GIVEN a Deployment with a single container web
    original = deployment()
    template_spec(original)["containers"].pop()

    # WHEN the patch kubectl set image sends is applied
    patch = {
        "spec": {
            "template": {
                "spec": {
                    "$setElementOrder/containers": [{"name": "web"}],
                    "containers": [{"image": IMAGE_GREEN, "name": "web"}],
                }
            }
        }
    }
    result = strategic_merge(original, patch)

    # THEN only the image changed and no directive is stored
    expected = copy.deepcopy(original)
    web(expected)["image"] = IMAGE_GREEN
    assert result == expected


def test_set_element_order_reorders_the_merged_list() -> None:
    # GIVEN containers web then sidecar
    original = deployment()

    # WHEN a patch adds a third container and orders them
    patch = containers_patch(
        [{"name": "log", "image": "fluent"}],
        **{"$setElementOrder/containers": [{"name": "log"}, {"name": "sidecar"}, {"name": "web"}]},
    )
    result = strategic_merge(original, patch)

    # THEN the list follows the given order
    assert [c["name"] for c in template_spec(result)["containers"]] == ["log", "sidecar", "web"]


def test_set_element_order_keeps_unnamed_elements_in_their_slots() -> None:
    # GIVEN env a, b, c where b was added by someone else
    original = {"spec": {"containers": [{"name": "w", "env": [{"name": n} for n in "abc"]}]}}

    # WHEN a patch orders only c and a
    patch = {
        "spec": {
            "containers": [{"name": "w", "$setElementOrder/env": [{"name": "c"}, {"name": "a"}]}]
        }
    }
    result = strategic_merge(original, patch)

    # THEN b keeps its slot and c, a fill the others in order
    assert [e["name"] for e in result["spec"]["containers"][0]["env"]] == ["c", "b", "a"]


def test_set_element_order_of_primitive_list() -> None:
    # GIVEN finalizers a, b
    original = deployment()

    # WHEN the order is set to b, a
    result = strategic_merge(original, {"metadata": {"$setElementOrder/finalizers": ["b", "a"]}})

    # THEN the list is reordered
    assert result["metadata"]["finalizers"] == ["b", "a"]


def test_set_element_order_must_name_merge_keys() -> None:
    # GIVEN an order list without the merge key
    patch = containers_patch([], **{"$setElementOrder/containers": [{"image": "x"}]})

    # WHEN / THEN it is rejected
    with pytest.raises(PatchError, match="setElementOrder"):
        strategic_merge(deployment(), patch)


def test_delete_from_primitive_list_removes_values() -> None:
    # GIVEN finalizers a, b and args -D FOREGROUND
    original = deployment()

    # WHEN the directive removes a finalizer and an arg
    patch = containers_patch([{"name": "web", "$deleteFromPrimitiveList/args": ["-D"]}])
    patch["metadata"] = {"$deleteFromPrimitiveList/finalizers": ["a", "missing"]}
    result = strategic_merge(original, patch)

    # THEN only those values are gone
    assert result["metadata"]["finalizers"] == ["b"]
    assert web(result)["args"] == ["FOREGROUND"]


def test_delete_from_primitive_list_on_a_missing_list_changes_nothing() -> None:
    # GIVEN an object without finalizers
    original = service()

    # WHEN the directive names finalizers
    result = strategic_merge(original, {"metadata": {"$deleteFromPrimitiveList/finalizers": ["a"]}})

    # THEN nothing is created
    assert result == original


def test_retain_keys_drops_fields_not_listed() -> None:
    # GIVEN a volume backed by a ConfigMap
    original = deployment()

    # WHEN the patch switches it to emptyDir, retaining only name and emptyDir
    patch = containers_patch(
        [],
        volumes=[{"name": "config", "emptyDir": {}, "$retainKeys": ["emptyDir", "name"]}],
    )
    result = strategic_merge(original, patch)

    # THEN the configMap source is gone
    assert template_spec(result)["volumes"][1] == {"name": "config", "emptyDir": {}}


def test_retain_keys_must_list_every_patched_key() -> None:
    # GIVEN a patch setting a key its $retainKeys does not list
    patch = {"spec": {"strategy": {"type": "Recreate", "$retainKeys": ["rollingUpdate"]}}}

    # WHEN / THEN it is rejected
    with pytest.raises(PatchError, match=r"'type'.*\$retainKeys"):
        strategic_merge(deployment(), patch)


def test_kubectl_rollout_undo_strategic_patch_replaces_the_template() -> None:
    # GIVEN a Deployment whose template runs the green image with env and a sidecar
    original = deployment()
    old_template = {
        "metadata": {"labels": {"app": "green"}},
        "spec": {"containers": [{"name": "web", "image": IMAGE_BLUE}]},
    }

    # WHEN the template of an older revision is written back with $patch: replace
    patch = {"spec": {"template": {"$patch": "replace", **old_template}}}
    result = strategic_merge(original, patch)

    # THEN the template is exactly the old one, nothing merged in
    assert result["spec"]["template"] == old_template
    assert result["spec"]["replicas"] == 2


def test_patch_delete_of_the_whole_object_is_rejected() -> None:
    # WHEN / THEN deleting the root through the directive is rejected
    with pytest.raises(PatchError, match="whole object"):
        strategic_merge(deployment(), {"$patch": "delete"})


# JSON merge patch (RFC 7386)
# ---------------------------


def test_merge_patch_merges_objects_and_deletes_nulls() -> None:
    # GIVEN a Deployment
    original = deployment()
    before = copy.deepcopy(original)

    # WHEN a merge patch changes a label, deletes one and sets replicas
    result = merge_patch(original, {"metadata": {"labels": {"app": "blue", "tier": None}}})

    # THEN the labels merged, the original untouched
    assert result["metadata"]["labels"] == {"app": "blue"}
    assert original == before


def test_merge_patch_replaces_lists_wholesale() -> None:
    # GIVEN a Deployment with two containers
    original = deployment()

    # WHEN a merge patch gives one container
    result = merge_patch(original, containers_patch([{"name": "web", "image": IMAGE_GREEN}]))

    # THEN the list is exactly the patch's (RFC 7386 has no list merging)
    assert template_spec(result)["containers"] == [{"name": "web", "image": IMAGE_GREEN}]


def test_merge_patch_rfc7386_examples() -> None:
    # GIVEN the example of RFC 7386 section 3
    original = {
        "title": "Goodbye!",
        "author": {"givenName": "John", "familyName": "Doe"},
        "tags": ["example", "sample"],
        "content": "This will be unchanged",
    }
    patch = {
        "title": "Hello!",
        "phoneNumber": "+01-123-456-7890",
        "author": {"familyName": None},
        "tags": ["example"],
    }

    # WHEN it is applied
    result = merge_patch(original, patch)

    # THEN the result is the RFC's
    assert result == {
        "title": "Hello!",
        "author": {"givenName": "John"},
        "tags": ["example"],
        "content": "This will be unchanged",
        "phoneNumber": "+01-123-456-7890",
    }
    # and a map replaces a scalar, with nulls inside the new map dropped
    assert merge_patch({"a": "b"}, {"a": {"bb": {"ccc": None}}}) == {"a": {"bb": {}}}


def test_merge_patch_does_not_alias_patch_values() -> None:
    # GIVEN a patch carrying a list
    patch: dict[str, Any] = {"data": {"items": [1, 2]}}

    # WHEN the result is changed after applying
    result = merge_patch({}, patch)
    result["data"]["items"].append(3)

    # THEN the patch is unchanged
    assert patch == {"data": {"items": [1, 2]}}


def test_merge_patch_rejects_a_non_object_patch() -> None:
    # WHEN / THEN a top-level array is rejected
    with pytest.raises(PatchError, match="JSON object"):
        merge_patch({}, [1])  # type: ignore[arg-type]


# JSON patch (RFC 6902)
# ---------------------


def test_json_patch_add_remove_replace() -> None:
    # GIVEN a ConfigMap
    original = {"metadata": {"name": "cm", "labels": {"a": "1"}}, "data": {"k": "v"}}
    before = copy.deepcopy(original)

    # WHEN add, replace and remove run in order
    result = json_patch(
        original,
        [
            {"op": "add", "path": "/data/new", "value": "x"},
            {"op": "replace", "path": "/data/k", "value": "w"},
            {"op": "remove", "path": "/metadata/labels/a"},
        ],
    )

    # THEN each applied and the input is untouched
    assert result == {"metadata": {"name": "cm", "labels": {}}, "data": {"k": "w", "new": "x"}}
    assert original == before


def test_json_patch_array_operations_and_append_marker() -> None:
    # GIVEN a container's args
    original = {"args": ["a", "c"]}

    # WHEN inserting at 1, appending with "-" and removing index 0
    result = json_patch(
        original,
        [
            {"op": "add", "path": "/args/1", "value": "b"},
            {"op": "add", "path": "/args/-", "value": "d"},
            {"op": "remove", "path": "/args/0"},
        ],
    )

    # THEN the array is edited in place
    assert result == {"args": ["b", "c", "d"]}


def test_json_patch_move_and_copy() -> None:
    # GIVEN an object with two fields
    original = {"a": {"x": 1}, "b": [1, 2]}

    # WHEN a value is copied and another moved
    result = json_patch(
        original,
        [
            {"op": "copy", "from": "/a", "path": "/c"},
            {"op": "move", "from": "/b/0", "path": "/a/y"},
        ],
    )

    # THEN the copy is independent and the move removed the source
    assert result == {"a": {"x": 1, "y": 1}, "b": [2], "c": {"x": 1}}


def test_json_patch_move_into_own_child_is_rejected() -> None:
    # WHEN / THEN moving a value into itself fails
    with pytest.raises(PatchError, match="own children"):
        json_patch({"a": {"b": 1}}, [{"op": "move", "from": "/a", "path": "/a/b/c"}])


def test_json_patch_pointer_escaping() -> None:
    # GIVEN annotations whose keys contain '/' and '~'
    original = {"metadata": {"annotations": {"deployment.kubernetes.io/revision": "1"}}}

    # WHEN patched through ~1 and ~0 escapes
    result = json_patch(
        original,
        [
            {
                "op": "replace",
                "path": "/metadata/annotations/deployment.kubernetes.io~1revision",
                "value": "2",
            },
            {"op": "add", "path": "/metadata/annotations/a~0b", "value": "t"},
            {"op": "add", "path": "/metadata/annotations/x~01", "value": "u"},
        ],
    )

    # THEN the keys are the unescaped ones, "~01" decoding to "~1"
    assert result["metadata"]["annotations"] == {
        "deployment.kubernetes.io/revision": "2",
        "a~b": "t",
        "x~1": "u",
    }


def test_json_patch_test_op_passes_and_fails() -> None:
    # GIVEN a Deployment image
    original = {"spec": {"image": IMAGE_BLUE, "replicas": 1, "paused": True}}

    # WHEN the test matches, the rest applies
    result = json_patch(
        original,
        [
            {"op": "test", "path": "/spec/image", "value": IMAGE_BLUE},
            {"op": "replace", "path": "/spec/image", "value": IMAGE_GREEN},
        ],
    )
    assert result["spec"]["image"] == IMAGE_GREEN

    # THEN a failing test aborts with the op named, and true is not 1
    with pytest.raises(PatchError, match=r"json patch op 0 \(test /spec/image\): test failed"):
        json_patch(original, [{"op": "test", "path": "/spec/image", "value": IMAGE_GREEN}])
    with pytest.raises(PatchError, match="test failed"):
        json_patch(original, [{"op": "test", "path": "/spec/paused", "value": 1}])
    json_patch(original, [{"op": "test", "path": "/spec/replicas", "value": 1.0}])


def test_json_patch_missing_path_names_the_operation() -> None:
    # GIVEN a patch whose third op replaces a path that does not exist
    operations = [
        {"op": "add", "path": "/a", "value": 1},
        {"op": "test", "path": "/a", "value": 1},
        {"op": "replace", "path": "/spec/x", "value": 2},
    ]

    # WHEN / THEN the error names the op, its path and the reason
    with pytest.raises(PatchError, match=r"^json patch op 2 \(replace /spec/x\): path not found$"):
        json_patch({}, operations)


@pytest.mark.parametrize(
    ("operation", "reason"),
    [
        ({"op": "remove", "path": "/missing"}, "path not found"),
        ({"op": "remove", "path": "/list/5"}, "path not found"),
        ({"op": "add", "path": "/list/5", "value": 1}, "out of range"),
        ({"op": "add", "path": "/list/01", "value": 1}, "invalid array index"),
        ({"op": "add", "path": "/missing/x", "value": 1}, "path not found"),
        ({"op": "add", "path": "no-slash", "value": 1}, "must start with '/'"),
        ({"op": "add", "path": "/a~2", "value": 1}, "escaped"),
        ({"op": "add", "path": "/a"}, "missing 'value'"),
        ({"op": "move", "path": "/a"}, "missing 'from'"),
        ({"op": "frobnicate", "path": "/a"}, "unknown or missing op"),
        ({"path": "/a"}, "unknown or missing op"),
        ("not an object", "must be a JSON object"),
    ],
)
def test_json_patch_rejects_bad_operations(operation: Any, reason: str) -> None:
    # GIVEN an object with a short list
    original = {"list": [1, 2]}

    # WHEN / THEN the bad operation is rejected with its reason, and the input is intact
    with pytest.raises(PatchError, match=reason):
        json_patch(original, [operation])
    assert original == {"list": [1, 2]}


def test_json_patch_failure_applies_nothing() -> None:
    # GIVEN an object and a patch whose second op fails
    original = {"a": 1}

    # WHEN it is applied
    with pytest.raises(PatchError):
        json_patch(
            original, [{"op": "add", "path": "/b", "value": 2}, {"op": "remove", "path": "/c"}]
        )

    # THEN the first op did not leak into the input
    assert original == {"a": 1}


def test_json_patch_rejects_a_non_list_patch() -> None:
    # WHEN / THEN an object instead of an array of operations is rejected
    with pytest.raises(PatchError, match="array of operations"):
        json_patch({}, {"op": "add"})  # type: ignore[arg-type]


def test_kubectl_rollout_undo_json_patch_replaces_the_template() -> None:
    # GIVEN a Deployment on the green image
    original = deployment()
    old_template: dict[str, Any] = {
        "metadata": {"labels": {"app": "green"}},
        "spec": {"containers": [{"name": "web", "image": IMAGE_BLUE}]},
    }

    # WHEN the JSON patch rollout undo sends is applied
    operations = [
        {"op": "replace", "path": "/spec/template", "value": old_template},
        {
            "op": "replace",
            "path": "/metadata/annotations",
            "value": {"deployment.kubernetes.io/revision": "3"},
        },
    ]
    original["metadata"]["annotations"] = {"deployment.kubernetes.io/revision": "2"}
    result = json_patch(original, operations)

    # THEN the template is the old one and the value is not shared with the patch
    assert result["spec"]["template"] == old_template
    assert result["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "3"
    result["spec"]["template"]["spec"]["containers"][0]["image"] = "changed"
    assert old_template["spec"]["containers"][0]["image"] == IMAGE_BLUE


def test_json_patch_replace_of_the_root() -> None:
    # WHEN the whole document is replaced
    result = json_patch({"a": 1}, [{"op": "replace", "path": "", "value": {"b": 2}}])

    # THEN the result is the new document
    assert result == {"b": 2}
