"""One stack, many applications: ``/apps/{app}/...`` acts for the application it names,
in its own namespace, with its own ledger and lock; the un-prefixed routes act for the
stack's default application exactly as before."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from bluegreen.domain.apps import default_app_spec
from functions.services_api.api import dependencies
from local.cluster.emulator import ClusterEmulator
from tests.api.conftest import NAMESPACE, Answer, Stack, call, event, roles, versions


def scoped(app: str, sample: str, **changes: Any) -> dict[str, Any]:
    """The sample event, sent to ``/apps/<app>`` + its path (as API Gateway sends it)."""
    loaded = event(sample, **changes)
    loaded["path"] = f"/apps/{app}{loaded['path']}"
    loaded["resource"] = f"/apps/{{app}}{loaded['resource']}"
    loaded["pathParameters"] = {"app": app, **(loaded.get("pathParameters") or {})}
    loaded["requestContext"] = dict(
        loaded["requestContext"], resourcePath=loaded["resource"], path=loaded["path"]
    )
    return loaded


@pytest.fixture
def other(stack: Stack, emu: ClusterEmulator) -> str:
    """A second application, registered, living in its own seeded namespace."""
    name = f"shop-{uuid.uuid4().hex[:8]}"
    emu.seed_namespace(name)
    spec = default_app_spec(dependencies.stack_settings()).to_json()
    spec["namespace"] = name
    answer = call(
        dict(event("put_app", body=spec), path=f"/apps/{name}", pathParameters={"app": name})
    )
    assert answer.status == 201, answer.body
    return name


def roles_in(emu: ClusterEmulator, namespace: str) -> tuple[str, str | None, str | None]:
    env = json.loads(emu.get("configmaps", namespace, "canary-env")["data"]["canaryEnv"])  # type: ignore[index]

    def selected(name: str) -> str | None:
        service = emu.get("services", namespace, name)
        assert service is not None
        return service["spec"].get("selector", {}).get("app")  # type: ignore[no-any-return]

    return env["selector"], selected("canary-service"), selected("production-service")


def test_a_switch_for_one_application_changes_its_namespace_only(
    stack: Stack, emu: ClusterEmulator, other: str
) -> None:
    before = versions(emu)
    answer = call(scoped(other, "switch_to_green"))
    assert answer.status == 200, answer.body
    assert (answer.body["canary"], answer.body["production"]) == ("green", "blue")
    assert roles_in(emu, other) == ("green", "green", "blue")
    # The default application's namespace is untouched.
    assert roles(emu) == ("blue", "blue", "green")
    assert versions(emu) == before
    # Each application reads its own state.
    assert call(scoped(other, "get_services")).body["canary"] == "green"
    assert call(event("get_services")).body["canary"] == "blue"


def test_an_applications_switch_is_recorded_in_its_own_ledger(
    stack: Stack, emu: ClusterEmulator, other: str
) -> None:
    answer = call(scoped(other, "switch_to_green"))
    record_id = answer.body["recordId"]
    assert call(scoped(other, "get_deployments")).body["deployments"][0]["id"] == record_id
    assert all(d["id"] != record_id for d in call(event("get_deployments")).body["deployments"])


def test_one_applications_lock_does_not_hold_another(
    stack: Stack, emu: ClusterEmulator, other: str
) -> None:
    # GIVEN a deployment of the default application holds its lock
    assert dependencies.ledger().acquire_lock(f"{stack.application}-deploy-running", 600)
    # THEN the default application refuses a switch, the other one makes it
    assert call(event("switch_to_green")).body["error"] == "LockHeld"
    assert call(scoped(other, "switch_to_green")).status == 200
    assert roles_in(emu, other) == ("green", "green", "blue")


def test_the_default_application_under_its_name_answers_as_the_unprefixed_route(
    stack: Stack,
) -> None:
    plain = call(event("get_services"))
    named = call(scoped(stack.application, "get_services"))
    assert plain.status == named.status == 200
    assert named.body == plain.body


@pytest.mark.parametrize(
    ("app", "status", "error"),
    [("nobody-here", 404, "AppNotFound"), ("Not_A_Name", 422, "ValidationError")],
)
def test_an_application_the_registry_does_not_hold_is_refused_and_nothing_changes(
    stack: Stack, emu: ClusterEmulator, app: str, status: int, error: str
) -> None:
    before = versions(emu)
    answer: Answer = call(scoped(app, "switch_to_green"))
    assert (answer.status, answer.body["error"]) == (status, error)
    assert versions(emu) == before


def test_the_default_application_is_changed_by_the_stack_not_the_registry(stack: Stack) -> None:
    spec = default_app_spec(dependencies.stack_settings()).to_json()
    spec["namespace"] = "elsewhere"
    name = stack.application
    answer = call(
        dict(event("put_app", body=spec), path=f"/apps/{name}", pathParameters={"app": name})
    )
    assert (answer.status, answer.body["error"]) == (409, "AppManagedByStack")
    read = call(dict(event("get_app"), path=f"/apps/{name}", pathParameters={"app": name}))
    assert read.body["spec"]["namespace"] == NAMESPACE


def test_the_fleet_view_shows_each_applications_running_and_latest_release(
    stack: Stack, emu: ClusterEmulator, other: str
) -> None:
    # GIVEN the other application switched, and a deployment of the default one running
    switched = call(scoped(other, "switch_to_green")).body["recordId"]
    holder = f"{stack.application}-deploy-running"
    assert dependencies.ledger().acquire_lock(holder, 600)
    # WHEN the fleet is read, page by page (earlier tests' applications share this moto)
    found: dict[str, Any] = {}
    cursor = None
    while True:
        query = {"limit": "100", **({"cursor": cursor} if cursor else {})}
        listed = call(
            event(
                "get_apps",
                queryStringParameters=query,
                multiValueQueryStringParameters={k: [v] for k, v in query.items()},
            )
        )
        assert listed.status == 200, listed.body
        found.update({app["name"]: app["release"] for app in listed.body["apps"]})
        cursor = listed.body["nextCursor"]
        if not cursor:
            break
    # THEN each application shows its own, from its own ledger
    assert found[other]["running"] is None
    assert found[other]["latest"]["id"] == switched
    assert found[other]["latest"]["action"] == "switch"
    assert found[stack.application]["running"] == holder
    assert found[stack.application]["latest"] is None


def test_an_application_whose_namespace_lacks_its_objects_is_a_409_naming_them(
    stack: Stack, emu: ClusterEmulator
) -> None:
    # GIVEN an application registered before its namespace was set up
    name = f"shop-{uuid.uuid4().hex[:8]}"
    spec = default_app_spec(dependencies.stack_settings()).to_json()
    spec["namespace"] = f"nowhere-{uuid.uuid4().hex[:6]}"
    registered = call(
        dict(event("put_app", body=spec), path=f"/apps/{name}", pathParameters={"app": name})
    )
    assert registered.status == 201
    before = versions(emu)
    # WHEN it is switched
    answer = call(scoped(name, "switch_to_green"))
    # THEN a 409 says what is missing, where the names come from and how to set it up
    assert (answer.status, answer.body["error"]) == (409, "ClusterObjectMissing")
    assert spec["namespace"] in answer.body["detail"]
    assert f"application {name}'s spec" in answer.body["detail"]
    assert f"bluegreen manifests {name} --with-objects" in answer.body["detail"]
    assert versions(emu) == before
