"""``bluegreen apps apply -f FILE``: an application from a file, what changes, then a write at
the version read (If-Match), unless ``--dry-run`` or nothing changes."""

from __future__ import annotations

import copy
import io
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from bluegreen_cli.commands import SPEC_DEFAULTS, complete_spec, spec_problem

from bluegreen.domain.apps import AppSpec
from tests.cli.conftest import Run
from tests.cli.test_fleet_cli import app_body
from tests.fake_api import FakeApi, serving

MINIMAL = {"cluster": "fleet", "namespace": "checkout", "repository": "shop/checkout"}


def registered(version: int = 3, **spec: Any) -> dict[str, Any]:
    """``GET /apps/checkout``'s answer: the spec complete, as the registry keeps it."""
    body = app_body(version=version)
    body["spec"] = AppSpec.parse({**MINIMAL, **spec}).to_json()
    return body


@pytest.fixture
def api(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeApi]:
    monkeypatch.delenv("BLUEGREEN_APP", raising=False)
    with serving(FakeApi()) as fake:
        yield fake


def write(tmp_path: Path, content: object, name: str = "checkout.yaml") -> str:
    path = tmp_path / name
    path.write_text(content if isinstance(content, str) else yaml.safe_dump(content))
    return str(path)


def requests(api: FakeApi) -> list[tuple[str, str]]:
    return [(seen.method, seen.path) for seen in api.seen]


# -- what the registry fills in ---------------------------------------------------------

PARTIAL_SPECS = [
    MINIMAL,
    {**MINIMAL, "router": {"kind": "alb", "ingress": {"name": "shop"}}},
    {**MINIMAL, "objects": {"configMap": "state"}, "analysis": {"targetGroups": {"blue": None}}},
    {**MINIMAL, "promotion": {"steps": [{"weight": 50}, {"weight": 100, "pause": "manual"}]}},
    {**MINIMAL, "deploy": {"hooks": [{"name": "warm", "command": ["curl", "-s", "/"]}]}},
    {**MINIMAL, "deploy": {"hooks": [], "alarmNames": ["high-5xx"]}},
]


@pytest.mark.parametrize("partial", PARTIAL_SPECS, ids=lambda spec: ",".join(sorted(spec)))
def test_a_spec_is_completed_as_the_registry_completes_it(partial: dict[str, Any]) -> None:
    # The CLI compares a file with the registry's spec: it fills in the API's own defaults.
    assert complete_spec(partial) == AppSpec.parse(partial).to_json()


def test_the_defaults_cover_every_field_of_a_spec() -> None:
    full = AppSpec.parse(MINIMAL).to_json()
    assert {k: v for k, v in full.items() if k not in MINIMAL} == SPEC_DEFAULTS
    assert spec_problem(full) is None


# -- writes ----------------------------------------------------------------------------


def test_a_new_application_is_registered_without_if_match(
    api: FakeApi, bluegreen: Callable[..., Run], tmp_path: Path
) -> None:
    # GIVEN the registry does not hold checkout
    api.routes[("GET", "/apps/checkout")] = (404, {"error": "AppNotFound", "detail": "none"})
    api.routes[("PUT", "/apps/checkout")] = (201, registered(version=1))
    path = write(tmp_path, {"name": "checkout", "spec": MINIMAL})
    # WHEN the file is applied
    run = bluegreen("--endpoint", api.url, "apps", "apply", "-f", path)
    # THEN the whole spec is shown as added, and PUT without If-Match registers it
    assert run.code == 0, run.err
    assert requests(api) == [("GET", "/apps/checkout"), ("PUT", "/apps/checkout")]
    put = api.seen[-1]
    assert put.body == MINIMAL
    assert "if-match" not in {k.lower() for k in put.headers}
    assert run.out.startswith(f"--- /dev/null\n+++ {path}\n")
    assert "+namespace: checkout\n" in run.out
    assert run.out.rstrip().endswith("checkout registered: version 1")


def test_a_change_is_shown_then_written_at_the_version_read(
    api: FakeApi, bluegreen: Callable[..., Run], tmp_path: Path
) -> None:
    # GIVEN checkout at version 3, a selector application
    api.routes[("GET", "/apps/checkout")] = (200, registered(version=3))
    api.routes[("PUT", "/apps/checkout")] = (200, registered(version=4, router={"kind": "alb"}))
    # AND a file, its spec alone, that makes it an alb application
    spec = {**MINIMAL, "router": {"kind": "alb"}}
    path = write(tmp_path, json.dumps(spec), "checkout.json")
    # WHEN it is applied under its name
    run = bluegreen("--endpoint", api.url, "apps", "apply", "-f", path, "--name", "checkout")
    # THEN the difference is the router's kind alone, as a unified diff of sorted YAML
    assert run.code == 0, run.err
    diff, _, result = run.out.rpartition("\n\n")
    changed = [
        line
        for line in diff.splitlines()
        if line[:1] in "+-" and not line.startswith(("+++", "---"))
    ]
    assert changed == ["-  kind: selector", "+  kind: alb"]
    assert diff.startswith(f"--- checkout (version 3)\n+++ {path}\n")
    # AND the file's spec was PUT with If-Match of the version read
    assert requests(api) == [("GET", "/apps/checkout"), ("PUT", "/apps/checkout")]
    assert api.seen[-1].headers["If-Match"] == '"3"'
    assert api.seen[-1].body == spec
    assert result.strip() == "checkout replaced: version 4"


def test_no_change_writes_nothing(
    api: FakeApi, bluegreen: Callable[..., Run], tmp_path: Path
) -> None:
    # GIVEN the registry's spec is what the file says, the file leaving out the defaults
    api.routes[("GET", "/apps/checkout")] = (
        200,
        registered(deploy={"hooks": [{"name": "warm", "command": ["true"]}]}),
    )
    spec = {**MINIMAL, "deploy": {"hooks": [{"name": "warm", "command": ["true"]}]}}
    path = write(tmp_path, {"name": "checkout", "spec": spec})
    run = bluegreen("--endpoint", api.url, "apps", "apply", "-f", path)
    # THEN nothing changes and nothing is written
    assert run.code == 0, run.err
    assert run.out == "checkout: no change (version 3)\n"
    assert requests(api) == [("GET", "/apps/checkout")]


def test_dry_run_shows_the_change_and_writes_nothing(
    api: FakeApi, bluegreen: Callable[..., Run], tmp_path: Path
) -> None:
    api.routes[("GET", "/apps/checkout")] = (200, registered())
    path = write(tmp_path, {"name": "checkout", "spec": {**MINIMAL, "repository": "shop/v2"}})
    run = bluegreen("--endpoint", api.url, "apps", "apply", "-f", path, "--dry-run")
    assert run.code == 0, run.err
    assert "-repository: shop/checkout\n+repository: shop/v2\n" in run.out
    assert run.out.rstrip().endswith(
        "dry run: nothing written (without --dry-run: replace version 3 of checkout)"
    )
    assert requests(api) == [("GET", "/apps/checkout")]


def test_a_concurrent_change_is_a_conflict_and_nothing_is_overwritten(
    api: FakeApi, bluegreen: Callable[..., Run], tmp_path: Path
) -> None:
    # GIVEN someone changes checkout between the read and the write
    api.routes[("GET", "/apps/checkout")] = (200, registered(version=3))
    api.routes[("PUT", "/apps/checkout")] = (
        409,
        {"error": "AppVersionConflict", "detail": "checkout is at version 4, not 3"},
    )
    path = write(tmp_path, {"name": "checkout", "spec": {**MINIMAL, "repository": "shop/v2"}})
    run = bluegreen("--endpoint", api.url, "apps", "apply", "-f", path)
    # THEN the write was conditional on version 3, and the refusal says what to do
    assert api.seen[-1].headers["If-Match"] == '"3"'
    assert run.code == 2
    assert run.err.count("\n") == 1
    assert run.err.startswith(
        "bluegreen: error: HTTP 409: AppVersionConflict: checkout is at version 4, not 3; "
        "nothing was written"
    )
    as_json = bluegreen("--endpoint", api.url, "--json", "apps", "apply", "-f", path)
    assert as_json.json["status"] == 409
    assert as_json.json["error"] == "AppVersionConflict"


def test_stdin_and_an_apps_show_answer(
    api: FakeApi, bluegreen: Callable[..., Run], monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN what `apps show --json` printed, edited, on standard input
    answer = registered(version=3)
    edited = copy.deepcopy(answer)
    edited["spec"]["deploy"]["bakeSeconds"] = 60
    monkeypatch.setattr("sys.stdin", io.StringIO(json.dumps(edited)))
    api.routes[("GET", "/apps/checkout")] = (200, answer)
    api.routes[("PUT", "/apps/checkout")] = (200, registered(version=4))
    run = bluegreen("--endpoint", api.url, "apps", "apply", "-f", "-")
    # THEN its spec alone is sent, at the version read from the registry
    assert run.code == 0, run.err
    assert api.seen[-1].body == edited["spec"]
    assert api.seen[-1].headers["If-Match"] == '"3"'
    assert "+++ standard input\n" in run.out
    assert "-  bakeSeconds: 0\n+  bakeSeconds: 60\n" in run.out


def test_json_says_what_happened(
    api: FakeApi, bluegreen: Callable[..., Run], tmp_path: Path
) -> None:
    api.routes[("GET", "/apps/checkout")] = (200, registered(version=3))
    api.routes[("PUT", "/apps/checkout")] = (200, registered(version=4))
    path = write(tmp_path, {"name": "checkout", "spec": {**MINIMAL, "repository": "shop/v2"}})
    run = bluegreen("--endpoint", api.url, "--json", "apps", "apply", "-f", path)
    assert run.code == 0, run.err
    assert run.json["name"] == "checkout"
    assert (run.json["changed"], run.json["written"], run.json["dryRun"]) == (True, True, False)
    assert run.json["version"] == 3
    assert run.json["app"] == registered(version=4)
    assert "+repository: shop/v2" in run.json["diff"]


def test_other_api_errors_of_the_read_are_reported(
    api: FakeApi, bluegreen: Callable[..., Run], tmp_path: Path
) -> None:
    api.routes[("GET", "/apps/checkout")] = (503, {"error": "ServiceUnavailable", "detail": "x"})
    path = write(tmp_path, {"name": "checkout", "spec": MINIMAL})
    run = bluegreen("--endpoint", api.url, "apps", "apply", "-f", path)
    assert run.code == 3
    assert run.err == "bluegreen: error: HTTP 503: ServiceUnavailable: x\n"
    assert requests(api) == [("GET", "/apps/checkout")]


# -- usage errors: before any request ---------------------------------------------------


@pytest.mark.parametrize(
    ("content", "argv", "message"),
    [
        ("- cluster: fleet\n", (), "is not a mapping"),
        ("just words\n", (), "is not a mapping"),
        ("", (), "is not a mapping"),
        ("a: [\n", (), "is neither JSON nor YAML"),
        ("a: 1\n---\nb: 2\n", (), "holds 2 YAML documents: one application per file"),
        (MINIMAL, (), "names no application: pass --name NAME"),
        ({"name": "checkout", "spec": MINIMAL}, ("--name", "cart"), "names application"),
        ({"name": "Checkout", "spec": MINIMAL}, (), "is not an application name"),
        ({"name": 7, "spec": MINIMAL}, (), "its name is not a string"),
        ({"name": "checkout", "spec": [MINIMAL]}, (), "its spec is not a mapping"),
        ({"name": "checkout", "spec": MINIMAL, "owner": "x"}, (), "owner is not a field"),
        ({"name": "checkout", "spec": {"cluster": "fleet"}}, (), "has no namespace, repository"),
        (
            {"name": "checkout", "spec": {**MINIMAL, "router": {"type": "alb"}}},
            (),
            "router.type is not a field of an application spec",
        ),
        (
            {"name": "checkout", "spec": {**MINIMAL, "deploy": {"hooks": [{"name": "x"}]}}},
            (),
            "deploy.hooks[0] has no command",
        ),
        (
            {"name": "checkout", "spec": {**MINIMAL, "objects": "canary-env"}},
            (),
            "objects must be a mapping",
        ),
        (
            "name: checkout\nspec:\n  cluster: fleet\n  namespace: checkout\n"
            "  repository: shop/checkout\n  deploy:\n    healthUrl: 2026-01-01\n",
            (),
            "a value is not JSON data",
        ),
    ],
)
def test_a_file_that_is_not_one_application_is_a_usage_error_and_nothing_is_sent(
    api: FakeApi,
    bluegreen: Callable[..., Run],
    tmp_path: Path,
    content: object,
    argv: tuple[str, ...],
    message: str,
) -> None:
    path = write(tmp_path, content)
    run = bluegreen("--endpoint", api.url, "apps", "apply", "-f", path, *argv)
    assert run.code == 2, run.out
    assert run.err.startswith(f"bluegreen: error: -f: {path}")
    assert message in run.err
    assert run.err.count("\n") == 1
    assert api.seen == []


@pytest.mark.parametrize(
    "argv",
    [
        ("apps", "apply"),
        ("apps", "apply", "-f", "NOFILE"),
        ("apps", "apply", "-f", "-", "--name", "Bad_Name"),
    ],
)
def test_usage_errors_of_the_command_line_send_nothing(
    api: FakeApi, bluegreen: Callable[..., Run], tmp_path: Path, argv: tuple[str, ...]
) -> None:
    argv = tuple(str(tmp_path / "missing.yaml") if word == "NOFILE" else word for word in argv)
    run = bluegreen("--endpoint", api.url, *argv)
    assert run.code == 2
    assert run.err.startswith("bluegreen: error: ")
    assert run.err.count("\n") == 1
    assert api.seen == []
