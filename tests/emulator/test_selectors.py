"""Label selectors, field selectors and structured LabelSelectors as the API server evaluates them.

Every test runs on the emulator and on the real control plane: list queries
with ``labelSelector`` / ``fieldSelector`` (what the product sends for pods and
Events, what kubectl sends for ``-l``), their refusals word for word, and the
``spec.selector`` of a Deployment, which the server checks against the pod
template's labels when the Deployment is created (a dry run here).
"""

from __future__ import annotations

import json
import os
import urllib.parse
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client

from local.cluster import Clock, ClusterEmulator
from tests.backends import BACKENDS, kube_backend
from tests.emulator.conftest import NAMESPACE, Kube, connect

LABELS: dict[str, dict[str, str]] = {
    "blue-web": {"app": "blue", "tier": "web", "env": "prod"},
    "green-web": {"app": "green", "tier": "web", "env": "staging"},
    "green-bare": {"app": "green"},
    "empty-app": {"app": ""},
    "unlabelled": {},
    "prefixed": {"app.kubernetes.io/name": "wordpress"},
    "unprefixed": {"name": "wordpress"},
    "rev-10": {"revision": "10"},
    "rev-2": {"revision": "2"},
    "rev-1": {"revision": "1"},
    "rev-x": {"revision": "x"},
}
ALL = {*LABELS, "kube-root-ca.crt"}
"""The ConfigMaps of the namespace: ours, and the one every namespace has."""


def _but(*names: str) -> set[str]:
    return ALL - set(names)


@pytest.fixture(scope="module", params=BACKENDS)
def labelled(request: pytest.FixtureRequest) -> Iterator[Kube]:
    """A namespace holding a ConfigMap for each entry of ``LABELS``, shared by the module's
    tests, which only read it (or dry-run writes into it)."""
    manifests = [{"metadata": {"name": name, "labels": labels}} for name, labels in LABELS.items()]
    if request.param == "emulator":
        with ClusterEmulator(seed=None, clock=Clock.instant()) as emulator:
            emulator.apply(
                {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}}
            )
            kube = connect(emulator)
            for manifest in manifests:
                kube.core.create_namespaced_config_map(NAMESPACE, manifest)
            yield kube
            kube.api.close()
        return
    plane = request.getfixturevalue("control_plane")
    name = f"sel{os.getpid()}"
    with plane.admin_client() as api:
        core = client.CoreV1Api(api)
        core.create_namespace({"metadata": {"name": name}})
        for manifest in manifests:
            core.create_namespaced_config_map(name, manifest)
        kube = Kube(
            kube_backend(plane, name, api),
            api,
            core,
            client.AppsV1Api(api),
            client.BatchV1Api(api),
            name,
        )
        # The root CA ConfigMap is published by a controller, a moment after the namespace.
        kube.eventually("kube-root-ca.crt", lambda: kube.get("configmaps", "kube-root-ca.crt"))
        yield kube
        core.delete_namespace(name, _preload_content=False)


def _list(kube: Kube, resource: str, **query: str) -> tuple[int, Any]:
    path = f"/api/v1/namespaces/{{ns}}/{resource}"
    if resource in {"deployments", "replicasets"}:
        path = f"/apis/apps/v1/namespaces/{{ns}}/{resource}"
    elif resource == "jobs":
        path = f"/apis/batch/v1/namespaces/{{ns}}/{resource}"
    status, _, raw = kube.raw("GET", f"{path}?{urllib.parse.urlencode(query)}")
    return status, json.loads(raw)


def _names(kube: Kube, resource: str = "configmaps", **query: str) -> set[str]:
    status, answer = _list(kube, resource, **query)
    assert status == 200, answer
    return {item["metadata"]["name"] for item in answer["items"]}


def _refusal(kube: Kube, resource: str = "configmaps", **query: str) -> str:
    status, answer = _list(kube, resource, **query)
    assert (status, answer["reason"]) == (400, "BadRequest"), answer
    message: str = answer["message"]
    return message


# labelSelector query strings
# ---------------------------


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("", ALL),
        ("   ", ALL),
        ("app=blue", {"blue-web"}),
        ("app==blue", {"blue-web"}),
        ("app = blue", {"blue-web"}),
        ("app!=blue", _but("blue-web")),
        ("app=", {"empty-app"}),
        ("env in (prod,staging)", {"blue-web", "green-web"}),
        ("env in ( prod , staging )", {"blue-web", "green-web"}),
        ("env notin (prod)", _but("blue-web")),
        ("tier", {"blue-web", "green-web"}),
        ("!tier", _but("blue-web", "green-web")),
        ("app=green,tier", {"green-web"}),
        ("app=green,!tier", {"green-bare"}),
        ("app in (blue,green),env!=staging,tier", {"blue-web"}),
        ("app=blue,app=green", set()),
        ("tier,env notin (prod,staging)", set()),
        ("app in ()", {"empty-app"}),
        ("app notin ()", _but("empty-app")),
        ("app in (,blue)", {"empty-app", "blue-web"}),
        ("app.kubernetes.io/name=wordpress", {"prefixed"}),
        ("name=wordpress", {"unprefixed"}),
        ("revision>2", {"rev-10"}),
        ("revision<2", {"rev-1"}),
    ],
)
def test_label_selector_selects_like_the_api_server(
    labelled: Kube, expr: str, expected: set[str]
) -> None:
    assert _names(labelled, labelSelector=expr) == expected


_NAME_RULE = (
    "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an "
    "alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for "
    "validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"
)
_VALUE_RULE = (
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or "
    "'.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or "
    "'my_value',  or '12345', regex used for validation is "
    "'(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"
)
_PARSE = "unable to parse requirement: "


@pytest.mark.parametrize(
    ("expr", "message"),
    [
        ("app in (blue", f"{_PARSE}found '', expected: ',' or ')'"),
        ("app in blue", f"{_PARSE}found 'blue' expected: '('"),
        ("app in", f"{_PARSE}found '' expected: '('"),
        ("app=blue green", "found 'green', expected: ',' or 'end of string'"),
        ("app=blue,", "found '', expected: identifier after ','"),
        (",app", "found ',', expected: !, identifier, or 'end of string'"),
        ("!", f"{_PARSE}found '', expected: identifier"),
        ("app=(blue)", f"{_PARSE}found '(', expected: identifier"),
        ("app=-blue", f'{_PARSE}values[0][app]: Invalid value: "-blue": {_VALUE_RULE}'),
        (
            "app=" + "x" * 64,
            f'{_PARSE}values[0][app]: Invalid value: "{"x" * 64}": must be no more than 63 bytes',
        ),
        ("-app=blue", f'{_PARSE}<nil>: Invalid value: "-app": name part {_NAME_RULE}'),
        (
            "Bad_Prefix/app=blue",
            f'{_PARSE}<nil>: Invalid value: "Bad_Prefix/app": prefix part a lowercase RFC 1123 '
            "subdomain must consist of lower case alphanumeric characters, '-' or '.', and must "
            "start and end with an alphanumeric character (e.g. 'example.com', regex used for "
            r"validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')",
        ),
        ("/app", f'{_PARSE}<nil>: Invalid value: "/app": prefix part must be non-empty'),
        (
            "revision>two",
            f"{_PARSE}values[0]: Invalid value: \"two\": for 'Gt', 'Lt' operators, the value "
            "must be an integer",
        ),
    ],
)
def test_an_invalid_label_selector_is_400_saying_what_is_wrong(
    labelled: Kube, expr: str, message: str
) -> None:
    assert _refusal(labelled, labelSelector=expr) == message


# fieldSelector query strings
# ---------------------------


def test_field_selectors_on_names_with_escapes(labelled: Kube) -> None:
    assert _names(labelled, fieldSelector="metadata.name=blue-web") == {"blue-web"}
    assert _names(labelled, fieldSelector="metadata.name==blue-web") == {"blue-web"}
    assert _names(labelled, fieldSelector="metadata.name!=blue-web") == _but("blue-web")
    assert _names(labelled, fieldSelector=f"metadata.namespace={labelled.namespace}") == ALL
    assert _names(labelled, fieldSelector="metadata.namespace!=default") == ALL
    assert _names(labelled, fieldSelector=r"metadata.name=a\,b\=c") == set()
    both = {"fieldSelector": "metadata.name!=blue-web", "labelSelector": "tier"}
    assert _names(labelled, **both) == {"green-web"}


@pytest.mark.parametrize(
    ("expr", "message"),
    [
        ("metadata.name", "invalid selector: 'metadata.name'; can't understand 'metadata.name'"),
        ("metadata.name=a=b", "invalid field selector: unescaped character in value: 61"),
        (r"metadata.name=a\x", r"invalid field selector: invalid escape sequence: \x"),
        (
            "metadata.name=x,status.phase",
            "invalid selector: 'metadata.name=x,status.phase'; can't understand 'status.phase'",
        ),
    ],
)
def test_an_invalid_field_selector_is_400_saying_what_is_wrong(
    labelled: Kube, expr: str, message: str
) -> None:
    assert _refusal(labelled, fieldSelector=expr) == message


_ONLY_META = 'is not a known field selector: only "metadata.name", "metadata.namespace"'


@pytest.mark.parametrize(
    ("resource", "expr", "message"),
    [
        ("configmaps", "data.x=1", f'"data.x" {_ONLY_META}'),
        ("configmaps", "=x", f'"" {_ONLY_META}'),
        ("deployments", "spec.paused=true", f'"spec.paused" {_ONLY_META}'),
        ("replicasets", "status.replicas=2", f'"status.replicas" {_ONLY_META}'),
        ("pods", "data.x=1", "field label not supported: data.x"),
        ("events", "message=x", "field label not supported: message"),
        ("jobs", "spec.suspend=false", 'field label "spec.suspend" not supported for Job'),
    ],
)
def test_each_kind_has_its_own_field_labels(
    labelled: Kube, resource: str, expr: str, message: str
) -> None:
    assert _refusal(labelled, resource, fieldSelector=expr) == message


def test_service_fields_are_selectable(scratch: Kube) -> None:
    scratch.json(
        "POST",
        "/api/v1/namespaces/{ns}/services",
        {"metadata": {"name": "web"}, "spec": {"ports": [{"port": 80}]}},
    )
    assert _names(scratch, "services", fieldSelector="spec.type=ClusterIP") == {"web"}
    assert _names(scratch, "services", fieldSelector="spec.clusterIP=None") == set()


def _pod(name: str, **spec: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": name},
        "spec": {"containers": [{"name": "main", "image": "busybox:1.37"}], **spec},
    }


def test_pod_fields_select_by_phase_node_and_policy(scratch: Kube) -> None:
    # GIVEN a pod that runs, one that ran to completion, and one no node can hold
    finished = _pod("finished", restartPolicy="Never")
    finished["spec"]["containers"][0]["command"] = ["true"]
    pending = _pod("pending")
    pending["spec"]["containers"][0]["resources"] = {"requests": {"cpu": "1000"}}
    for manifest in (_pod("running"), finished, pending):
        scratch.json("POST", "/api/v1/namespaces/{ns}/pods", manifest)

    def phases() -> dict[str, str]:
        pods = scratch.backend.list("pods")
        return {p["metadata"]["name"]: p.get("status", {}).get("phase", "") for p in pods}

    wanted = {"running": "Running", "finished": "Succeeded", "pending": "Pending"}
    scratch.eventually("the pods in their phases", lambda: phases() == wanted)

    # WHEN pods are listed by field, THEN each selector picks its pods
    def pick(expr: str) -> set[str]:
        return _names(scratch, "pods", fieldSelector=expr)

    assert pick("status.phase=Running") == {"running"}
    assert pick("status.phase!=Running") == {"finished", "pending"}
    assert pick("spec.nodeName=") == {"pending"}
    assert pick("spec.nodeName!=") == {"running", "finished"}
    assert pick("spec.restartPolicy=Never") == {"finished"}
    assert pick("spec.hostNetwork=false") == {"running", "finished", "pending"}
    assert pick("status.phase!=Running,spec.nodeName!=") == {"finished"}


def test_job_successful_counts_as_text(scratch: Kube) -> None:
    for name, command in (("works", ["true"]), ("fails", ["false"])):
        scratch.json(
            "POST",
            "/apis/batch/v1/namespaces/{ns}/jobs",
            {
                "metadata": {"name": name},
                "spec": {
                    "backoffLimit": 0,
                    "template": {
                        "spec": {
                            "restartPolicy": "Never",
                            "containers": [{"name": "c", "image": "x:1", "command": command}],
                        }
                    },
                },
            },
        )

    def finished() -> bool:
        jobs = scratch.backend.list("jobs")
        return len(jobs) == 2 and all(
            any(c["status"] == "True" for c in j.get("status", {}).get("conditions", []))
            for j in jobs
        )

    scratch.eventually("both Jobs finished", finished)
    assert _names(scratch, "jobs", fieldSelector="status.successful=1") == {"works"}
    assert _names(scratch, "jobs", fieldSelector="status.successful=0") == {"fails"}


def test_event_fields_the_product_selects_warnings_by(scratch: Kube) -> None:
    # GIVEN Events about a pod and a Deployment, warnings and not
    def event(name: str, kind: str, kind_of_event: str, reason: str) -> dict[str, Any]:
        return {
            "metadata": {"name": name},
            "involvedObject": {"kind": kind, "name": "x", "namespace": scratch.namespace},
            "reason": reason,
            "message": "m",
            "type": kind_of_event,
            "source": {"component": "kubelet" if kind == "Pod" else "deployment-controller"},
        }

    for manifest in (
        event("pod-warning", "Pod", "Warning", "BackOff"),
        event("pod-normal", "Pod", "Normal", "Pulled"),
        event("deployment-warning", "Deployment", "Warning", "FailedCreate"),
    ):
        scratch.json("POST", "/api/v1/namespaces/{ns}/events", manifest)

    # WHEN they are listed by field, THEN the product's selector picks the pod's warnings
    def pick(expr: str) -> set[str]:
        return _names(scratch, "events", fieldSelector=expr)

    assert pick("involvedObject.kind=Pod,type=Warning") == {"pod-warning"}
    assert pick("reason=FailedCreate") == {"deployment-warning"}
    assert pick("source=kubelet") == {"pod-warning", "pod-normal"}
    assert pick("involvedObject.name=x,type!=Warning") == {"pod-normal"}


# Structured LabelSelector (spec.selector), judged against the template's labels
# -------------------------------------------------------------------------------

BLUE_WEB, GREEN_WEB = LABELS["blue-web"], LABELS["green-web"]
GREEN_BARE, EMPTY_APP, UNLABELLED = LABELS["green-bare"], LABELS["empty-app"], LABELS["unlabelled"]
TEMPLATES = {
    "blue-web": BLUE_WEB,
    "green-web": GREEN_WEB,
    "green-bare": GREEN_BARE,
    "empty-app": EMPTY_APP,
    "unlabelled": UNLABELLED,
}


def _dry_create(kube: Kube, selector: Any, labels: dict[str, str]) -> tuple[int, dict[str, Any]]:
    manifest = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "selected"},
        "spec": {
            "replicas": 0,
            "selector": selector,
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "c", "image": "x:1"}]},
            },
        },
    }
    status, _, raw = kube.raw(
        "POST", "/apis/apps/v1/namespaces/{ns}/deployments?dryRun=All", manifest
    )
    answer: dict[str, Any] = json.loads(raw)
    return status, answer


def _accepted(kube: Kube, selector: dict[str, Any]) -> set[str]:
    """The templates whose labels the selector selects (a Deployment with it is accepted)."""
    accepted = set()
    for name, labels in TEMPLATES.items():
        status, answer = _dry_create(kube, selector, labels)
        if status == 201:
            accepted.add(name)
        else:
            assert status == 422, answer
            shown = json.dumps(labels, sort_keys=True, separators=(",", ":"))
            assert answer["details"]["causes"] == [
                {
                    "reason": "FieldValueInvalid",
                    "message": f"Invalid value: {shown}: "
                    "`selector` does not match template `labels`",
                    "field": "spec.template.metadata.labels",
                }
            ]
    return accepted


def test_match_labels_requires_every_pair(labelled: Kube) -> None:
    assert _accepted(labelled, {"matchLabels": {"app": "green"}}) == {"green-web", "green-bare"}
    assert _accepted(labelled, {"matchLabels": {"app": "green", "tier": "web"}}) == {"green-web"}


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ({"key": "env", "operator": "In", "values": ["prod", "dev"]}, {"blue-web"}),
        (
            {"key": "env", "operator": "NotIn", "values": ["prod"]},
            {"green-web", "green-bare", "empty-app", "unlabelled"},
        ),
        ({"key": "tier", "operator": "Exists"}, {"blue-web", "green-web"}),
        (
            {"key": "tier", "operator": "DoesNotExist"},
            {"green-bare", "empty-app", "unlabelled"},
        ),
    ],
    ids=["In", "NotIn", "Exists", "DoesNotExist"],
)
def test_match_expressions_operators(
    labelled: Kube, expression: dict[str, Any], expected: set[str]
) -> None:
    assert _accepted(labelled, {"matchExpressions": [expression]}) == expected


def test_match_labels_and_expressions_combine_with_and(labelled: Kube) -> None:
    selector = {
        "matchLabels": {"app": "green"},
        "matchExpressions": [{"key": "tier", "operator": "Exists"}],
    }
    assert _accepted(labelled, selector) == {"green-web"}


def test_an_empty_selector_is_invalid_for_a_deployment(labelled: Kube) -> None:
    empty: list[dict[str, Any]] = [{}, {"matchLabels": {}, "matchExpressions": []}]
    for selector in empty:
        status, answer = _dry_create(labelled, selector, GREEN_WEB)
        assert status == 422
        assert answer["message"] == (
            'Deployment.apps "selected" is invalid: spec.selector: Invalid value: {}: '
            "empty selector is invalid for deployment"
        )


_WHERE = "spec.selector.matchExpressions[0]"


@pytest.mark.parametrize(
    ("selector", "causes"),
    [
        (
            {"matchExpressions": [{"key": "a", "operator": "Gt", "values": ["1"]}]},
            [(f"{_WHERE}.operator", 'Invalid value: "Gt": not a valid selector operator')],
        ),
        (
            {"matchExpressions": [{"key": "a", "operator": "In", "values": []}]},
            [
                (
                    f"{_WHERE}.values",
                    "Required value: must be specified when `operator` is 'In' or 'NotIn'",
                )
            ],
        ),
        (
            {"matchExpressions": [{"key": "a", "operator": "Exists", "values": ["x"]}]},
            [
                (
                    f"{_WHERE}.values",
                    "Forbidden: may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
                )
            ],
        ),
        (
            {"matchExpressions": [{"operator": "Exists"}]},
            [
                (f"{_WHERE}.key", 'Invalid value: "": name part must be non-empty'),
                (f"{_WHERE}.key", f'Invalid value: "": name part {_NAME_RULE}'),
            ],
        ),
        (
            {"matchLabels": {"app": "-x"}},
            [("spec.selector.matchLabels", f'Invalid value: "-x": {_VALUE_RULE}')],
        ),
    ],
    ids=["unknown-operator", "In-without-values", "Exists-with-values", "no-key", "bad-value"],
)
def test_a_malformed_selector_is_422_naming_each_fault(
    labelled: Kube, selector: dict[str, Any], causes: list[tuple[str, str]]
) -> None:
    status, answer = _dry_create(labelled, selector, {"app": "-x", "a": "2"})
    assert (status, answer["reason"]) == (422, "Invalid")
    found = [(c["field"], c["message"]) for c in answer["details"]["causes"]]
    assert found[:-1] == causes
    assert found[-1][0] == "spec.selector"
    assert found[-1][1].endswith(": invalid label selector")


@pytest.mark.parametrize(
    ("selector", "refusal"),
    [
        (
            {"matchExpressions": ["app"]},
            "string into Go struct field LabelSelector.spec.selector.matchExpressions of type "
            "v1.LabelSelectorRequirement",
        ),
        (
            {"matchLabels": ["app"]},
            "array into Go struct field LabelSelector.spec.selector.matchLabels of type "
            "map[string]string",
        ),
        (
            {"matchLabels": {"app": 1}},
            "number into Go struct field LabelSelector.spec.selector.matchLabels of type string",
        ),
    ],
    ids=["expression-not-an-object", "labels-not-a-map", "value-not-a-string"],
)
def test_a_selector_of_the_wrong_shape_does_not_decode(
    labelled: Kube, selector: dict[str, Any], refusal: str
) -> None:
    status, answer = _dry_create(labelled, selector, GREEN_WEB)
    assert (status, answer["reason"]) == (400, "BadRequest")
    assert answer["message"] == (
        'Deployment in version "v1" cannot be handled as a Deployment: '
        f"json: cannot unmarshal {refusal}"
    )
