"""Label selectors, field selectors and structured LabelSelectors as the emulator evaluates them."""

from __future__ import annotations

import re
from typing import Any

import pytest

from local.cluster.selectors import (
    SelectorError,
    field_selector,
    field_selector_paths,
    label_selector,
    match_label_selector_object,
)

BLUE_WEB = {"app": "blue", "tier": "web", "env": "prod"}
GREEN_WEB = {"app": "green", "tier": "web", "env": "staging"}
GREEN_BARE = {"app": "green"}
EMPTY_APP = {"app": ""}
UNLABELLED: dict[str, str] = {}
ALL = {
    "blue_web": BLUE_WEB,
    "green_web": GREEN_WEB,
    "green_bare": GREEN_BARE,
    "empty_app": EMPTY_APP,
    "unlabelled": UNLABELLED,
}


def selected(expr: str) -> set[str]:
    matches = label_selector(expr)
    return {name for name, labels in ALL.items() if matches(labels)}


# labelSelector query strings
# ---------------------------


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("", set(ALL)),
        ("   ", set(ALL)),
        ("app=blue", {"blue_web"}),
        ("app==blue", {"blue_web"}),
        ("app = blue", {"blue_web"}),
        ("app!=blue", {"green_web", "green_bare", "empty_app", "unlabelled"}),
        ("app=", {"empty_app"}),
        ("env in (prod,staging)", {"blue_web", "green_web"}),
        ("env in ( prod , staging )", {"blue_web", "green_web"}),
        ("env notin (prod)", {"green_web", "green_bare", "empty_app", "unlabelled"}),
        ("tier", {"blue_web", "green_web"}),
        ("!tier", {"green_bare", "empty_app", "unlabelled"}),
        ("app=green,tier", {"green_web"}),
        ("app=green,!tier", {"green_bare"}),
        ("app in (blue,green),env!=staging,tier", {"blue_web"}),
        ("app=blue,app=green", set()),
        ("tier,env notin (prod,staging)", set()),
    ],
)
def test_label_selector_matches_like_the_api_server(expr: str, expected: set[str]) -> None:
    # GIVEN objects with various labels
    # WHEN the selector is parsed and applied
    result = selected(expr)

    # THEN exactly the expected objects are selected
    assert result == expected


def test_label_selector_with_a_prefixed_key() -> None:
    # GIVEN a selector on a prefixed key
    matches = label_selector("app.kubernetes.io/name=wordpress")

    # WHEN / THEN it compares that key only
    assert matches({"app.kubernetes.io/name": "wordpress"})
    assert not matches({"name": "wordpress"})


def test_label_selector_integer_comparisons() -> None:
    # GIVEN selectors with > and <
    greater, less = label_selector("revision>2"), label_selector("revision<2")

    # WHEN / THEN they compare as integers and need the label
    assert greater({"revision": "10"})
    assert not greater({"revision": "2"})
    assert less({"revision": "1"})
    assert not less({})
    assert not greater({"revision": "x"})


@pytest.mark.parametrize(
    ("expr", "message"),
    [
        ("app in (blue", "expected: ',' or ')'"),
        ("app in blue", "expected: '('"),
        ("app in ()", "values set can't be empty"),
        ("app notin ()", "values set can't be empty"),
        ("app=blue green", "expected: ',' or 'end of string'"),
        ("app=blue,", "found '', expected: identifier"),
        (",app", "found ',', expected: identifier"),
        ("!", "found '', expected: identifier"),
        ("app=(blue)", "found '(', expected: identifier"),
        ("app=-blue", "a valid label must be an empty string"),
        ("app=" + "x" * 64, "no more than 63 characters"),
        ("-app=blue", "name part must consist of alphanumeric characters"),
        ("Bad_Prefix/app=blue", "prefix part"),
        ("/app", "prefix part must be non-empty"),
        ("revision>two", "must be a single integer"),
    ],
)
def test_invalid_label_selector_is_rejected_with_a_kubernetes_like_message(
    expr: str, message: str
) -> None:
    # GIVEN an invalid labelSelector
    # WHEN / THEN parsing raises SelectorError saying what is wrong
    with pytest.raises(SelectorError, match=re.escape(message)):
        label_selector(expr)


def test_selector_error_is_a_value_error() -> None:
    # GIVEN a caller that maps ValueError to 400
    # WHEN / THEN a selector error is caught by it
    with pytest.raises(ValueError, match="unable to parse requirement"):
        label_selector("app in")


# Structured LabelSelector (spec.selector of Deployments and Jobs)
# ----------------------------------------------------------------


def test_match_labels_requires_every_pair() -> None:
    # GIVEN a Deployment selector on app=green
    selector = {"matchLabels": {"app": "green"}}

    # WHEN / THEN pods with that label match, others do not
    assert match_label_selector_object(selector, GREEN_WEB)
    assert not match_label_selector_object(selector, BLUE_WEB)
    assert not match_label_selector_object(selector, UNLABELLED)
    assert not match_label_selector_object(
        {"matchLabels": {"app": "green", "tier": "web"}}, GREEN_BARE
    )


def test_empty_label_selector_matches_everything() -> None:
    # GIVEN empty selectors
    # WHEN / THEN they match any labels, including none
    assert match_label_selector_object({}, UNLABELLED)
    assert match_label_selector_object({"matchLabels": {}, "matchExpressions": []}, BLUE_WEB)


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ({"key": "env", "operator": "In", "values": ["prod", "dev"]}, {"blue_web"}),
        (
            {"key": "env", "operator": "NotIn", "values": ["prod"]},
            {"green_web", "green_bare", "empty_app", "unlabelled"},
        ),
        ({"key": "tier", "operator": "Exists"}, {"blue_web", "green_web"}),
        (
            {"key": "tier", "operator": "DoesNotExist"},
            {"green_bare", "empty_app", "unlabelled"},
        ),
    ],
)
def test_match_expressions_operators(expression: dict[str, Any], expected: set[str]) -> None:
    # GIVEN a selector with one expression
    selector = {"matchExpressions": [expression]}

    # WHEN it is evaluated against each object
    result = {name for name, labels in ALL.items() if match_label_selector_object(selector, labels)}

    # THEN exactly the expected ones match
    assert result == expected


def test_match_labels_and_expressions_combine_with_and() -> None:
    # GIVEN a selector with both parts
    selector = {
        "matchLabels": {"app": "green"},
        "matchExpressions": [{"key": "tier", "operator": "Exists"}],
    }

    # WHEN / THEN both must hold
    assert match_label_selector_object(selector, GREEN_WEB)
    assert not match_label_selector_object(selector, GREEN_BARE)
    assert not match_label_selector_object(selector, BLUE_WEB)


@pytest.mark.parametrize(
    ("selector", "message"),
    [
        ({"matchExpressions": [{"key": "a", "operator": "Gt", "values": ["1"]}]}, "Unsupported"),
        ({"matchExpressions": [{"key": "a", "operator": "In", "values": []}]}, "Required value"),
        ({"matchExpressions": [{"key": "a", "operator": "In"}]}, "Required value"),
        ({"matchExpressions": [{"key": "a", "operator": "Exists", "values": ["x"]}]}, "Forbidden"),
        ({"matchExpressions": [{"operator": "Exists"}]}, r"key: Required value"),
        ({"matchExpressions": ["app"]}, "must be an object"),
        ({"matchExpressions": {"key": "a"}}, "must be a list"),
        ({"matchLabels": ["app"]}, "must be a map"),
        ({"matchLabels": {"app": 1}}, "must be a string"),
        ({"matchLabels": {"app": "-x"}}, "a valid label"),
    ],
)
def test_malformed_label_selector_object_is_rejected(
    selector: dict[str, Any], message: str
) -> None:
    # GIVEN a malformed LabelSelector
    # WHEN / THEN evaluating it raises SelectorError naming the problem
    with pytest.raises(SelectorError, match=message):
        match_label_selector_object(selector, BLUE_WEB)


# fieldSelector query strings
# ---------------------------


def pod(name: str, namespace: str, phase: str, node: str | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"containers": [{"name": "web"}]}
    if node is not None:
        spec["nodeName"] = node
    return {
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
        "status": {"phase": phase},
    }


PODS = [
    pod("blue-1", "wp-platform", "Running", "node-a"),
    pod("blue-2", "wp-platform", "Pending"),
    pod("hook-1", "other", "Succeeded", "node-b"),
]


def selected_pods(expr: str) -> list[str]:
    matches = field_selector(expr)
    return [p["metadata"]["name"] for p in PODS if matches(p)]


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("", ["blue-1", "blue-2", "hook-1"]),
        ("metadata.name=blue-1", ["blue-1"]),
        ("metadata.name==blue-1", ["blue-1"]),
        ("metadata.namespace!=wp-platform", ["hook-1"]),
        ("status.phase=Running", ["blue-1"]),
        ("spec.nodeName=", ["blue-2"]),
        ("spec.nodeName!=", ["blue-1", "hook-1"]),
        ("metadata.namespace=wp-platform,status.phase!=Running", ["blue-2"]),
        ("metadata.name=nobody", []),
    ],
)
def test_field_selector_matches_dotted_paths(expr: str, expected: list[str]) -> None:
    # GIVEN pods in two namespaces and phases
    # WHEN the field selector is applied
    result = selected_pods(expr)

    # THEN exactly the expected pods are selected
    assert result == expected


def test_field_selector_compares_non_string_fields_as_text() -> None:
    # GIVEN an object with boolean and integer fields
    obj = {"spec": {"suspend": False, "parallelism": 1}}

    # WHEN / THEN they compare with their JSON text
    assert field_selector("spec.suspend=false")(obj)
    assert field_selector("spec.parallelism=1")(obj)
    assert not field_selector("spec.suspend=False")(obj)


def test_field_selector_escapes() -> None:
    # GIVEN an object whose field holds a comma and an equals sign
    obj = {"metadata": {"name": "a,b=c"}}

    # WHEN / THEN the escaped value matches
    assert field_selector(r"metadata.name=a\,b\=c")(obj)


@pytest.mark.parametrize(
    ("expr", "message"),
    [
        ("metadata.name", "can't understand 'metadata.name'"),
        ("=x", "field name is empty"),
        ("metadata.name=a=b", "unescaped '='"),
        (r"metadata.name=a\x", "invalid escape sequence"),
        ("metadata.name=x,status.phase", "can't understand 'status.phase'"),
    ],
)
def test_invalid_field_selector_is_rejected(expr: str, message: str) -> None:
    # GIVEN an invalid fieldSelector
    # WHEN / THEN parsing raises SelectorError saying what is wrong
    with pytest.raises(SelectorError, match=message):
        field_selector(expr)


def test_field_selector_paths_lists_the_fields_used() -> None:
    # GIVEN a selector on two fields
    # WHEN its paths are asked for
    paths = field_selector_paths("metadata.name=x,status.phase!=Running")

    # THEN the server can check them against what the resource supports
    assert paths == ["metadata.name", "status.phase"]
