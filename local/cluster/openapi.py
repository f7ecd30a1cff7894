"""Just enough OpenAPI for kubectl to learn that the server validates fields itself."""

from __future__ import annotations

import hashlib
from typing import Any

from local.cluster.resources import Registry


def _path_of(group: str, version: str) -> str:
    return f"apis/{group}/{version}" if group else f"api/{version}"


def v3_index(registry: Registry) -> dict[str, Any]:
    """``GET /openapi/v3``: one document per group/version."""
    paths = {}
    for group, version in registry.groups():
        path = _path_of(group, version)
        digest = hashlib.sha256(path.encode()).hexdigest()[:16].upper()
        paths[path] = {"serverRelativeURL": f"/openapi/v3/{path}?hash={digest}"}
    return {"paths": paths}


def _operation(group: str, version: str, kind: str, verb: str) -> dict[str, Any]:
    parameters = [
        {"name": "dryRun", "in": "query", "schema": {"type": "string", "uniqueItems": True}},
        {"name": "fieldManager", "in": "query", "schema": {"type": "string"}},
        {"name": "fieldValidation", "in": "query", "schema": {"type": "string"}},
    ]
    return {
        "operationId": f"{verb}{kind}",
        "parameters": parameters,
        "responses": {"200": {"description": "OK"}},
        "x-kubernetes-action": verb,
        "x-kubernetes-group-version-kind": {"group": group, "version": version, "kind": kind},
    }


def v3_group(registry: Registry, path: str) -> dict[str, Any] | None:
    """``GET /openapi/v3/apis/<group>/<version>``: paths with their write operations."""
    for group, version in registry.groups():
        if _path_of(group, version) != path:
            continue
        paths: dict[str, Any] = {}
        for resource in registry.all():
            if (resource.group, resource.version) != (group, version):
                continue
            root = f"/{path}"
            scope = "/namespaces/{namespace}" if resource.namespaced else ""
            paths[f"{root}{scope}/{resource.plural}"] = {
                "post": _operation(group, version, resource.kind, "post")
            }
            paths[f"{root}{scope}/{resource.plural}/{{name}}"] = {
                "put": _operation(group, version, resource.kind, "put"),
                "patch": _operation(group, version, resource.kind, "patch"),
            }
        return {
            "openapi": "3.0.0",
            "info": {"title": "Kubernetes", "version": "v1.36.0"},
            "paths": paths,
            "components": {"schemas": {}},
        }
    return None


def v2(registry: Registry) -> dict[str, Any]:
    """``GET /openapi/v2``: paths only (no schemas), enough for kubectl's probes."""
    paths: dict[str, Any] = {}
    for group, version in registry.groups():
        document = v3_group(registry, _path_of(group, version)) or {}
        paths.update(document.get("paths", {}))
    return {
        "swagger": "2.0",
        "info": {"title": "Kubernetes", "version": "v1.36.0"},
        "paths": paths,
        "definitions": {},
    }
