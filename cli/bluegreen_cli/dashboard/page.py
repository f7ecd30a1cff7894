"""The page: its assets, shipped in the package, and the first view rendered into it.

``index.html`` gets the first answers of the API embedded (so the script draws
the colours at once, without a second round trip) and the same state as plain
text inside ``<noscript>``: without scripts the page still reads as the CLI's
``status``, ``history`` and ``deployments`` would print it. The page shows one
application at a time: the stack's default one (the un-prefixed routes), or the one
its URL names (``?app=checkout``), whose first answers come from ``/apps/{app}/...``.
"""

from __future__ import annotations

import html
import json
from collections.abc import Mapping
from importlib import resources
from typing import Any
from urllib.parse import parse_qs

from bluegreen_cli.commands import render_status
from bluegreen_cli.dashboard.forwarding import Answer, is_app_name
from bluegreen_cli.tables import short_digest, table

ASSET_TYPES: Mapping[str, str] = {
    "dashboard.css": "text/css; charset=utf-8",
    "dashboard.js": "text/javascript; charset=utf-8",
    "promotion.js": "text/javascript; charset=utf-8",
    "favicon.svg": "image/svg+xml",
}
"""The files served under ``/assets/``, and nothing else."""

INITIAL_CALLS: Mapping[str, str] = {
    "services": "/services",
    "images": "/images?limit=25",
    "deployments": "/deployments?limit=25",
}
"""The calls the first view is drawn from (the script polls the same ones)."""


def app_in_query(query: str) -> str | None:
    """The application a page URL's query names (``app=checkout``); None for the stack's
    default application, or for a value that is no application name (the script says so)."""
    names = parse_qs(query).get("app") or [""]
    return names[0] if is_app_name(names[0]) else None


def initial_calls(app: str | None = None) -> dict[str, str]:
    """``INITIAL_CALLS`` for ``app``: under ``/apps/{app}``, or as they are for the default."""
    prefix = f"/apps/{app}" if app else ""
    return {name: prefix + target for name, target in INITIAL_CALLS.items()}


def asset(name: str) -> bytes:
    """One of the page's files, read from the installed package."""
    return (resources.files("bluegreen_cli.dashboard") / "assets" / name).read_bytes()


def render_index(
    token: str,
    endpoint: str,
    initial: Mapping[str, Answer],
    app: str | None = None,
    default_app: str | None = None,
) -> bytes:
    """``index.html`` with the call token, the endpoint, the first answers (of ``app``, None
    for the default application) and their text. ``default_app`` names the application the
    un-prefixed routes reach when the CLI's client sends them under ``/apps/{app}``."""
    template = asset("index.html").decode()
    state: dict[str, object] = {
        name: {"status": a.status, "body": a.body} for name, a in initial.items()
    }
    state["app"] = app
    state["defaultApp"] = default_app
    replacements = {
        "__TOKEN__": html.escape(token),
        "__ENDPOINT__": html.escape(endpoint),
        "__APP__": html.escape(app_label(app, default_app)),
        "__INITIAL__": _script_json(state),
        "__FALLBACK__": fallback_html(initial),
    }
    for marker, value in replacements.items():
        template = template.replace(marker, value)
    return template.encode()


def app_label(app: str | None, default_app: str | None = None) -> str:
    """How the page names the application it shows."""
    if app:
        return app
    return f"{default_app} (the default)" if default_app else "the stack's default application"


def _script_json(value: object) -> str:
    # Inside <script type="application/json">: no "</script>" or "<!--" may appear.
    text = json.dumps(value, separators=(",", ":"), default=str)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def fallback_html(initial: Mapping[str, Answer]) -> str:
    """The state as preformatted text sections, for a browser without scripts."""
    parts = []
    for title, name, render in (
        ("Colours", "services", render_status),
        ("Images", "images", images_text),
        ("Deployments", "deployments", deployments_text),
    ):
        answer = initial.get(name)
        if answer is None:
            continue
        text = render(answer.body) if answer.status == 200 else error_text(answer)
        parts.append(f"<section><h2>{title}</h2><pre>{html.escape(text)}</pre></section>")
    return "\n".join(parts)


def error_text(answer: Answer) -> str:
    """``HTTP 503 ClusterUnavailable: detail``: an error answer as one line."""
    body = answer.body
    if isinstance(body, dict):
        error = body.get("error") or body.get("message") or "error"
        detail = body.get("detail") or ""
        return f"HTTP {answer.status} {error}" + (f": {detail}" if detail else "")
    return f"HTTP {answer.status} {body}"


def images_text(body: Any) -> str:
    """The ledger's images as the CLI's ``history`` table."""
    rows = []
    for item in _items(body, "images"):
        running = item.get("runningOn")
        where = (
            "?"
            if running is None
            else ", ".join(f"{p.get('colour')} ({p.get('role')})" for p in running) or "-"
        )
        rows.append(
            (
                short_digest(item.get("digest")),
                item.get("tags"),
                item.get("pushedAt"),
                item.get("verdict"),
                where,
            )
        )
    return table(("digest", "tags", "pushed", "verdict", "running on"), rows)


def deployments_text(body: Any) -> str:
    """The ledger's deployments as the CLI's ``deployments`` table, with the reason."""
    rows = [
        (
            item.get("startedAt"),
            item.get("action"),
            item.get("service"),
            item.get("colour"),
            short_digest(item.get("toDigest")),
            item.get("outcome"),
            item.get("trigger"),
            item.get("actor"),
            item.get("reason"),
        )
        for item in _items(body, "deployments")
    ]
    headers = ("started", "action", "service", "colour", "to", "outcome", "trigger", "actor")
    return table((*headers, "reason"), rows)


def _items(body: Any, key: str) -> list[dict[str, Any]]:
    items = body.get(key) if isinstance(body, dict) else None
    return [item for item in items or [] if isinstance(item, dict)]
