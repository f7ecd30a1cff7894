"""One function per subcommand: call the API, print a table (or the JSON), return the exit code."""

from __future__ import annotations

import argparse
import copy
import difflib
import json
import re
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, TextIO
from urllib.parse import quote

from bluegreen_cli import manifests
from bluegreen_cli.api import ApiClient, Response, check_app_name
from bluegreen_cli.deployments import execution_of, progress_of, record_of, watch
from bluegreen_cli.errors import EXIT_FAILED, EXIT_OK, EXIT_UNAVAILABLE, ApiError, CliError
from bluegreen_cli.local_stack import LocalStackInfo
from bluegreen_cli.tables import pairs, short_digest, table


@dataclass
class Context:
    """What every command receives: the client, the options and where to print."""

    client: ApiClient
    args: argparse.Namespace
    out: TextIO
    err: TextIO
    local: LocalStackInfo | None = None

    @property
    def as_json(self) -> bool:
        return bool(getattr(self.args, "json", False))

    def emit(self, body: Any, text: str) -> None:
        """Print the API's answer as JSON with ``--json``, else the human rendering."""
        if self.as_json:
            self.out.write(json.dumps(body, indent=2, sort_keys=True, default=str) + "\n")
        else:
            self.out.write(text.rstrip("\n") + "\n")


# -- status / switch ---------------------------------------------------------


def status(ctx: Context) -> int:
    """``GET /services``: which colour is which, what each runs, how ready it is."""
    body = ctx.client.get("/services")
    ctx.emit(body, render_status(body))
    return EXIT_OK


def switch(ctx: Context) -> int:
    """``POST /services {"selector": colour}``: make that colour the canary."""
    body = ctx.client.post("/services", {"selector": ctx.args.colour})
    if isinstance(body, dict) and body.get("changed") is False:
        text = f"{ctx.args.colour} was already the canary: nothing changed"
    elif isinstance(body, dict):
        text = f"canary: {body.get('canary')}  production: {body.get('production')}"
    else:
        text = str(body)
    ctx.emit(body, text)
    return EXIT_OK


def render_status(body: Any) -> str:
    """The services view: one row per colour, then the ConfigMap and any disagreement."""
    if not isinstance(body, dict):
        return str(body)
    colours = _mapping(body.get("colours"))
    rows = []
    for name, info in sorted(colours.items()):
        info = info if isinstance(info, dict) else {}
        replicas = _mapping(info.get("replicas"))
        rows.append(
            (
                name,
                info.get("role"),
                short_digest(info.get("digest") or info.get("image")),
                f"{replicas.get('ready', '?')}/{replicas.get('desired', '?')}",
                info.get("rollout"),
                info.get("message"),
            )
        )
    headers = ("colour", "role", "digest", "ready", "rollout", "message")
    lines = [table(headers, rows)]
    canary_env = _mapping(body.get("canaryEnv"))
    services = _mapping(body.get("services"))
    facts: list[tuple[str, object]] = [
        ("canary", body.get("canary")),
        ("production", body.get("production")),
        (
            "canaryEnv",
            f"selector={canary_env.get('selector')} image={short_digest(canary_env.get('image'))}"
            + ("" if canary_env.get("present", True) else " (key missing: initial canary)"),
        ),
        ("services", " ".join(f"{k}->{v}" for k, v in sorted(services.items()))),
    ]
    disagreements = body.get("disagreements") or []
    if body.get("inAgreement") is False or disagreements:
        facts.append(("DISAGREEMENT", "; ".join(str(d) for d in disagreements) or "yes"))
    lines.append(pairs(facts))
    return "\n\n".join(lines)


# -- deploy / rollback / promote -------------------------------------------------


def deploy(ctx: Context) -> int:
    """``POST /services {"imageTag", "service"}``: start the deploy flow."""
    payload: dict[str, object] = {"imageTag": ctx.args.image, "service": ctx.args.service}
    if getattr(ctx.args, "force", False):
        payload["force"] = True
    return _started(ctx, ctx.client.post("/services", _with_reason(ctx, payload)))


def rollback(ctx: Context) -> int:
    """``POST /rollback {"service"}``: roll the colour back to its last healthy digest."""
    payload: dict[str, object] = {"service": ctx.args.service}
    return _started(ctx, ctx.client.post("/rollback", _with_reason(ctx, payload)))


def promote(ctx: Context) -> int:
    """``POST /promote``: put what the canary runs on production (with ``--steps``, by steps)."""
    payload: dict[str, object] = {}
    steps = getattr(ctx.args, "steps", None)
    if steps:
        payload["strategy"] = {"steps": steps}
    return _started(ctx, ctx.client.post("/promote", _with_reason(ctx, payload)))


def parse_steps(text: str) -> list[dict[str, object]]:
    """``10,50:manual,100`` as the API's steps (the API judges them: order, the end at 100).

    Raises ``argparse.ArgumentTypeError`` for what is not ``weight[:seconds|manual]``.
    """
    steps: list[dict[str, object]] = []
    for part in (piece.strip() for piece in text.split(",")):
        weight, sep, pause = part.partition(":")
        if not weight.isdigit() or (sep and pause != "manual" and not pause.isdigit()):
            raise argparse.ArgumentTypeError(
                f"{part!r} is not WEIGHT[:SECONDS|manual] (for example 10,50:manual,100)"
            )
        step: dict[str, object] = {"weight": int(weight)}
        if sep:
            step["pause"] = pause if pause == "manual" else int(pause)
        steps.append(step)
    return steps


def resume(ctx: Context) -> int:
    """``POST /deployments/{id}/resume``: go on past the manual gate (or hold it)."""
    payload: dict[str, object] = {"hold": True} if getattr(ctx.args, "hold", False) else {}
    body = ctx.client.post(
        f"/deployments/{quote(ctx.args.id, safe='')}/resume", _with_reason(ctx, payload)
    )
    ctx.emit(body, render_started(body))
    return EXIT_OK


def abort(ctx: Context) -> int:
    """``POST /deployments/{id}/abort``: back the promotion out."""
    body = ctx.client.post(
        f"/deployments/{quote(ctx.args.id, safe='')}/abort", _with_reason(ctx, {})
    )
    ctx.emit(body, render_started(body))
    return EXIT_OK


def _with_reason(ctx: Context, payload: dict[str, object]) -> dict[str, object]:
    """``payload`` with ``--reason`` added when one was given."""
    reason = getattr(ctx.args, "reason", None)
    return {**payload, "reason": reason} if reason else payload


def _started(ctx: Context, body: Any) -> int:
    """Report a 202 answer; with ``--wait`` follow the deployment to its end."""
    deployment_id = body.get("deploymentId") if isinstance(body, dict) else None
    if not getattr(ctx.args, "wait", False) or not deployment_id:
        ctx.emit(body, render_started(body))
        return EXIT_OK
    return follow(ctx, str(deployment_id), render_started(body))


def follow(ctx: Context, deployment_id: str, heading: str) -> int:
    """Print ``heading`` (not with ``--json``), then watch the deployment to its end."""
    if not ctx.as_json:
        ctx.out.write(heading + "\n\n")
        ctx.out.flush()
    final = watch(ctx.client, deployment_id, interval=ctx.args.interval, out=ctx.err)
    return _finished(ctx, final)


def render_started(body: Any) -> str:
    """The deployment id, execution and console link of a started flow."""
    if not isinstance(body, dict):
        return str(body)
    keys = ("deploymentId", "action", "service", "digest", "executionArn", "consoleUrl")
    items = [(k, body[k]) for k in keys if body.get(k)]
    items += [(k, v) for k, v in body.items() if k not in keys and not isinstance(v, dict | list)]
    return pairs(items)


# -- history / deployments / show / watch ----------------------------------------


def history(ctx: Context) -> int:
    """``GET /images``: every pushed digest, newest first, with its verdict."""
    body = ctx.client.get("/images", {"limit": ctx.args.limit, "cursor": ctx.args.cursor})
    rows = []
    for item in _items(body, "images"):
        running = item.get("runningOn")
        where = (
            "?"
            if running is None
            else ",".join(
                f"{p.get('colour')}({p.get('role')})" for p in running if isinstance(p, dict)
            )
        )
        verdict = item.get("verdict")
        reason = str(item.get("verdictReason") or "")
        if verdict == "failed" and reason:
            verdict = f"failed: {reason[:60]}" + ("..." if len(reason) > 60 else "")
        rows.append(
            (
                short_digest(item.get("digest")),
                item.get("tags"),
                item.get("pushedAt"),
                verdict,
                where,
            )
        )
    text = table(("digest", "tags", "pushed", "verdict", "running on"), rows)
    if isinstance(body, dict) and body.get("clusterError"):
        text += f"\n\n(cluster not asked: {body['clusterError']})"
    ctx.emit(body, text + _next_page(body))
    return EXIT_OK


def deployments(ctx: Context) -> int:
    """``GET /deployments``: deployments newest first."""
    body = ctx.client.get("/deployments", {"limit": ctx.args.limit, "cursor": ctx.args.cursor})
    rows = [
        (
            item.get("id"),
            item.get("action"),
            item.get("service"),
            item.get("colour"),
            short_digest(item.get("fromDigest")),
            short_digest(item.get("toDigest")),
            item.get("outcome"),
            item.get("trigger"),
            item.get("actor"),
            item.get("startedAt"),
        )
        for item in _items(body, "deployments")
    ]
    headers = (
        "id",
        "action",
        "service",
        "colour",
        "from",
        "to",
        "outcome",
        "trigger",
        "actor",
        "started",
    )
    ctx.emit(body, table(headers, rows) + _next_page(body))
    return EXIT_OK


def show(ctx: Context) -> int:
    """``GET /deployments/{id}``: the record and the live execution."""
    body = ctx.client.get(f"/deployments/{quote(ctx.args.id, safe='')}")
    ctx.emit(body, render_deployment(body))
    return EXIT_OK


def watch_command(ctx: Context) -> int:
    """Follow a deployment until its execution ends; exit 1 unless it succeeded."""
    final = watch(
        ctx.client, ctx.args.id, interval=ctx.args.interval, timeout=ctx.args.max_wait, out=ctx.err
    )
    return _finished(ctx, final)


def _finished(ctx: Context, body: Any) -> int:
    ctx.emit(body, render_deployment(body))
    progress = progress_of(body)
    if progress.succeeded:
        return EXIT_OK
    if ctx.as_json:
        return EXIT_FAILED
    what = progress.outcome or progress.status.lower()
    reason = ""
    if progress.error:
        # The flow's causes often begin with the error's name already: say it once.
        named = progress.cause.startswith(f"{progress.error}:") or progress.cause == progress.error
        cause = progress.cause if named else f"{progress.error}: {progress.cause}"
        reason = f" ({cause.rstrip(': ')})"
    ident = body.get("id", "") if isinstance(body, dict) else ""
    raise CliError(f"deployment {ident} ended {what}{reason}", EXIT_FAILED)


def render_deployment(body: Any) -> str:
    """A deployment's record and its execution as aligned ``key  value`` lines."""
    record, execution = record_of(body), execution_of(body)
    items: list[tuple[str, object]] = [("id", body.get("id") if isinstance(body, dict) else "")]
    items += [
        (key, short_digest(value) if key.endswith(("Digest", "To")) else value)
        for key, value in record.items()
        if key != "id" and not isinstance(value, dict | list)
    ]
    if not record:
        status = str(execution.get("status") or "").upper()
        if status and status != "RUNNING":
            # An ended execution will never write the record: its error says why.
            missing = "no record: the execution ended before the deployment was recorded"
            items.append(("record", f"{missing} (see its error below)"))
        else:
            items.append(("record", "not written yet (the flow has not reached it)"))
    items += [(f"execution.{k}", v) for k, v in execution.items() if not isinstance(v, dict | list)]
    if isinstance(body, dict) and body.get("consoleUrl"):
        items.append(("console", body["consoleUrl"]))
    text = pairs(items)
    promotion = _mapping(body.get("promotion")) if isinstance(body, dict) else {}
    if promotion:
        text += "\n\n" + render_promotion(promotion)
    for hook, log in _mapping(record.get("hookLogs")).items():
        text += f"\n\nhook {hook} (log tail):\n" + "\n".join(
            f"  {line}" for line in str(log).splitlines()
        )
    return text


def render_promotion(promotion: dict[str, Any]) -> str:
    """A progressive promotion: where it is, whether it waits for a person, its readings."""
    steps = [s for s in promotion.get("steps") or [] if isinstance(s, dict)]
    plan = " -> ".join(
        f"{s.get('weight')} %" + (f" ({s['pause']})" if s.get("pause") not in (None, 0) else "")
        for s in steps
    )
    weights = _mapping(promotion.get("weights"))
    items: list[tuple[str, object]] = [
        ("promotion", promotion.get("status")),
        ("step", f"{promotion.get('step')} of {len(steps)}: {plan}"),
        ("weights", ", ".join(f"{colour} {weight} %" for colour, weight in weights.items())),
        (
            "waiting",
            f"for a person: {promotion.get('waitingFor')}"
            if promotion.get("waitingForPerson")
            else "no",
        ),
    ]
    if promotion.get("abortRequestedBy"):
        items.append(("abort asked by", promotion["abortRequestedBy"]))
    for gate in promotion.get("gates") or []:
        if isinstance(gate, dict):
            items.append(
                (f"gate {gate.get('step')}", f"{gate.get('decision')} by {gate.get('actor')}")
            )
    text = pairs(items)
    analyses = [a for a in promotion.get("analyses") or [] if isinstance(a, dict)]
    if analyses:
        rows = [
            [
                str(a.get("weight", "")),
                str(a.get("finding", "")),
                str(int(float(a.get("requests") or 0))),
                "" if a.get("errorPercent") is None else f"{float(a['errorPercent']):.2f}",
                "" if a.get("p99Seconds") is None else f"{float(a['p99Seconds']):.3f}",
            ]
            for a in analyses
        ]
        text += "\n\nreadings:\n" + table(
            ["weight %", "finding", "requests", "5xx %", "p99 s"], rows
        )
    return text


# -- manifests: what an application's namespace needs -------------------------------


def manifests_command(ctx: Context) -> int:
    """``GET /apps/{app}``: the application's Role and RoleBinding (with ``--with-objects``,
    the objects of a namespace that has none yet) as YAML for ``kubectl apply -f -``.

    The application: APP, else ``--app`` or ``$BLUEGREEN_APP``, else the stack's default
    application (the local stack's, else the template's default name).
    """
    named = getattr(ctx.args, "app_name", None) or ctx.client.app
    app = named or default_app(ctx.local)
    try:
        body = ctx.client.get(_app_path(app))
    except ApiError as exc:
        if exc.status != 404 or named:
            raise
        raise ApiError(
            exc.status,
            exc.error,
            f"{exc.detail or 'no such application'}; {app} is the default application's "
            "name unless the stack's AppName says otherwise: name the application, "
            "bluegreen manifests APP",
            exc.body,
        ) from None
    spec = complete_spec(_mapping(_mapping(body).get("spec")))
    group = ctx.args.group
    with_objects = bool(getattr(ctx.args, "with_objects", False))
    if ctx.as_json:
        items = manifests.documents(spec, app=app, group=group, with_objects=with_objects)
        ctx.emit({"apiVersion": "v1", "kind": "List", "items": items}, "")
    else:
        ctx.out.write(manifests.render(spec, app=app, group=group, with_objects=with_objects))
    return EXIT_OK


def default_app(local: LocalStackInfo | None) -> str:
    """The stack's default application's name: the local stack says it; a deployed stack's
    is its AppName parameter, which the API does not answer (the template's default)."""
    if local is not None:
        name = local.environment.get("BG_APP_NAME", "").strip()
        if name:
            return name
    return manifests.STACK_APP


# -- apps: the fleet's registry ----------------------------------------------------


def apps_list(ctx: Context) -> int:
    """``GET /apps``: a page of the registry, by name."""
    body = ctx.client.get("/apps", {"limit": ctx.args.limit, "cursor": ctx.args.cursor})
    rows = []
    for item in _items(body, "apps"):
        spec = _mapping(item.get("spec"))
        rows.append(
            (
                item.get("name"),
                spec.get("cluster"),
                spec.get("namespace"),
                spec.get("repository"),
                _mapping(spec.get("router")).get("kind") or "selector",
                item.get("version"),
                item.get("changedBy"),
                item.get("changedAt"),
            )
        )
    headers = (
        "name",
        "cluster",
        "namespace",
        "repository",
        "router",
        "version",
        "changed by",
        "changed at",
    )
    ctx.emit(body, table(headers, rows) + _next_page(body))
    return EXIT_OK


def apps_show(ctx: Context) -> int:
    """``GET /apps/{app}``: the application's version, last change and spec."""
    response = ctx.client.call("GET", _app_path(ctx.args.name))
    ctx.emit(response.body, render_app(response))
    return EXIT_OK


def apps_put(ctx: Context) -> int:
    """``PUT /apps/{app}``: register (no ``--version``) or replace at ``--version`` (If-Match)."""
    spec = read_spec(ctx.args.spec)
    version = getattr(ctx.args, "app_version", None)
    response = ctx.client.call(
        "PUT", _app_path(ctx.args.name), payload=spec, headers=_if_match(version)
    )
    what = "registered" if response.status == 201 else "replaced"
    heading = f"{ctx.args.name} {what}: version {_version_of(response)}"
    ctx.emit(response.body, heading + "\n\n" + render_app(response, with_spec=False))
    return EXIT_OK


def apps_delete(ctx: Context) -> int:
    """``DELETE /apps/{app}``, at ``--version`` only (If-Match) when one is given."""
    version = getattr(ctx.args, "app_version", None)
    response = ctx.client.call("DELETE", _app_path(ctx.args.name), headers=_if_match(version))
    heading = (
        f"{ctx.args.name} deleted (it was at version {_version_of(response)}); "
        "its ledger history is kept"
    )
    ctx.emit(response.body, heading + "\n\n" + render_app(response, with_spec=False))
    return EXIT_OK


def apps_apply(ctx: Context) -> int:
    """``apps apply -f FILE``: the file's application against the registry's, the difference
    printed, then ``PUT`` at the version read (If-Match), unless ``--dry-run`` or no change.

    The file is read and checked before any request. A name the registry does not hold
    (404) is registered: a ``PUT`` without If-Match, which only creates.
    """
    source = ctx.args.file
    name, spec = read_app_file(source, getattr(ctx.args, "name", None))
    path = _app_path(name)
    try:
        current: Response | None = ctx.client.call("GET", path)
    except ApiError as exc:
        if exc.status != 404 or exc.error == "RouteNotFound":
            raise
        current = None
    version: int | None = None
    before: dict[str, Any] | None = None
    if current is not None:
        read = _version_of(current)
        if not isinstance(read, int):
            raise CliError(
                f"the API's answer for {name} carries no version: nothing written",
                EXIT_UNAVAILABLE,
            )
        version, before = read, complete_spec(_mapping(_mapping(current.body).get("spec")))
    after = complete_spec(spec)
    changed = before != after
    where = "standard input" if source == "-" else source
    diff = spec_diff(before, after, f"{name} (version {version})" if version else name, where)
    dry_run = bool(getattr(ctx.args, "dry_run", False))
    answer: Response | None = None
    if changed and not dry_run:
        try:
            answer = ctx.client.call("PUT", path, payload=spec, headers=_if_match(version))
        except ApiError as exc:
            if exc.status != 409 or exc.error != "AppVersionConflict":
                raise
            raise ApiError(
                exc.status,
                exc.error,
                f"{exc.detail or 'the application changed'}; nothing was written: apply "
                "again to see what changes from the version there now",
                exc.body,
            ) from None
    if not changed:
        text = f"{name}: no change" + (f" (version {version})" if version else "")
    elif answer is None:
        action = "register" if version is None else f"replace version {version} of"
        text = f"{diff}\ndry run: nothing written (without --dry-run: {action} {name})"
    else:
        what = "registered" if answer.status == 201 else "replaced"
        text = f"{diff}\n{name} {what}: version {_version_of(answer)}"
    body = {
        "name": name,
        "changed": changed,
        "written": answer is not None,
        "dryRun": dry_run,
        "version": version,
        "diff": diff,
        "app": answer.body if answer is not None else None,
    }
    ctx.emit(body, text)
    return EXIT_OK


SPEC_DEFAULTS: dict[str, Any] = {
    "objects": {
        "configMap": "canary-env",
        "configMapKey": "canaryEnv",
        "container": "web",
        "deploymentPattern": "{colour}-deployment",
        "canaryService": "canary-service",
        "productionService": "production-service",
    },
    "router": {
        "kind": "selector",
        "colourServicePattern": "{colour}-service",
        "colourServicePort": "80",
        "ingress": {
            "name": "web",
            "productionAction": "production-weights",
            "canaryAction": "canary-forward",
        },
        "httpRoute": {"name": "web", "productionRule": "production", "canaryRule": "canary"},
    },
    "promotion": {
        "steps": [
            {"weight": 10, "pause": 300},
            {"weight": 50, "pause": 300},
            {"weight": 100, "pause": None},
        ],
        "pauseSeconds": 300,
        "gateTimeoutSeconds": 86_400,
        "gateHeartbeatSeconds": 0,
        "flipBackWindowSeconds": 3600,
    },
    "analysis": {
        "intervalSeconds": 60,
        "maxErrorPercent": 1.0,
        "maxP99Seconds": 1.0,
        "minRequests": 50,
        "failureLimit": 0,
        "inconclusiveLimit": 2,
        "targetGroups": {"blue": None, "green": None},
        "loadBalancer": "",
    },
    "deploy": {
        "autoDeployTags": ["dev"],
        "hooks": [
            {
                "name": "cache-flush",
                "command": ["wp", "cache", "flush", "--allow-root"],
                "onFailure": "rollback",
                "timeoutSeconds": 300,
            }
        ],
        "bakeSeconds": 0,
        "failAfterRestarts": 2,
        "failAfterSeconds": 60,
        "unschedulableSeconds": 180,
        "healthUrl": "",
        "alarmNames": [],
        "lockLeaseSeconds": 900,
    },
}
"""What the registry fills in for each field a spec leaves out (the API's ``AppSpec``
defaults; a test holds them equal): a file that leaves a field out asks for its default,
so comparing a file with the registry's spec needs them."""

SPEC_REQUIRED = ("cluster", "namespace", "repository")
"""The fields of a spec that have no default."""

SPEC_ITEMS: dict[str, tuple[frozenset[str], dict[str, Any]]] = {
    "promotion.steps": (frozenset({"weight"}), {"pause": None}),
    "deploy.hooks": (
        frozenset({"name", "command"}),
        {"onFailure": "rollback", "timeoutSeconds": 300},
    ),
}
"""The lists of objects in a spec: each item's required fields, and its other fields'
defaults."""

ANSWER_FIELDS = frozenset(
    {"version", "changedBy", "changedAt", "createdBy", "createdAt", "sourceIp", "release"}
)
"""What an ``apps show --json`` answer holds besides name and spec: read, never sent."""


def complete_spec(spec: Mapping[str, Any]) -> dict[str, Any]:
    """``spec`` with every field it leaves out at its default, as the registry keeps it."""
    return _completed(spec, SPEC_DEFAULTS, "")


def _completed(given: Mapping[str, Any], defaults: Mapping[str, Any], at: str) -> dict[str, Any]:
    found = dict(given)
    for key, default in defaults.items():
        path = f"{at}.{key}" if at else key
        if key not in given:
            found[key] = copy.deepcopy(default)
        elif isinstance(default, dict) and isinstance(given[key], Mapping):
            found[key] = _completed(given[key], default, path)
        elif path in SPEC_ITEMS and isinstance(given[key], list):
            _, item_defaults = SPEC_ITEMS[path]
            found[key] = [
                {**item_defaults, **item} if isinstance(item, Mapping) else item
                for item in given[key]
            ]
    return found


def spec_problem(spec: Mapping[str, Any]) -> str | None:
    """What makes ``spec`` no application spec at all (a missing or unknown field, a group
    that is not a mapping), or None; the API judges the values."""
    missing = [key for key in SPEC_REQUIRED if key not in spec]
    if missing:
        return f"the spec has no {', '.join(missing)} (required)"
    return _unknown(spec, SPEC_DEFAULTS, "", SPEC_REQUIRED)


def _unknown(
    given: Mapping[str, Any], defaults: Mapping[str, Any], at: str, also: Iterable[str] = ()
) -> str | None:
    known = set(defaults) | set(also)
    for key, value in given.items():
        path = f"{at}.{key}" if at else str(key)
        if key not in known:
            return f"{path} is not a field of an application spec"
        default = defaults.get(key)
        if isinstance(default, dict):
            if not isinstance(value, Mapping):
                return f"{path} must be a mapping"
            problem = _unknown(value, default, path)
            if problem:
                return problem
        elif path in SPEC_ITEMS:
            required, item_defaults = SPEC_ITEMS[path]
            if not isinstance(value, list):
                return f"{path} must be a list"
            for index, item in enumerate(value):
                if not isinstance(item, Mapping):
                    return f"{path}[{index}] must be a mapping"
                missing = sorted(required - set(item))
                if missing:
                    return f"{path}[{index}] has no {', '.join(missing)} (required)"
                problem = _unknown(item, item_defaults, f"{path}[{index}]", required)
                if problem:
                    return problem
    return None


def read_app_file(source: str, name: str | None) -> tuple[str, dict[str, Any]]:
    """The application ``-f`` names (YAML or JSON, ``-`` standard input): its name and spec.

    Either ``{"name": ..., "spec": {...}}`` (an ``apps show --json`` answer too: its
    version and change are left aside) or a bare spec, named by ``--name``. What is not
    one application is a usage error, before any request is sent.
    """
    where = "standard input" if source == "-" else source
    document = _document(_read_text(source, "-f"), where)
    if not isinstance(document, dict):
        raise CliError(
            f"-f: {where} is not a mapping: expected one application, "
            '{"name": ..., "spec": {...}}, or its spec with --name'
        )
    spec: Any = document
    if "spec" in document:
        spec = document["spec"]
        extra = sorted(str(k) for k in set(document) - {"name", "spec"} - ANSWER_FIELDS)
        if extra:
            raise CliError(
                f"-f: {where}: {extra[0]} is not a field of an application "
                '(expected {"name": ..., "spec": {...}})'
            )
        if not isinstance(spec, dict):
            raise CliError(f"-f: {where}: its spec is not a mapping")
        named = document.get("name")
        if named is not None and not isinstance(named, str):
            raise CliError(f"-f: {where}: its name is not a string")
        if name and named and named != name:
            raise CliError(f"-f: {where} names application {named!r}, --name {name!r}")
        name = name or named
    if not name:
        raise CliError(
            f"-f: {where} names no application: pass --name NAME, or write it as "
            '{"name": ..., "spec": {...}}'
        )
    try:
        check_app_name(name)
    except CliError as exc:
        raise CliError(f"-f: {where}: {exc.message}") from None
    problem = spec_problem(spec)
    if problem:
        raise CliError(f"-f: {where}: {problem}")
    try:
        json.dumps(spec, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise CliError(f"-f: {where}: a value is not JSON data ({exc})") from None
    return name, spec


def _document(text: str, where: str) -> Any:
    """The one JSON value or YAML document of a file (None when it holds none)."""
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        pass  # not JSON: read as YAML, which says what is wrong
    import yaml  # imported here: plain --help stays fast

    try:
        documents = list(yaml.safe_load_all(text))
    except yaml.YAMLError as exc:
        problem = " ".join(str(exc).split())
        raise CliError(f"-f: {where} is neither JSON nor YAML: {problem}") from None
    except RecursionError:
        raise CliError(f"-f: {where} is nested too deeply") from None
    if len(documents) > 1:
        raise CliError(
            f"-f: {where} holds {len(documents)} YAML documents: one application per file"
        )
    return documents[0] if documents else None


def spec_diff(
    before: Mapping[str, Any] | None, after: Mapping[str, Any], old: str, new: str
) -> str:
    """A unified diff of two specs as sorted YAML (from nothing when ``before`` is None)."""
    import yaml

    def lines(spec: Mapping[str, Any] | None) -> list[str]:
        if spec is None:
            return []
        text = yaml.safe_dump(dict(spec), sort_keys=True, default_flow_style=False)
        return text.splitlines(keepends=True)

    diff = difflib.unified_diff(
        lines(before), lines(after), fromfile=old if before is not None else "/dev/null", tofile=new
    )
    return "".join(diff)


def _read_text(source: str, option: str) -> str:
    """The text of a file, or of standard input for ``-``; a usage error when unreadable."""
    where = "standard input" if source == "-" else source
    try:
        if source == "-":
            return sys.stdin.read()
        with open(source, encoding="utf-8") as file:
            return file.read()
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise CliError(f"{option}: cannot read {where}: {reason}") from None


def read_spec(source: str) -> dict[str, Any]:
    """The spec ``--spec`` names: a JSON object from a file, or from stdin for ``-``.

    An ``apps show --json`` answer (name, version, spec, ...) gives its ``spec``.
    Anything else is a usage error, before any request is sent.
    """
    where = "standard input" if source == "-" else source
    text = _read_text(source, "--spec")
    try:
        spec = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise CliError(f"--spec: {where} is not JSON: {exc}") from None
    if not isinstance(spec, dict):
        raise CliError(f"--spec: {where} is not a JSON object (the application's spec)")
    inner = spec.get("spec")
    if isinstance(inner, dict) and "version" in spec:
        return inner
    return spec


def render_app(response: Response, *, with_spec: bool = True) -> str:
    """An application as ``key  value`` lines, then (``with_spec``) its spec as JSON."""
    body = _mapping(response.body)
    if not body:
        return str(response.body)
    items: list[tuple[str, object]] = [
        ("name", body.get("name")),
        ("version", _version_of(response)),
        ("changed by", body.get("changedBy")),
        ("changed at", body.get("changedAt")),
        ("created by", body.get("createdBy")),
        ("created at", body.get("createdAt")),
    ]
    if body.get("sourceIp"):
        items.append(("source ip", body["sourceIp"]))
    text = pairs(items)
    if with_spec:
        text += "\n\nspec:\n" + json.dumps(body.get("spec"), indent=2, sort_keys=True)
    return text


def _app_path(name: str) -> str:
    return f"/apps/{quote(name, safe='')}"


def _if_match(version: int | None) -> dict[str, str]:
    return {} if version is None else {"If-Match": f'"{version}"'}


def _version_of(response: Response) -> object:
    """The version in the answer's body, else the one its ETag names."""
    body = _mapping(response.body)
    if body.get("version") is not None:
        return body["version"]
    found = re.search(r"[0-9]+", response.headers.get("etag", ""))
    return int(found.group()) if found else "?"


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _items(body: Any, key: str) -> list[dict[str, Any]]:
    items: Iterable[Any] = (
        body.get(key) or body.get("items") or []
        if isinstance(body, dict)
        else (body if isinstance(body, list) else [])
    )
    return [item for item in items if isinstance(item, dict)]


def _next_page(body: Any) -> str:
    cursor = body.get("cursor") or body.get("nextCursor") if isinstance(body, dict) else None
    return f"\n\nmore: --cursor {cursor}" if cursor else ""
