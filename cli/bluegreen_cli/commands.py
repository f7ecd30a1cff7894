"""One function per subcommand: call the API, print a table (or the JSON), return the exit code."""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, TextIO
from urllib.parse import quote

from bluegreen_cli.api import ApiClient, Response
from bluegreen_cli.deployments import execution_of, progress_of, record_of, watch
from bluegreen_cli.errors import EXIT_FAILED, EXIT_OK, CliError
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


def read_spec(source: str) -> dict[str, Any]:
    """The spec ``--spec`` names: a JSON object from a file, or from stdin for ``-``.

    An ``apps show --json`` answer (name, version, spec, ...) gives its ``spec``.
    Anything else is a usage error, before any request is sent.
    """
    where = "standard input" if source == "-" else source
    try:
        if source == "-":
            text = sys.stdin.read()
        else:
            with open(source, encoding="utf-8") as file:
                text = file.read()
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise CliError(f"--spec: cannot read {where}: {reason}") from None
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
