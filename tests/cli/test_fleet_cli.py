"""The ``bluegreen`` command line for a fleet: ``--app`` and the ``apps`` registry commands."""

from __future__ import annotations

import argparse
import io
import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from bluegreen_cli.api import APP_NAME, RELEASE_ROOTS, ApiClient, Response
from bluegreen_cli.commands import _version_of
from bluegreen_cli.main import MAX_PAGE, build_parser

from local.apigw import HttpRequest, LocalCredential, verify_sigv4
from tests.cli.conftest import Run
from tests.cli.test_cli import HEX_A, STARTED, STATUS, deployment, use_local_stack_state
from tests.fake_api import FakeApi, serving

ROOT = Path(__file__).resolve().parents[2]

SPEC = {
    "cluster": "fleet",
    "namespace": "checkout",
    "repository": "shop/checkout",
    "router": {"kind": "alb"},
}


def app_body(name: str = "checkout", version: int = 3, **spec: object) -> dict[str, object]:
    """An application as ``GET /apps/{app}`` answers it."""
    return {
        "name": name,
        "version": version,
        "spec": {**SPEC, "namespace": name, **spec},
        "changedBy": "arn:aws:iam::123456789012:user/alice",
        "changedAt": "2026-12-01T10:00:00Z",
        "createdBy": "arn:aws:iam::123456789012:user/bob",
        "createdAt": "2026-11-01T09:00:00Z",
        "sourceIp": "203.0.113.9",
    }


@pytest.fixture
def api(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeApi]:
    monkeypatch.delenv("BLUEGREEN_APP", raising=False)
    with serving(FakeApi()) as fake:
        yield fake


def paths(api: FakeApi) -> list[tuple[str, str]]:
    return [(seen.method, seen.path.split("?")[0]) for seen in api.seen]


def release_routes(api: FakeApi, prefix: str) -> None:
    """Every release route of the CLI answered under ``prefix`` ("" or /apps/{app})."""
    finished = deployment("SUCCEEDED", "succeeded")
    api.routes.update(
        {
            ("GET", f"{prefix}/services"): (200, STATUS),
            ("POST", f"{prefix}/services"): (202, STARTED),
            ("POST", f"{prefix}/rollback"): (202, STARTED),
            ("POST", f"{prefix}/promote"): (202, STARTED),
            ("POST", f"{prefix}/deployments/d1/resume"): (202, STARTED),
            ("POST", f"{prefix}/deployments/d1/abort"): (202, STARTED),
            ("GET", f"{prefix}/images"): (200, {"images": [], "nextCursor": None}),
            ("GET", f"{prefix}/deployments"): (200, {"deployments": [], "nextCursor": None}),
            ("GET", f"{prefix}/deployments/d1"): (200, finished),
        }
    )


COMMANDS = [
    (("status",), "GET", "/services"),
    (("switch", "green"), "POST", "/services"),
    (("deploy", HEX_A), "POST", "/services"),
    (("rollback",), "POST", "/rollback"),
    (("promote",), "POST", "/promote"),
    (("resume", "d1"), "POST", "/deployments/d1/resume"),
    (("abort", "d1"), "POST", "/deployments/d1/abort"),
    (("history",), "GET", "/images"),
    (("deployments",), "GET", "/deployments"),
    (("show", "d1"), "GET", "/deployments/d1"),
    (("watch", "d1"), "GET", "/deployments/d1"),
]


# -- --app: release commands act for one application ---------------------------------


@pytest.mark.parametrize(("argv", "method", "path"), COMMANDS, ids=lambda v: str(v))
def test_app_sends_every_release_command_under_its_prefix(
    api: FakeApi,
    bluegreen: Callable[..., Run],
    argv: tuple[str, ...],
    method: str,
    path: str,
) -> None:
    # GIVEN the API answers the release routes, for checkout and for the default application
    release_routes(api, "/apps/checkout")
    release_routes(api, "")
    # WHEN a command is run with --app checkout, then without
    scoped = bluegreen("--endpoint", api.url, "--app", "checkout", *argv)
    assert scoped.code == 0, scoped.err
    assert paths(api) == [(method, f"/apps/checkout{path}")]
    api.seen.clear()
    default = bluegreen("--endpoint", api.url, *argv)
    # THEN the first called /apps/checkout/<path>, the second /<path> as before
    assert default.code == 0, default.err
    assert paths(api) == [(method, path)]


def test_app_status_calls_the_apps_services(api: FakeApi, bluegreen: Callable[..., Run]) -> None:
    api.routes[("GET", "/apps/checkout/services")] = (200, STATUS)
    run = bluegreen("--endpoint", api.url, "--app", "checkout", "status")
    assert run.code == 0, run.err
    assert paths(api) == [("GET", "/apps/checkout/services")]
    assert "blue" in run.out


def test_status_alone_calls_the_default_applications_services(
    api: FakeApi, bluegreen: Callable[..., Run]
) -> None:
    api.routes[("GET", "/services")] = (200, STATUS)
    run = bluegreen("--endpoint", api.url, "status")
    assert run.code == 0, run.err
    assert paths(api) == [("GET", "/services")]


def test_app_after_the_subcommand(api: FakeApi, bluegreen: Callable[..., Run]) -> None:
    api.routes[("GET", "/apps/checkout/images")] = (200, {"images": [], "nextCursor": None})
    run = bluegreen("--endpoint", api.url, "history", "--limit", "5", "--app", "checkout")
    assert run.code == 0, run.err
    assert api.seen[-1].path == "/apps/checkout/images?limit=5"


def test_app_after_the_subcommand_wins_over_the_one_before(
    api: FakeApi, bluegreen: Callable[..., Run]
) -> None:
    api.routes[("GET", "/apps/cart/services")] = (200, STATUS)
    run = bluegreen("--endpoint", api.url, "--app", "checkout", "status", "--app", "cart")
    assert run.code == 0, run.err
    assert paths(api) == [("GET", "/apps/cart/services")]


def test_app_from_the_environment(
    api: FakeApi, bluegreen: Callable[..., Run], monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN BLUEGREEN_APP names an application
    monkeypatch.setenv("BLUEGREEN_APP", "checkout")
    api.routes[("GET", "/apps/checkout/services")] = (200, STATUS)
    api.routes[("GET", "/apps/cart/services")] = (200, STATUS)
    api.routes[("GET", "/services")] = (200, STATUS)
    # WHEN commands run without --app, with --app, and with an empty --app
    runs = [
        bluegreen("--endpoint", api.url, "status"),
        bluegreen("--endpoint", api.url, "status", "--app", "cart"),
        bluegreen("--endpoint", api.url, "--app", "", "status"),
    ]
    # THEN the variable's application, then --app's, then the stack's default one
    assert [run.code for run in runs] == [0, 0, 0], [run.err for run in runs]
    assert paths(api) == [
        ("GET", "/apps/checkout/services"),
        ("GET", "/apps/cart/services"),
        ("GET", "/services"),
    ]


@pytest.mark.parametrize(
    "name", ["Checkout", "-checkout", "checkout-", "check_out", "a/b", "a" * 41, "ché", " x y"]
)
def test_a_bad_app_name_is_a_usage_error_and_nothing_is_sent(
    api: FakeApi, bluegreen: Callable[..., Run], name: str
) -> None:
    # ("--app=NAME": argparse would read "-checkout" given alone as an option)
    for argv in ((f"--app={name}", "status"), ("deploy", HEX_A, f"--app={name}")):
        run = bluegreen("--endpoint", api.url, *argv)
        assert run.code == 2
        assert run.err.count("\n") == 1
        assert run.err.startswith(f"bluegreen: error: argument --app: {name.strip()!r} is not")
        assert "lowercase letters, digits and '-'" in run.err
    assert api.seen == []


def test_a_bad_app_name_in_the_environment_is_a_usage_error(
    api: FakeApi, bluegreen: Callable[..., Run], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BLUEGREEN_APP", "Checkout")
    run = bluegreen("--endpoint", api.url, "status")
    assert run.code == 2
    assert run.err.startswith("bluegreen: error: BLUEGREEN_APP: 'Checkout' is not an application")
    assert run.err.count("\n") == 1
    assert api.seen == []


def test_a_bad_app_name_with_json_is_a_json_usage_error(
    api: FakeApi, bluegreen: Callable[..., Run]
) -> None:
    run = bluegreen("--endpoint", api.url, "--json", "--app", "X", "status")
    assert run.code == 2
    assert run.json["error"] == "UsageError"
    assert api.seen == []


def test_json_with_app_prints_the_apis_answer(api: FakeApi, bluegreen: Callable[..., Run]) -> None:
    api.routes[("GET", "/apps/checkout/services")] = (200, STATUS)
    run = bluegreen("--endpoint", api.url, "status", "--json", "--app", "checkout")
    assert run.code == 0, run.err
    assert run.json == STATUS


def test_deploy_wait_follows_the_apps_deployment(
    api: FakeApi, bluegreen: Callable[..., Run]
) -> None:
    api.routes[("POST", "/apps/checkout/services")] = (202, STARTED)
    api.routes[("GET", "/apps/checkout/deployments/wp-platform-deploy-abc")] = [
        (200, deployment("RUNNING", "running")),
        (200, deployment("SUCCEEDED", "succeeded")),
    ]
    run = bluegreen(
        "--endpoint", api.url, "--app", "checkout", "deploy", HEX_A, "--wait", "--interval", "0.01"
    )
    assert run.code == 0, run.err
    assert paths(api) == [
        ("POST", "/apps/checkout/services"),
        ("GET", "/apps/checkout/deployments/wp-platform-deploy-abc"),
        ("GET", "/apps/checkout/deployments/wp-platform-deploy-abc"),
    ]


def test_a_watch_that_gives_up_says_how_to_watch_the_apps_deployment(
    api: FakeApi, bluegreen: Callable[..., Run]
) -> None:
    api.routes[("GET", "/apps/checkout/deployments/d1")] = (200, deployment("RUNNING", "running"))
    run = bluegreen(
        "--endpoint",
        api.url,
        "--app",
        "checkout",
        "watch",
        "d1",
        "--interval",
        "0.01",
        "--max-wait",
        "0.01",
    )
    assert run.code == 3
    assert "it continues: bluegreen --app checkout watch d1" in run.err


def test_push_for_an_app_goes_to_the_repository_its_spec_names(
    api: FakeApi, bluegreen: Callable[..., Run], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # GIVEN a running local stack whose registry says where checkout's images live
    use_local_stack_state(monkeypatch, tmp_path, api.url)
    api.routes[("GET", "/apps/checkout")] = (
        200,
        {"name": "checkout", "spec": {"repository": "shop/checkout"}},
    )
    pushed: dict[str, object] = {}

    def fake_push(*_args: object, **kwargs: object) -> dict[str, object]:
        pushed.update(kwargs)
        return {"tag": "dev", "digest": "sha256:" + "ab" * 32}

    monkeypatch.setattr("bluegreen_cli.main.push", fake_push)
    # WHEN a push is asked for the application
    run = bluegreen("--app", "checkout", "push", "dev")
    # THEN the application's spec was read, and the image goes to its repository
    assert run.code == 0, run.err
    assert [(s.method, s.path) for s in api.seen] == [("GET", "/apps/checkout")]
    assert pushed["repository"] == "shop/checkout"


def test_the_client_prefixes_release_paths_only() -> None:
    client = ApiClient("http://127.0.0.1:1/Prod/", None, app="checkout")
    assert client.url("/deployments/d1/timeline") == (
        "http://127.0.0.1:1/Prod/apps/checkout/deployments/d1/timeline"
    )
    assert client.url("services") == "http://127.0.0.1:1/Prod/apps/checkout/services"
    assert client.url("/apps", {"limit": 5}) == "http://127.0.0.1:1/Prod/apps?limit=5"
    assert client.url("/apps/cart") == "http://127.0.0.1:1/Prod/apps/cart"
    assert client.url("/_local/events") == "http://127.0.0.1:1/Prod/_local/events"
    assert client.url("/servicesx") == "http://127.0.0.1:1/Prod/servicesx"
    default = ApiClient("http://127.0.0.1:1", None)
    assert default.url("/services") == "http://127.0.0.1:1/services"


def test_the_clis_name_rule_and_release_paths_are_the_apis() -> None:
    document = json.loads((ROOT / "docs" / "openapi.json").read_text())
    (app,) = [
        p for p in document["paths"]["/apps/{app}"]["get"]["parameters"] if p["name"] == "app"
    ]
    assert app["schema"]["pattern"] == APP_NAME.pattern
    roots = {
        path.removeprefix("/apps/{app}/").split("/")[0]
        for path in document["paths"]
        if path.startswith("/apps/{app}/")
    }
    assert roots == set(RELEASE_ROOTS)
    (limit,) = [p for p in document["paths"]["/apps"]["get"]["parameters"] if p["name"] == "limit"]
    assert limit["schema"]["maximum"] == MAX_PAGE


# -- apps: the registry ----------------------------------------------------------


def test_apps_list_renders_a_page_and_the_next_cursor(
    api: FakeApi, bluegreen: Callable[..., Run]
) -> None:
    # GIVEN a page of two applications and a next cursor
    page = {
        "apps": [app_body("cart", 1, router={"kind": "gateway"}), app_body("checkout", 3)],
        "nextCursor": "Y2hlY2tvdXQ=",
    }
    api.routes[("GET", "/apps")] = (200, page)
    # WHEN listed (--app does not apply to the registry)
    run = bluegreen("--endpoint", api.url, "--app", "shop", "apps", "list", "--limit", "2")
    # THEN one row per application, and how to ask for the next page
    assert run.code == 0, run.err
    assert api.seen[-1].path == "/apps?limit=2"
    lines = run.out.splitlines()
    assert lines[0].split() == [
        "NAME",
        "CLUSTER",
        "NAMESPACE",
        "REPOSITORY",
        "ROUTER",
        "VERSION",
        "CHANGED",
        "BY",
        "CHANGED",
        "AT",
    ]
    rows = [line.split() for line in lines[2:4]]
    assert rows[0] == [
        "cart",
        "fleet",
        "cart",
        "shop/checkout",
        "gateway",
        "1",
        "arn:aws:iam::123456789012:user/alice",
        "2026-12-01T10:00:00Z",
    ]
    assert rows[1][0] == "checkout"
    assert rows[1][4:6] == ["alb", "3"]
    assert run.out.rstrip().endswith("more: --cursor Y2hlY2tvdXQ=")


def test_apps_list_follows_the_cursor(api: FakeApi, bluegreen: Callable[..., Run]) -> None:
    # GIVEN the last page: no next cursor, and a spec without a router (selector)
    body = app_body("shop")
    body["spec"] = {k: v for k, v in SPEC.items() if k != "router"}
    api.routes[("GET", "/apps")] = (200, {"apps": [body], "nextCursor": None})
    # WHEN the cursor printed before is passed back
    run = bluegreen("--endpoint", api.url, "apps", "list", "--cursor", "Y2hlY2tvdXQ=")
    # THEN it is sent, with the default page size, and no further page is offered
    assert run.code == 0, run.err
    assert api.seen[-1].path == "/apps?cursor=Y2hlY2tvdXQ%3D&limit=50"
    assert "selector" in run.out.splitlines()[2]
    assert "more:" not in run.out


def test_apps_list_json_is_the_apis_page(api: FakeApi, bluegreen: Callable[..., Run]) -> None:
    page = {"apps": [app_body()], "nextCursor": None}
    api.routes[("GET", "/apps")] = (200, page)
    run = bluegreen("--endpoint", api.url, "apps", "list", "--json")
    assert run.code == 0, run.err
    assert run.json == page


def test_apps_show_prints_the_version_the_change_and_the_spec(
    api: FakeApi, bluegreen: Callable[..., Run]
) -> None:
    api.routes[("GET", "/apps/checkout")] = (200, app_body())
    run = bluegreen("--endpoint", api.url, "apps", "show", "checkout")
    assert run.code == 0, run.err
    assert paths(api) == [("GET", "/apps/checkout")]
    head, _, spec = run.out.partition("\nspec:\n")
    assert "version     3" in head
    assert "changed by  arn:aws:iam::123456789012:user/alice" in head
    assert "changed at  2026-12-01T10:00:00Z" in head
    assert json.loads(spec) == app_body()["spec"]


def test_apps_show_json_is_the_apis_answer(api: FakeApi, bluegreen: Callable[..., Run]) -> None:
    api.routes[("GET", "/apps/checkout")] = (200, app_body())
    run = bluegreen("--endpoint", api.url, "--json", "apps", "show", "checkout")
    assert run.code == 0, run.err
    assert run.json == app_body()


def test_apps_put_registers_without_if_match(
    api: FakeApi, bluegreen: Callable[..., Run], tmp_path: Path
) -> None:
    # GIVEN a spec file
    spec = tmp_path / "checkout.json"
    spec.write_text(json.dumps(SPEC))
    api.routes[("PUT", "/apps/checkout")] = (201, app_body(version=1))
    # WHEN it is put without --version
    run = bluegreen("--endpoint", api.url, "apps", "put", "checkout", "--spec", str(spec))
    # THEN the spec is the body, no If-Match is sent, and the new version is said
    assert run.code == 0, run.err
    seen = api.seen[-1]
    assert (seen.method, seen.path) == ("PUT", "/apps/checkout")
    assert seen.body == SPEC
    assert seen.headers["Content-Type"] == "application/json"
    assert "if-match" not in {k.lower() for k in seen.headers}
    assert run.out.startswith("checkout registered: version 1\n")


@pytest.mark.parametrize("version", ["3", '"3"', 'W/"3"'])
def test_apps_put_with_version_sends_if_match(
    api: FakeApi, bluegreen: Callable[..., Run], tmp_path: Path, version: str
) -> None:
    spec = tmp_path / "checkout.json"
    spec.write_text(json.dumps(SPEC))
    api.routes[("PUT", "/apps/checkout")] = (200, app_body(version=4))
    run = bluegreen(
        "--endpoint", api.url, "apps", "put", "checkout", "--spec", str(spec), "--version", version
    )
    assert run.code == 0, run.err
    assert api.seen[-1].headers["If-Match"] == '"3"'
    assert api.seen[-1].body == SPEC
    assert run.out.startswith("checkout replaced: version 4\n")


def test_apps_put_reads_stdin_and_an_apps_show_answer(
    api: FakeApi,
    bluegreen: Callable[..., Run],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN what `apps show --json` printed, edited, on standard input
    edited = app_body(version=3, namespace="checkout-v2")
    monkeypatch.setattr("sys.stdin", io.StringIO(json.dumps(edited)))
    api.routes[("PUT", "/apps/checkout")] = (200, app_body(version=4))
    # WHEN it is put at its version
    run = bluegreen(
        "--endpoint", api.url, "apps", "put", "checkout", "--spec", "-", "--version", "3"
    )
    # THEN its spec alone is sent
    assert run.code == 0, run.err
    assert api.seen[-1].body == edited["spec"]


def test_apps_put_json_is_the_apis_answer(
    api: FakeApi, bluegreen: Callable[..., Run], tmp_path: Path
) -> None:
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps(SPEC))
    api.routes[("PUT", "/apps/checkout")] = (201, app_body(version=1))
    run = bluegreen("--endpoint", api.url, "--json", "apps", "put", "checkout", "--spec", str(spec))
    assert run.code == 0, run.err
    assert run.json == app_body(version=1)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("cluster: fleet\n", "is not JSON"),
        ('{"cluster": ', "is not JSON"),
        ("[1, 2]", "is not a JSON object"),
        (None, "cannot read"),
    ],
)
def test_apps_put_refuses_a_spec_that_is_not_a_json_object_before_any_request(
    api: FakeApi, bluegreen: Callable[..., Run], tmp_path: Path, content: str | None, message: str
) -> None:
    spec = tmp_path / "spec.yaml"
    if content is not None:
        spec.write_text(content)
    run = bluegreen("--endpoint", api.url, "apps", "put", "checkout", "--spec", str(spec))
    assert run.code == 2
    assert run.err.startswith(f"bluegreen: error: --spec: {spec}") or run.err.startswith(
        f"bluegreen: error: --spec: cannot read {spec}"
    )
    assert message in run.err
    assert run.err.count("\n") == 1
    assert api.seen == []


@pytest.mark.parametrize(
    "argv",
    [
        ("apps", "put", "checkout", "--spec", "-", "--version", "0"),
        ("apps", "put", "checkout", "--spec", "-", "--version", "three"),
        ("apps", "delete", "checkout", "--version", "-1"),
        ("apps", "put", "checkout"),
        ("apps", "show", "Checkout"),
        ("apps", "delete", "a_b"),
        ("apps", "show"),
        ("apps",),
        ("apps", "rename", "checkout"),
    ],
)
def test_apps_usage_errors_send_nothing(
    api: FakeApi, bluegreen: Callable[..., Run], argv: tuple[str, ...]
) -> None:
    run = bluegreen("--endpoint", api.url, *argv)
    assert run.code == 2
    assert run.err.startswith("bluegreen: error: ")
    assert run.err.count("\n") == 1
    assert api.seen == []


def test_apps_delete(api: FakeApi, bluegreen: Callable[..., Run]) -> None:
    api.routes[("DELETE", "/apps/checkout")] = (200, app_body(version=3))
    run = bluegreen("--endpoint", api.url, "apps", "delete", "checkout")
    assert run.code == 0, run.err
    seen = api.seen[-1]
    assert (seen.method, seen.path, seen.raw) == ("DELETE", "/apps/checkout", b"")
    assert "if-match" not in {k.lower() for k in seen.headers}
    assert run.out.startswith("checkout deleted (it was at version 3)")


def test_apps_delete_at_a_version_sends_if_match(
    api: FakeApi, bluegreen: Callable[..., Run]
) -> None:
    api.routes[("DELETE", "/apps/checkout")] = (200, app_body(version=3))
    run = bluegreen("--endpoint", api.url, "--json", "apps", "delete", "checkout", "--version", "3")
    assert run.code == 0, run.err
    assert api.seen[-1].headers["If-Match"] == '"3"'
    assert run.json == app_body(version=3)


@pytest.mark.parametrize(
    ("argv", "route", "status", "error"),
    [
        (("apps", "show", "nope"), ("GET", "/apps/nope"), 404, "AppNotFound"),
        (("apps", "delete", "nope"), ("DELETE", "/apps/nope"), 404, "AppNotFound"),
        (
            ("apps", "put", "checkout", "--spec", "SPEC"),
            ("PUT", "/apps/checkout"),
            409,
            "AppVersionConflict",
        ),
        (("apps", "delete", "shop", "--version", "2"), ("DELETE", "/apps/shop"), 409, "AppInUse"),
        (
            ("apps", "put", "checkout", "--spec", "SPEC"),
            ("PUT", "/apps/checkout"),
            422,
            "InvalidInput",
        ),
        (("apps", "list"), ("GET", "/apps"), 503, "ServiceUnavailable"),
    ],
)
def test_apps_api_errors_are_shown_like_every_other_commands(
    api: FakeApi,
    bluegreen: Callable[..., Run],
    tmp_path: Path,
    argv: tuple[str, ...],
    route: tuple[str, str],
    status: int,
    error: str,
) -> None:
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps(SPEC))
    argv = tuple(str(spec) if word == "SPEC" else word for word in argv)
    api.routes[route] = (status, {"error": error, "detail": "as the API says"})
    run = bluegreen("--endpoint", api.url, *argv)
    assert run.code == (2 if status < 500 else 3)
    assert run.err == f"bluegreen: error: HTTP {status}: {error}: as the API says\n"
    assert run.out == ""
    as_json = bluegreen("--endpoint", api.url, "--json", *argv)
    assert as_json.json == {"error": error, "detail": "as the API says", "status": status}


def test_a_signed_put_with_if_match_is_accepted_by_the_local_gateway(
    api: FakeApi,
    bluegreen: Callable[..., Run],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    # GIVEN a running local stack that publishes its key
    use_local_stack_state(monkeypatch, tmp_path, api.url)
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps(SPEC))
    api.routes[("PUT", "/apps/checkout")] = (200, app_body(version=4))
    # WHEN a spec is replaced at a version
    run = bluegreen("apps", "put", "checkout", "--spec", str(spec), "--version", "3")
    assert run.code == 0, run.err
    # THEN If-Match is signed with the rest, and the local gateway's SigV4 check accepts it
    seen = api.seen[-1]
    signed = seen.headers["Authorization"].split("SignedHeaders=")[1].split(",")[0]
    assert "if-match" in signed.split(";")
    key = LocalCredential("AKIALOCALSTACK", "local-secret", "arn:aws:iam::123456789012:user/me")
    request = HttpRequest(seen.method, seen.path, list(seen.headers.items()), seen.raw, "")
    assert verify_sigv4(request, {key.access_key_id: key}, "us-west-2", datetime.now(UTC)) == key


def test_the_version_falls_back_to_the_etag(api: FakeApi) -> None:
    # The answer's version is read from the body; the ETag is there too.
    api.routes[("GET", "/apps/checkout")] = (200, app_body(version=7))
    response = ApiClient(api.url, None).call("GET", "/apps/checkout")
    assert response.headers["etag"] == '"7"'
    assert _version_of(Response(200, {"name": "x"}, {"etag": '"9"'})) == 9


def subcommands_of(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    """The subcommands of ``parser``, by name, in its order."""
    found = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    assert len(found) == 1, found
    return dict(found[0].choices)


APPS_COMMANDS = subcommands_of(subcommands_of(build_parser())["apps"])


@pytest.mark.parametrize("command", ["list", "show", "put", "apply", "delete"])
def test_every_apps_subcommand_has_help(
    command: str, bluegreen: Callable[..., Run], capsys: pytest.CaptureFixture[str]
) -> None:
    assert set(APPS_COMMANDS) == {"list", "show", "put", "apply", "delete"}
    with pytest.raises(SystemExit) as exit_info:
        bluegreen("apps", command, "--help")
    assert exit_info.value.code == 0
    printed = capsys.readouterr()
    assert printed.err == ""
    assert printed.out.startswith(f"usage: bluegreen apps {command}")
    description = APPS_COMMANDS[command].description
    assert description
    assert " ".join(description.split()) in " ".join(printed.out.split())
    assert "exit codes:" in printed.out
    assert "--app NAME" in printed.out
