"""deploy/kubernetes/rbac.yaml fits the template: its names, namespace and group.

That the Role grants exactly what the product calls is proven against the real
authorizer, in tests/kube/test_rbac.py.
"""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from tests.template.cfn import ROOT, load_template, parameter_defaults

MANIFEST = ROOT / "deploy" / "kubernetes" / "rbac.yaml"


@pytest.fixture(scope="module")
def documents() -> dict[str, dict[str, Any]]:
    loaded = [doc for doc in yaml.safe_load_all(MANIFEST.read_text()) if doc]
    kinds = [doc["kind"] for doc in loaded]
    assert sorted(kinds) == ["Role", "RoleBinding"], "namespaced objects only, one of each"
    return {doc["kind"]: doc for doc in loaded}


def test_the_configmap_rule_is_limited_to_the_canary_configmap(
    documents: dict[str, dict[str, Any]],
) -> None:
    # GIVEN the template's ConfigMap name
    defaults = parameter_defaults(load_template())

    # WHEN the configmaps rule is found
    (rule,) = [r for r in documents["Role"]["rules"] if "configmaps" in r["resources"]]

    # THEN it names that one ConfigMap
    assert rule["resourceNames"] == [defaults["ConfigMapName"]]


def test_binding_ties_the_role_to_the_access_entries_group_in_the_apps_namespace(
    documents: dict[str, dict[str, Any]],
) -> None:
    # GIVEN the template's namespace and Kubernetes group defaults
    defaults = parameter_defaults(load_template())
    role, binding = documents["Role"], documents["RoleBinding"]

    # THEN both objects live in the namespace, and the binding gives the Role to the group
    assert role["metadata"]["namespace"] == defaults["Namespace"]
    assert binding["metadata"]["namespace"] == defaults["Namespace"]
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "Role",
        "name": role["metadata"]["name"],
    }
    assert binding["subjects"] == [
        {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "Group",
            "name": defaults["KubernetesGroup"],
        }
    ]


def test_every_rule_says_which_operation_needs_it() -> None:
    # GIVEN the manifest's text
    lines = MANIFEST.read_text().splitlines()

    # WHEN the line before each rule is read
    before_rules = [lines[i - 1].strip() for i, line in enumerate(lines) if "- apiGroups:" in line]

    # THEN each rule is preceded by its comment
    assert before_rules
    assert all(line.startswith("#") for line in before_rules), before_rules
