"""Server-side printing: the ``Table`` objects kubectl asks for instead of raw objects."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from local.cluster.resources import Resource
from local.cluster.timefmt import age, parse

Row = Callable[[dict[str, Any], float], list[Any]]

_NAME = {
    "name": "Name",
    "type": "string",
    "format": "name",
    "priority": 0,
    "description": "Name must be unique within a namespace.",
}
_AGE = {
    "name": "Age",
    "type": "string",
    "format": "",
    "priority": 0,
    "description": "CreationTimestamp is a timestamp representing the server time when "
    "this object was created.",
}


def _column(
    name: str, kind: str = "string", priority: int = 0, description: str = ""
) -> dict[str, Any]:
    return {
        "name": name,
        "type": kind,
        "format": "",
        "description": description or name,
        "priority": priority,
    }


def _age(obj: dict[str, Any], now: float) -> str:
    created = parse(obj["metadata"].get("creationTimestamp"))
    return "<unknown>" if created is None else age(now - created)


def _selector(selector: dict[str, Any] | None) -> str:
    if not selector:
        return "<none>"
    labels = selector.get("matchLabels", selector) if isinstance(selector, dict) else {}
    parts = [f"{k}={v}" for k, v in sorted(labels.items()) if isinstance(v, str)]
    for expression in selector.get("matchExpressions", []) if isinstance(selector, dict) else []:
        values = ",".join(expression.get("values", []))
        parts.append(f"{expression.get('key')} {expression.get('operator', '').lower()} ({values})")
    return ",".join(parts) or "<none>"


def _containers(obj: dict[str, Any]) -> tuple[str, str]:
    containers = (obj["spec"].get("template") or {}).get("spec", {}).get("containers") or []
    return (
        ",".join(c.get("name", "") for c in containers),
        ",".join(c.get("image", "") for c in containers),
    )


def _deployment(obj: dict[str, Any], now: float) -> list[Any]:
    status = obj.get("status") or {}
    names, images = _containers(obj)
    return [
        obj["metadata"]["name"],
        f"{status.get('readyReplicas', 0)}/{obj['spec'].get('replicas', 1)}",
        status.get("updatedReplicas", 0),
        status.get("availableReplicas", 0),
        _age(obj, now),
        names,
        images,
        _selector(obj["spec"].get("selector")),
    ]


def _replica_set(obj: dict[str, Any], now: float) -> list[Any]:
    status = obj.get("status") or {}
    names, images = _containers(obj)
    return [
        obj["metadata"]["name"],
        obj["spec"].get("replicas", 1),
        status.get("replicas", 0),
        status.get("readyReplicas", 0),
        _age(obj, now),
        names,
        images,
        _selector(obj["spec"].get("selector")),
    ]


def _pod_reason(obj: dict[str, Any]) -> str:
    status = obj.get("status") or {}
    reason = status.get("reason") or status.get("phase", "Pending")
    for container in status.get("containerStatuses") or []:
        state = container.get("state") or {}
        if state.get("waiting", {}).get("reason"):
            reason = state["waiting"]["reason"]
        elif state.get("terminated", {}).get("reason"):
            reason = state["terminated"]["reason"]
    if obj["metadata"].get("deletionTimestamp"):
        reason = "Terminating"
    return str(reason)


def _pod(obj: dict[str, Any], now: float) -> list[Any]:
    status = obj.get("status") or {}
    containers = status.get("containerStatuses") or []
    total = len(obj["spec"].get("containers") or [])
    ready = sum(1 for c in containers if c.get("ready"))
    restarts = sum(int(c.get("restartCount", 0)) for c in containers)
    return [
        obj["metadata"]["name"],
        f"{ready}/{total}",
        _pod_reason(obj),
        restarts,
        _age(obj, now),
        status.get("podIP", "<none>"),
        obj["spec"].get("nodeName", "<none>"),
        "<none>",
        "<none>",
    ]


def _service(obj: dict[str, Any], now: float) -> list[Any]:
    spec = obj.get("spec") or {}
    ports = ",".join(
        f"{p.get('port')}{'/' + p['nodePort'] if p.get('nodePort') else ''}/"
        f"{p.get('protocol', 'TCP')}"
        for p in spec.get("ports") or []
    )
    return [
        obj["metadata"]["name"],
        spec.get("type", "ClusterIP"),
        spec.get("clusterIP", "<none>"),
        "<none>",
        ports or "<none>",
        _age(obj, now),
        _selector(spec.get("selector")),
    ]


def _config_map(obj: dict[str, Any], now: float) -> list[Any]:
    count = len(obj.get("data") or {}) + len(obj.get("binaryData") or {})
    return [obj["metadata"]["name"], count, _age(obj, now)]


def _job(obj: dict[str, Any], now: float) -> list[Any]:
    status = obj.get("status") or {}
    conditions = {
        c.get("type"): c for c in status.get("conditions") or [] if c.get("status") == "True"
    }
    state = "Running"
    if "Complete" in conditions:
        state = "Complete"
    elif "Failed" in conditions:
        state = "Failed"
    elif "FailureTarget" in conditions:
        state = "FailureTarget"
    elif obj["spec"].get("suspend"):
        state = "Suspended"
    start = parse(status.get("startTime"))
    end = parse(status.get("completionTime")) or now
    duration = age(end - start) if start is not None else ""
    names, images = _containers(obj)
    return [
        obj["metadata"]["name"],
        state,
        f"{status.get('succeeded', 0)}/{obj['spec'].get('completions', 1)}",
        duration,
        _age(obj, now),
        names,
        images,
        _selector(obj["spec"].get("selector")),
    ]


def _namespace(obj: dict[str, Any], now: float) -> list[Any]:
    return [
        obj["metadata"]["name"],
        (obj.get("status") or {}).get("phase", "Active"),
        _age(obj, now),
    ]


def _event(obj: dict[str, Any], now: float) -> list[Any]:
    seen = parse(obj.get("lastTimestamp")) or parse(obj["metadata"].get("creationTimestamp"))
    involved = obj.get("involvedObject") or {}
    return [
        "<unknown>" if seen is None else age(now - seen),
        obj.get("type", ""),
        obj.get("reason", ""),
        f"{str(involved.get('kind', '')).lower()}/{involved.get('name', '')}",
        obj.get("message", ""),
    ]


def _generic(obj: dict[str, Any], now: float) -> list[Any]:
    return [obj["metadata"]["name"], _age(obj, now)]


_LAYOUTS: dict[str, tuple[list[dict[str, Any]], Row]] = {
    "Deployment": (
        [
            _NAME,
            _column("Ready"),
            _column("Up-to-date", "integer"),
            _column("Available", "integer"),
            _AGE,
            _column("Containers", priority=1),
            _column("Images", priority=1),
            _column("Selector", priority=1),
        ],
        _deployment,
    ),
    "ReplicaSet": (
        [
            _NAME,
            _column("Desired", "integer"),
            _column("Current", "integer"),
            _column("Ready", "integer"),
            _AGE,
            _column("Containers", priority=1),
            _column("Images", priority=1),
            _column("Selector", priority=1),
        ],
        _replica_set,
    ),
    "Pod": (
        [
            _NAME,
            _column("Ready"),
            _column("Status"),
            _column("Restarts", "string"),
            _AGE,
            _column("IP", priority=1),
            _column("Node", priority=1),
            _column("Nominated Node", priority=1),
            _column("Readiness Gates", priority=1),
        ],
        _pod,
    ),
    "Service": (
        [
            _NAME,
            _column("Type"),
            _column("Cluster-IP"),
            _column("External-IP"),
            _column("Port(s)"),
            _AGE,
            _column("Selector", priority=1),
        ],
        _service,
    ),
    "ConfigMap": ([_NAME, _column("Data", "integer"), _AGE], _config_map),
    "Job": (
        [
            _NAME,
            _column("Status"),
            _column("Completions"),
            _column("Duration"),
            _AGE,
            _column("Containers", priority=1),
            _column("Images", priority=1),
            _column("Selector", priority=1),
        ],
        _job,
    ),
    "Namespace": ([_NAME, _column("Status"), _AGE], _namespace),
    "Event": (
        [
            _column("Last Seen"),
            _column("Type"),
            _column("Reason"),
            _column("Object"),
            _column("Message"),
        ],
        _event,
    ),
}


def render(
    resource: Resource,
    items: list[dict[str, Any]],
    now: float,
    include: str,
    controllers: object = None,
) -> dict[str, Any]:
    """A ``meta.k8s.io/v1`` Table of ``items``; rows carry metadata unless asked otherwise."""
    columns, row = _LAYOUTS.get(resource.kind, ([_NAME, _AGE], _generic))
    rows = []
    for obj in items:
        entry: dict[str, Any] = {"cells": row(obj, now)}
        if include == "Object":
            full = dict(obj)
            full.setdefault("kind", resource.kind)
            full.setdefault("apiVersion", resource.api_version)
            entry["object"] = full
        elif include != "None":
            entry["object"] = {
                "kind": "PartialObjectMetadata",
                "apiVersion": "meta.k8s.io/v1",
                "metadata": obj["metadata"],
            }
        rows.append(entry)
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": {},
        "columnDefinitions": columns,
        "rows": rows,
    }
