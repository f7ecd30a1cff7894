"""Whatever arrives, the handler answers below 500 and leaves the cluster as it was."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from local.cluster.emulator import ClusterEmulator
from tests.api.conftest import KNOWN, Stack, call, event, versions

FIELDS = ["selector", "imageTag", "service", "reason", "limit", "cursor", "id", "colour", ""]
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=40),
    st.sampled_from(
        ["blue", "green", "canary", "production", str(KNOWN), KNOWN.hex, "sha256:", "release-1.4"]
    ),
)
JSON_VALUES = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.sampled_from(FIELDS) | st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=8,
)


def _encode(value: Any) -> str:
    try:
        return json.dumps(value)
    except ValueError:  # floats beyond JSON, sent as they would arrive: raw text
        return repr(value)


BODIES = st.one_of(
    st.none(),
    st.sampled_from(["/w==", "e30=", "eyJzZWxlY3RvciI6ICJncmVlbiJ9", "!!", "===="]),
    st.text(max_size=60),
    st.builds(_encode, JSON_VALUES),
    st.binary(max_size=30).map(lambda raw: raw.decode("latin-1")),
)
PATHS = st.one_of(
    st.sampled_from(
        [
            "/services",
            "/rollback",
            "/promote",
            "/images",
            "/deployments",
            "/deployments/x",
            "/deployments/",
            "/",
        ]
    ),
    st.builds(
        lambda head, tail: f"/{head}/{tail}",
        st.sampled_from(["services", "deployments", "images", "rollback"]),
        st.text(max_size=90),
    ),
    st.text(max_size=30).map(lambda text: "/" + text),
)
QUERIES = st.one_of(
    st.none(),
    st.dictionaries(st.sampled_from(["limit", "cursor", "x"]), st.text(max_size=20), max_size=3),
)


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    method=st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH"]),
    path=PATHS,
    body=BODIES,
    query=QUERIES,
    content_type=st.sampled_from(["application/json", "text/plain", "", "application/json; x"]),
    base64=st.booleans(),
)
def test_no_input_gets_a_5xx_or_changes_the_cluster(
    stack: Stack,
    ledger: Any,
    emu: ClusterEmulator,
    method: str,
    path: str,
    body: str | None,
    query: dict[str, str] | None,
    content_type: str,
    base64: bool,
) -> None:
    # GIVEN a deployment holds the lock, so that no request may change the cluster
    ledger.acquire_lock("app-deploy-in-progress", 3600)
    before = versions(emu)
    request = event(
        "get_services",
        httpMethod=method,
        path=path,
        body=body,
        queryStringParameters=query,
        multiValueQueryStringParameters=(
            {key: [value] for key, value in query.items()} if query else None
        ),
    )
    if content_type:
        request["headers"] = {**request["headers"], "Content-Type": content_type}
    if base64 and body is not None:
        # Binary media types arrive base64-encoded; garbage must still be a 4xx.
        request["isBase64Encoded"] = True
    # WHEN it is handled
    answer = call(request)
    # THEN the answer is a client error or a success, with a JSON body, and nothing moved
    assert answer.status < 500, (answer.status, answer.body)
    assert isinstance(answer.body, dict)
    if answer.status >= 400:
        assert set(answer.body) == {"error", "detail"}
    assert versions(emu) == before
