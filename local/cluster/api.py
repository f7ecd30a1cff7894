"""The Kubernetes REST API over the store: routing, verbs, subresources, watch streams."""

from __future__ import annotations

import base64
import json
import random
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import yaml

from local.cluster import admission, decoding, protobuf, tables
from local.cluster.controllers import Controllers
from local.cluster.errors import (
    ApiError,
    FieldError,
    bad_request,
    conflict,
    invalid,
    not_found,
)
from local.cluster.kubelet import log_refusal, render_log
from local.cluster.patching import (
    UNPROCESSABLE,
    PatchError,
    json_patch,
    merge_patch,
    strategic_merge,
)
from local.cluster.resources import Registry, Resource
from local.cluster.selectors import SelectorError, field_selector, field_selector_paths
from local.cluster.selectors import label_selector as parse_label_selector
from local.cluster.store import Store, clone
from local.cluster.timefmt import timestamp

JSON = "application/json"
_PATCH_TYPES = {
    "application/strategic-merge-patch+json": "strategic",
    "application/merge-patch+json": "merge",
    "application/json-patch+json": "json",
    "application/apply-patch+yaml": "apply",
    "application/apply-patch+cbor": "apply",
}
_FIELDS = {
    "Pod": {
        "spec.nodeName",
        "spec.restartPolicy",
        "spec.schedulerName",
        "spec.serviceAccountName",
        "spec.hostNetwork",
        "status.phase",
        "status.podIP",
        "status.podIPs",
        "status.nominatedNodeName",
    },
    "Job": {"status.successful"},
    "Secret": {"type"},
    "Namespace": {"status.phase"},
    "Service": {"spec.clusterIP", "spec.type"},
    "Event": {
        "involvedObject.kind",
        "involvedObject.namespace",
        "involvedObject.name",
        "involvedObject.uid",
        "involvedObject.apiVersion",
        "involvedObject.resourceVersion",
        "involvedObject.fieldPath",
        "reason",
        "reportingComponent",
        "source",
        "type",
    },
}
_JOB_ORPHAN_WARNING = (
    '299 - "child pods are preserved by default when jobs are deleted; set '
    "propagationPolicy=Background to remove them or set propagationPolicy=Orphan to "
    'suppress this warning"'
)


@dataclass
class Reply:
    """An HTTP answer: a JSON body, text, or a stream of chunks."""

    status: int = 200
    body: Any = None
    content_type: str = JSON
    headers: dict[str, str] = field(default_factory=dict)
    stream: Iterator[bytes] | None = None

    def payload(self) -> bytes:
        """The body as bytes."""
        if isinstance(self.body, bytes):
            return self.body
        if isinstance(self.body, str):
            return self.body.encode()
        return json.dumps(self.body, separators=(",", ":")).encode()


@dataclass
class Request:
    """What the API needs from an HTTP request."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes

    def param(self, name: str, default: str = "") -> str:
        """A query parameter."""
        return self.query.get(name, default)

    def flag(self, name: str) -> bool:
        """A boolean query parameter, parsed like Go's strconv.ParseBool."""
        return self.query.get(name, "") in {"1", "t", "T", "true", "TRUE", "True"}

    def header(self, name: str) -> str:
        """A header, case-insensitively."""
        return self.headers.get(name.lower(), "")


@dataclass
class Target:
    """What a resource URL points at."""

    resource: Resource
    namespace: str
    name: str
    subresource: str
    watch_path: bool = False


class KubeApi:
    """Serves the API for one emulated cluster."""

    def __init__(
        self,
        store: Store,
        registry: Registry,
        controllers: Controllers,
        rng: random.Random,
        address: Callable[[], str],
    ) -> None:
        self.store = store
        self.registry = registry
        self.controllers = controllers
        self.clock = controllers.clock
        self.rng = rng
        self.address = address
        self.stopping = threading.Event()

    # Routing ---------------------------------------------------------------------------

    def handle(self, request: Request) -> Reply:
        """Answer one request (errors become Status replies)."""
        try:
            return self._route(request)
        except ApiError as error:
            return Reply(error.code, error.status(), headers=dict(error.headers))
        except Exception as error:  # a bug here must not look like a dropped connection
            failure = ApiError(
                500, "InternalError", f"Internal error occurred: {type(error).__name__}: {error}"
            )
            return Reply(500, failure.status())

    def _route(self, request: Request) -> Reply:
        parts = [p for p in request.path.split("/") if p]
        accept = request.header("accept")
        if request.path in {"/version", "/version/"}:
            return Reply(body=_VERSION)
        if parts and parts[0] in {"healthz", "readyz", "livez"}:
            return Reply(body="ok", content_type="text/plain; charset=utf-8")
        if parts and parts[0] == "openapi":
            return self._openapi(parts[1:], request)
        if not parts or parts[0] not in {"api", "apis"}:
            return _page_not_found()
        if parts[0] == "api":
            if len(parts) == 1:
                if "as=APIGroupDiscoveryList" in accept:
                    return _aggregated(self.registry.aggregated(legacy=True))
                return Reply(body=self.registry.api_versions(self.address()))
            group, version, rest = "", parts[1], parts[2:]
        else:
            if len(parts) == 1:
                if "as=APIGroupDiscoveryList" in accept:
                    return _aggregated(self.registry.aggregated(legacy=False))
                return Reply(body=self.registry.api_group_list())
            described = self.registry.api_group(parts[1])
            if described is None:
                # No group of that name: the request never reaches an API handler.
                return _page_not_found()
            if len(parts) == 2:
                return Reply(body=described)
            group, version, rest = parts[1], parts[2], parts[3:]
        if not rest:
            listing = self.registry.resource_list(group, version)
            if listing is None:
                raise _unknown_path()
            return Reply(body=listing)
        target = self._target(group, version, rest)
        with self.store.lock:
            self.controllers.reconcile()
        return self._dispatch(target, request)

    def _target(self, group: str, version: str, rest: list[str]) -> Target:
        watch_path = False
        if rest[0] == "watch":
            watch_path, rest = True, rest[1:]
            if not rest:
                raise _unknown_path()
        namespace = ""
        if rest[0] == "namespaces" and len(rest) >= 3:
            candidate = self.registry.lookup(group, version, rest[2])
            if candidate is not None and candidate.namespaced:
                namespace, rest = rest[1], rest[2:]
        resource = self.registry.lookup(group, version, rest[0])
        if resource is None or len(rest) > 3:
            raise _unknown_path()
        name = rest[1] if len(rest) > 1 else ""
        sub = rest[2] if len(rest) > 2 else ""
        if sub and sub not in resource.subresources:
            raise _unknown_path()
        return Target(resource, namespace, name, sub, watch_path)

    def _dispatch(self, target: Target, request: Request) -> Reply:
        method = request.method
        if target.watch_path or (not target.name and method == "GET" and request.flag("watch")):
            if target.name:
                request.query["fieldSelector"] = f"metadata.name={target.name}"
            return self._watch(target, request)
        if not target.name:
            if method == "GET":
                return self._list(target, request)
            if method == "POST":
                return self._create(target, request)
            if method == "DELETE":
                return self._delete_collection(target, request)
            raise _not_allowed()
        if target.subresource == "log":
            if method != "GET":
                raise _not_allowed()
            return self._log(target, request)
        if target.subresource == "scale":
            return self._scale(target, request)
        if method == "GET":
            return self._get(target, request)
        if method == "PUT":
            return self._replace(target, request)
        if method == "PATCH":
            return self._patch(target, request)
        if method == "DELETE" and not target.subresource:
            return self._delete(target, request)
        raise _not_allowed()

    # Reads ----------------------------------------------------------------------------

    def _stored(self, target: Target) -> dict[str, Any]:
        obj = self.store.get(target.resource, target.namespace, target.name)
        if obj is None:
            raise not_found(target.resource.plural, target.resource.group, target.name)
        return obj

    def _get(self, target: Target, request: Request) -> Reply:
        with self.store.lock:
            obj = clone(self._stored(target))
        if _wants_table(request) and not target.subresource:
            return self._table(target.resource, [obj], request, single=True)
        return Reply(body=obj)

    def _selected(self, target: Target, request: Request) -> Callable[[dict[str, Any]], bool]:
        labels_expr = request.param("labelSelector")
        fields_expr = request.param("fieldSelector")
        try:
            by_labels = parse_label_selector(labels_expr) if labels_expr else None
            by_fields = field_selector(fields_expr) if fields_expr else None
            paths = field_selector_paths(fields_expr) if fields_expr else []
        except SelectorError as error:
            raise bad_request(str(error)) from error
        supported = {
            "metadata.name",
            "metadata.namespace",
            *_FIELDS.get(target.resource.kind, set()),
        }
        for path in paths:
            if path not in supported:
                raise bad_request(_unsupported_field(target.resource.kind, path))

        def matches(obj: dict[str, Any]) -> bool:
            meta = obj.get("metadata", {})
            if target.namespace and meta.get("namespace", "") != target.namespace:
                return False
            if by_labels and not by_labels(meta.get("labels") or {}):
                return False
            return not (by_fields and not by_fields(_selectable(target.resource.kind, obj)))

        return matches

    def _list(self, target: Target, request: Request) -> Reply:
        matches = self._selected(target, request)
        with self.store.lock:
            revision = self.store.revision
            scope = target.namespace if target.resource.namespaced and target.namespace else None
            items = [clone(o) for o in self.store.items(target.resource, scope) if matches(o)]
        meta: dict[str, Any] = {"resourceVersion": str(revision)}
        start = request.param("continue")
        if start:
            try:
                token = json.loads(base64.urlsafe_b64decode(start.encode()))
                after = (token["ns"], token["name"])
                revision = int(token["rv"])
            except (ValueError, KeyError, TypeError) as error:
                raise bad_request("continue key is not valid: illegal base64 data") from error
            items = [
                o
                for o in items
                if (o["metadata"].get("namespace", ""), o["metadata"]["name"]) > after
            ]
            meta["resourceVersion"] = str(revision)
        limit = _int(request.param("limit"), "limit")
        if limit and len(items) > limit:
            last = items[limit - 1]["metadata"]
            meta["continue"] = base64.urlsafe_b64encode(
                json.dumps(
                    {"rv": revision, "ns": last.get("namespace", ""), "name": last["name"]}
                ).encode()
            ).decode()
            meta["remainingItemCount"] = len(items) - limit
            items = items[:limit]
        if _wants_table(request):
            return self._table(target.resource, items, request, list_meta=meta)
        for item in items:
            if target.resource in self.registry.builtin:
                item.pop("kind", None)
                item.pop("apiVersion", None)
        return Reply(
            body={
                "kind": f"{target.resource.kind}List",
                "apiVersion": target.resource.api_version,
                "metadata": meta,
                "items": items,
            }
        )

    def _table(
        self,
        resource: Resource,
        items: list[dict[str, Any]],
        request: Request,
        single: bool = False,
        list_meta: dict[str, Any] | None = None,
    ) -> Reply:
        include = request.param("includeObject", "Metadata")
        table = tables.render(resource, items, self.clock.now(), include, self.controllers)
        table["metadata"] = list_meta or {"resourceVersion": str(self.store.revision)}
        if single:
            table["metadata"] = {"resourceVersion": items[0]["metadata"]["resourceVersion"]}
        return Reply(body=table, content_type="application/json;as=Table;v=v1;g=meta.k8s.io")

    # Watch ------------------------------------------------------------------------------

    def _watch(self, target: Target, request: Request) -> Reply:
        matches = self._selected(target, request)
        timeout = request.param("timeoutSeconds")
        limit = float(_int(timeout, "timeoutSeconds") or 1800)
        since = request.param("resourceVersion")
        initial = request.flag("sendInitialEvents")
        bookmarks = request.flag("allowWatchBookmarks")
        as_table = _wants_table(request)
        with self.store.lock:
            if since in {"", "0"} or initial:
                start = self.store.revision
                snapshot = [clone(o) for o in self.store.items(target.resource) if matches(o)]
            else:
                start = _int(since, "resourceVersion")
                snapshot = []
                try:
                    list(self.store.changes_since(start))
                except ApiError as error:
                    return Reply(
                        stream=iter([self._event("ERROR", error.status())]), content_type=JSON
                    )

        def events() -> Iterator[bytes]:
            for obj in snapshot:
                yield self._event("ADDED", self._shape(target.resource, obj, as_table, request))
            if initial and bookmarks:
                yield self._event(
                    "BOOKMARK",
                    {
                        "kind": target.resource.kind,
                        "apiVersion": target.resource.api_version,
                        "metadata": {
                            "resourceVersion": str(start),
                            "annotations": {"k8s.io/initial-events-end": "true"},
                        },
                    },
                )
            seen = start
            deadline = time.monotonic() + limit
            while not self.stopping.is_set():
                with self.store.lock:
                    self.controllers.reconcile()
                    try:
                        fresh = [
                            c
                            for c in self.store.changes_since(seen)
                            if c.resource_key == target.resource.key
                        ]
                    except ApiError as error:
                        yield self._event("ERROR", error.status())
                        return
                    seen = self.store.revision
                    if not fresh:
                        remaining = deadline - time.monotonic()
                        if remaining <= 0 or self.store.closed:
                            return
                        wait = min(remaining, 0.5)
                        due = self.controllers.next_event_in()
                        if due is not None:
                            wait = min(wait, max(self.clock.real_seconds(due), 0.01))
                        self.store.wait(wait)
                        continue
                for change in fresh:
                    now_matches = matches(change.object)
                    was_matching = change.previous is not None and matches(change.previous)
                    kind = change.kind
                    if change.kind == "MODIFIED" and now_matches != was_matching:
                        # Moving in or out of a selector is an ADDED or DELETED for the watcher.
                        kind = "ADDED" if now_matches else "DELETED"
                    elif not now_matches:
                        continue
                    shaped = self._shape(target.resource, clone(change.object), as_table, request)
                    yield self._event(kind, shaped)

        return Reply(
            stream=events(),
            content_type=("application/json;as=Table;v=v1;g=meta.k8s.io" if as_table else JSON),
        )

    def _shape(
        self, resource: Resource, obj: dict[str, Any], as_table: bool, request: Request
    ) -> dict[str, Any]:
        if not as_table:
            return obj
        table = tables.render(
            resource,
            [obj],
            self.clock.now(),
            request.param("includeObject", "Metadata"),
            self.controllers,
        )
        table["metadata"] = {"resourceVersion": obj["metadata"].get("resourceVersion", "")}
        return table

    @staticmethod
    def _event(kind: str, obj: dict[str, Any]) -> bytes:
        return json.dumps({"type": kind, "object": obj}, separators=(",", ":")).encode() + b"\n"

    # Writes ----------------------------------------------------------------------------

    def _decode(self, request: Request, *, allow_yaml: bool = False, kind: str = "") -> Any:
        content_type = request.header("content-type").split(";")[0].strip()
        if content_type == "application/vnd.kubernetes.protobuf":
            try:
                return protobuf.decode(request.body)
            except (protobuf.ProtobufError, UnicodeDecodeError, KeyError) as error:
                raise ApiError(415, "UnsupportedMediaType", str(error)) from error
        if "protobuf" in content_type or "cbor" in content_type:
            raise ApiError(
                415,
                "UnsupportedMediaType",
                f"the body of the request was in an unknown format - accepted "
                f"media types include: {JSON}, application/yaml",
            )
        text = request.body.decode("utf-8", errors="replace")
        try:
            if allow_yaml or content_type == "application/yaml":
                return yaml.safe_load(text)
            return json.loads(text)
        except (ValueError, yaml.YAMLError) as error:
            if kind:
                raise bad_request(
                    f"the object provided is unrecognized (must be of type {kind}): couldn't "
                    f"get version/kind; json parse error: {error} ({text[:100]})"
                ) from error
            raise bad_request(f"the body of the request could not be decoded: {error}") from error

    def _check_kind(self, resource: Resource, obj: Any, *, scale: bool = False) -> None:
        if not isinstance(obj, dict):
            raise bad_request("the body of the request must be a JSON object")
        expected_kind = "Scale" if scale else resource.kind
        expected_version = "autoscaling/v1" if scale else resource.api_version
        kind = obj.get("kind")
        version = obj.get("apiVersion")
        if kind and kind != expected_kind:
            raise bad_request(
                f"the kind in the data ({kind}) does not match the expected kind ({expected_kind})"
            )
        if version and version != expected_version:
            raise bad_request(
                f"the API version in the data ({version}) does not match the expected API "
                f"version ({expected_version})"
            )
        if not isinstance(obj.get("metadata", {}), dict):
            raise bad_request("metadata must be an object")

    def _place(self, target: Target, obj: dict[str, Any]) -> None:
        meta = obj.setdefault("metadata", {})
        obj["kind"] = target.resource.kind
        obj["apiVersion"] = target.resource.api_version
        if not target.resource.namespaced:
            meta.pop("namespace", None)
            return
        given = meta.get("namespace")
        if given and target.namespace and given != target.namespace:
            raise bad_request(
                "the namespace of the provided object does not match the "
                "namespace sent on the request"
            )
        if not target.namespace and not given:
            raise bad_request("an empty namespace may not be set during creation")
        meta["namespace"] = target.namespace or given

    def _admit(
        self, resource: Resource, obj: dict[str, Any], old: dict[str, Any] | None, name: str
    ) -> None:
        decoding.check_types(resource.kind, obj, resource.version)
        meta = obj.get("metadata") or {}
        for key in ("labels", "annotations", "finalizers", "ownerReferences"):
            # Empty maps and lists are omitted when the Go object is encoded.
            if key in meta and not meta[key]:
                del meta[key]
        admission.apply_defaults(resource, obj, self.rng)
        errors = admission.validate(resource, obj, old)
        if errors:
            raise invalid(resource.kind, resource.group, name, errors)

    def _create(self, target: Target, request: Request) -> Reply:
        obj = self._decode(request, kind=target.resource.kind)
        self._check_kind(target.resource, obj)
        self._place(target, obj)
        with self.store.lock:
            created = self.create_object(target.resource, obj, dry_run=_dry(request))
            body = clone(created)
            if not _dry(request):
                self.controllers.reconcile()
        return Reply(201, body)

    def create_object(
        self, resource: Resource, obj: dict[str, Any], dry_run: bool = False
    ) -> dict[str, Any]:
        """Admit and store a new object (the lock must be held)."""
        meta = obj["metadata"]
        if not meta.get("name") and meta.get("generateName"):
            meta["name"] = f"{meta['generateName']}{admission.random_suffix(self.rng)}"
        name = str(meta.get("name") or "")
        namespace = meta.get("namespace", "") if resource.namespaced else ""
        if resource.namespaced and namespace:
            namespaces = self.registry.lookup("", "v1", "namespaces")
            assert namespaces is not None
            if self.store.get(namespaces, "", namespace) is None:
                raise not_found("namespaces", "", namespace)
        for stale in (
            "resourceVersion",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "managedFields",
            "selfLink",
        ):
            meta.pop(stale, None)
        meta["uid"] = str(uuid.uuid4())
        meta["creationTimestamp"] = timestamp(self.clock.now())
        if resource.generation:
            meta["generation"] = 1
        if resource.has_status and resource.kind not in {"Namespace"}:
            obj["status"] = {}
        if resource.kind == "Service":
            obj["status"] = {"loadBalancer": {}}
        self._admit(resource, obj, None, name)
        if self.store.get(resource, namespace, name) is not None:
            from local.cluster.errors import already_exists

            raise already_exists(resource.plural, resource.group, name)
        if resource.kind == "Pod":
            obj.setdefault("status", {}).update({"phase": "Pending", "qosClass": "BestEffort"})
        if dry_run:
            return obj
        return self.store.put(resource, obj, new=True)

    def _replace(self, target: Target, request: Request) -> Reply:
        obj = self._decode(request, kind=target.resource.kind)
        self._check_kind(target.resource, obj)
        self._place(target, obj)
        given = obj["metadata"].get("name")
        if given != target.name:
            raise bad_request(
                f"the name of the object ({given}) does not match the name on "
                f"the URL ({target.name})"
            )
        with self.store.lock:
            old = self._stored(target)
            self._check_version(target, obj, old)
            updated = self._update(target, old, obj, dry_run=_dry(request))
            body = clone(updated)
            self.controllers.reconcile()
        return Reply(200, body)

    def _check_version(self, target: Target, obj: dict[str, Any], old: dict[str, Any]) -> None:
        wanted = obj.get("metadata", {}).get("resourceVersion")
        if wanted not in (None, "") and str(wanted) != old["metadata"]["resourceVersion"]:
            raise conflict(target.resource.plural, target.resource.group, target.name)

    def _update(
        self, target: Target, old: dict[str, Any], new: dict[str, Any], dry_run: bool = False
    ) -> dict[str, Any]:
        resource = target.resource
        new = clone(new)
        meta = new.setdefault("metadata", {})
        kept = old["metadata"]
        for key in ("uid", "creationTimestamp", "namespace", "name", "deletionTimestamp"):
            if key in kept:
                meta[key] = kept[key]
            else:
                meta.pop(key, None)
        meta.pop("managedFields", None)
        new["kind"], new["apiVersion"] = resource.kind, resource.api_version
        if target.subresource == "status":
            # A status write changes status only; everything else stays as stored.
            status = new.get("status")
            new = clone(old)
            if status is None:
                new.pop("status", None)
            else:
                new["status"] = status
        elif resource.has_status:
            if "status" in old:
                new["status"] = clone(old["status"])
            else:
                new.pop("status", None)
        if resource.kind == "Service" and isinstance(new.get("spec"), dict):
            # An update that leaves the cluster IP out keeps the allocated one.
            for key in ("clusterIP", "clusterIPs"):
                if key in old.get("spec", {}) and not new["spec"].get(key):
                    new["spec"][key] = clone(old["spec"][key])
        if target.subresource != "status":
            self._admit(resource, new, old, target.name)
        if resource.generation:
            generation = int(kept.get("generation", 1))
            if new.get("spec") != old.get("spec") or (
                resource.kind == "Deployment"
                and new.get("metadata", {}).get("deletionTimestamp")
                != kept.get("deletionTimestamp")
            ):
                generation += 1
            meta["generation"] = generation
        comparable = clone(new)
        comparable["metadata"]["resourceVersion"] = kept["resourceVersion"]
        if comparable == old or dry_run:
            # A no-op write keeps the resourceVersion, as etcd sees no change.
            comparable["metadata"]["resourceVersion"] = kept["resourceVersion"]
            return comparable
        return self.store.put(resource, new, new=False)

    def _patch(self, target: Target, request: Request) -> Reply:
        kind = _PATCH_TYPES.get(request.header("content-type").split(";")[0].strip())
        if kind is None:
            # Refused by the route itself, before any handler sees the body.
            raise ApiError(415, "UnsupportedMediaType", "415: Unsupported Media Type", {})
        if kind == "strategic" and target.resource.custom:
            raise ApiError(
                415,
                "UnsupportedMediaType",
                "the body of the request was in an unknown format - accepted media "
                "types include: application/json-patch+json, "
                "application/merge-patch+json, application/apply-patch+yaml",
            )
        if kind == "apply":
            patch = self._decode(request, allow_yaml=True)
        else:
            try:
                patch = json.loads(request.body.decode("utf-8", errors="replace") or "null")
            except ValueError as error:
                raise bad_request("invalid JSON patch") from error
        with self.store.lock:
            old = self.store.get(target.resource, target.namespace, target.name)
            if old is None:
                if kind == "apply" and not target.subresource:
                    self._check_kind(target.resource, patch)
                    self._place(target, patch)
                    if patch["metadata"].get("name") != target.name:
                        raise bad_request("the name of the object does not match the URL")
                    created = self.create_object(target.resource, patch, dry_run=_dry(request))
                    body = clone(created)
                    self.controllers.reconcile()
                    return Reply(201, body)
                raise not_found(target.resource.plural, target.resource.group, target.name)
            patched = self._apply_patch(kind, old, patch, target)
            self._check_version(target, patched, old)
            patched["metadata"].pop("resourceVersion", None)
            updated = self._update(target, old, patched, dry_run=_dry(request))
            body = clone(updated)
            self.controllers.reconcile()
        return Reply(200, body)

    def _apply_patch(
        self, kind: str, old: dict[str, Any], patch: Any, target: Target
    ) -> dict[str, Any]:
        base = clone(old)
        try:
            if kind == "json":
                result = json_patch(base, patch)
            elif kind == "merge":
                result = merge_patch(base, patch)
            elif kind == "strategic":
                result = strategic_merge(base, patch)
            else:
                self._check_kind(target.resource, patch)
                applied = clone(patch)
                applied.get("metadata", {}).pop("resourceVersion", None)
                result = strategic_merge(base, applied)
        except PatchError as error:
            if error.status == 400:
                raise bad_request(error.message) from error
            if error.status == 422:
                # The API server does not say what did not apply.
                raise ApiError(422, "Invalid", UNPROCESSABLE, {}) from error
            raise ApiError(error.status, "", error.message) from error
        if not isinstance(result, dict) or not isinstance(result.get("metadata"), dict):
            result = {"metadata": {}}
        name = result["metadata"].get("name")
        if not name:
            raise bad_request(
                f"the name of the object ({target.name} based on URL) was undeterminable: "
                "name must be provided"
            )
        if name != target.name:
            raise bad_request(
                f"the name of the object ({name}) does not match the name on the URL "
                f"({target.name})"
            )
        return result

    # Delete ----------------------------------------------------------------------------

    def _delete_options(self, request: Request) -> dict[str, Any]:
        options: dict[str, Any] = {}
        if request.body.strip():
            decoded = self._decode(request)
            if isinstance(decoded, dict):
                options.update(decoded)
        for key in ("propagationPolicy", "gracePeriodSeconds", "orphanDependents"):
            if request.param(key):
                options[key] = request.param(key)
        if request.param("dryRun"):
            options["dryRun"] = [request.param("dryRun")]
        return options

    def _delete(self, target: Target, request: Request) -> Reply:
        options = self._delete_options(request)
        headers: dict[str, str] = {}
        with self.store.lock:
            obj = self._stored(target)
            preconditions = options.get("preconditions") or {}
            meta = obj["metadata"]
            if preconditions.get("uid") and preconditions["uid"] != meta.get("uid"):
                raise conflict(
                    target.resource.plural,
                    target.resource.group,
                    target.name,
                    f"Precondition failed: UID in precondition: "
                    f"{preconditions['uid']}, UID in object meta: {meta.get('uid')}",
                )
            wanted = preconditions.get("resourceVersion")
            if wanted and wanted != meta.get("resourceVersion"):
                raise conflict(
                    target.resource.plural,
                    target.resource.group,
                    target.name,
                    f"Precondition failed: ResourceVersion in precondition: "
                    f"{wanted}, ResourceVersion in object meta: "
                    f"{meta.get('resourceVersion')}",
                )
            policy = options.get("propagationPolicy")
            if policy is None and options.get("orphanDependents") in (True, "true"):
                policy = "Orphan"
            if policy is None and target.resource.kind == "Job":
                # batch/v1 Jobs orphan their pods unless told otherwise (a legacy default).
                policy = "Orphan"
                headers["Warning"] = _JOB_ORPHAN_WARNING
            if policy not in (None, "Orphan", "Background", "Foreground"):
                raise invalid(
                    "DeleteOptions",
                    "",
                    "",
                    [
                        FieldError(
                            "propagationPolicy",
                            "Unsupported",
                            'supported values: "Foreground", "Background", "Orphan", nil',
                            policy,
                        )
                    ],
                )
            snapshot = clone(obj)
            if _dry(request) or options.get("dryRun"):
                return Reply(200, self._deleted_body(target, snapshot), headers=headers)
            self.delete_object(target.resource, target.namespace, target.name, policy)
            self.controllers.reconcile()
        return Reply(200, self._deleted_body(target, snapshot), headers=headers)

    def _deleted_body(self, target: Target, obj: dict[str, Any]) -> dict[str, Any]:
        if target.resource.kind == "Pod":
            # Pods are deleted gracefully: the answer is the pod, marked for deletion.
            obj["metadata"]["deletionTimestamp"] = timestamp(self.clock.now() + 30)
            obj["metadata"]["deletionGracePeriodSeconds"] = 30
            return obj
        details: dict[str, Any] = {"name": target.name}
        if target.resource.group:
            details["group"] = target.resource.group
        details.update(kind=target.resource.plural, uid=obj["metadata"].get("uid"))
        return {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Success",
            "details": details,
        }

    def delete_object(
        self, resource: Resource, namespace: str, name: str, policy: str | None
    ) -> None:
        """Remove an object; its dependents go now (GC) unless orphaned (lock held)."""
        obj = self.store.get(resource, namespace, name)
        if obj is None:
            return
        uid = obj["metadata"].get("uid")
        if policy == "Orphan":
            for other in self.registry.all():
                for dependent in list(self.store.items(other)):
                    refs = dependent["metadata"].get("ownerReferences") or []
                    kept = [r for r in refs if r.get("uid") != uid]
                    if len(kept) != len(refs):
                        if kept:
                            dependent["metadata"]["ownerReferences"] = kept
                        else:
                            dependent["metadata"].pop("ownerReferences")
                        self.store.put(other, dependent, new=False)
        if resource.kind == "Namespace":
            for other in self.registry.all():
                if other.namespaced:
                    for item in list(self.store.items(other, name)):
                        self.store.remove(other, name, item["metadata"]["name"])
        self.store.remove(resource, namespace, name)
        self.controllers.runs.pop(uid or "", None)

    def _delete_collection(self, target: Target, request: Request) -> Reply:
        matches = self._selected(target, request)
        options = self._delete_options(request)
        with self.store.lock:
            scope = target.namespace if target.resource.namespaced else None
            doomed = [clone(o) for o in self.store.items(target.resource, scope) if matches(o)]
            if not (_dry(request) or options.get("dryRun")):
                for obj in doomed:
                    meta = obj["metadata"]
                    self.delete_object(
                        target.resource,
                        meta.get("namespace", ""),
                        meta["name"],
                        options.get("propagationPolicy"),
                    )
                self.controllers.reconcile()
        return Reply(
            200,
            {
                "kind": f"{target.resource.kind}List",
                "apiVersion": target.resource.api_version,
                "metadata": {"resourceVersion": str(self.store.revision)},
                "items": doomed,
            },
        )

    # Subresources ------------------------------------------------------------------------

    def _scale(self, target: Target, request: Request) -> Reply:
        with self.store.lock:
            obj = self._stored(target)
            if request.method == "GET":
                return Reply(body=self._scale_of(obj))
            current = self._scale_of(obj)
            if request.method == "PUT":
                wanted = self._decode(request)
                self._check_kind(target.resource, wanted, scale=True)
            elif request.method == "PATCH":
                kind = _PATCH_TYPES.get(request.header("content-type").split(";")[0].strip())
                if kind is None:
                    raise ApiError(415, "UnsupportedMediaType", "415: Unsupported Media Type", {})
                wanted = self._apply_patch(
                    kind, current, self._decode(request, allow_yaml=kind == "apply"), target
                )
            else:
                raise _not_allowed()
            self._check_version(target, wanted, obj)
            replicas = (wanted.get("spec") or {}).get("replicas")
            if not isinstance(replicas, int) or replicas < 0:
                raise invalid(
                    "Scale",
                    "autoscaling",
                    target.name,
                    [
                        FieldError(
                            "spec.replicas",
                            "Invalid",
                            "must be greater than or equal to 0",
                            replicas,
                        )
                    ],
                )
            changed = clone(obj)
            changed["spec"]["replicas"] = replicas
            changed["metadata"].pop("resourceVersion", None)
            self._update(
                Target(target.resource, target.namespace, target.name, ""),
                obj,
                changed,
                dry_run=_dry(request),
            )
            self.controllers.reconcile()
            fresh = self._stored(target)
            return Reply(body=self._scale_of(fresh))

    def _scale_of(self, obj: dict[str, Any]) -> dict[str, Any]:
        meta = obj["metadata"]
        selector = (obj["spec"].get("selector") or {}).get("matchLabels") or {}
        return {
            "kind": "Scale",
            "apiVersion": "autoscaling/v1",
            "metadata": {
                k: meta[k]
                for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")
                if k in meta
            },
            "spec": {"replicas": obj["spec"].get("replicas", 1)},
            "status": {
                "replicas": (obj.get("status") or {}).get("replicas", 0),
                "selector": ",".join(f"{k}={v}" for k, v in sorted(selector.items())),
            },
        }

    def _log(self, target: Target, request: Request) -> Reply:
        with self.store.lock:
            pod = clone(self._stored(target))
        names = [c["name"] for c in pod["spec"].get("containers") or []]
        container = request.param("container")
        if not container:
            if len(names) != 1:
                raise bad_request(
                    f"a container name must be specified for pod "
                    f"{target.name}, choose one of: [{' '.join(names)}]"
                )
            container = names[0]
        if container not in names:
            raise bad_request(f"container {container} is not valid for pod {target.name}")
        refusal = log_refusal(pod, container, previous=request.flag("previous"))
        if refusal:
            raise bad_request(refusal)
        tail = _int(request.param("tailLines"), "tailLines") if request.param("tailLines") else None
        stamps = request.flag("timestamps")
        limit = (
            _int(request.param("limitBytes"), "limitBytes") if request.param("limitBytes") else None
        )

        def render(text: str) -> bytes:
            return render_log(
                text, tail_lines=tail, timestamps=stamps, limit_bytes=limit, now=self.clock.now()
            )

        if not request.flag("follow"):
            with self.store.lock:
                live = self.store.get(target.resource, target.namespace, target.name)
                text = self.controllers.pod_log(live or pod, container)
            return Reply(body=render(text), content_type="text/plain")

        def follow() -> Iterator[bytes]:
            while not self.stopping.is_set():
                with self.store.lock:
                    self.controllers.reconcile()
                    live = self.store.get(target.resource, target.namespace, target.name)
                    if live is None or self.controllers.pod_finished(live) or self.store.closed:
                        text = self.controllers.pod_log(live or pod, container)
                        break
                    due = self.controllers.next_event_in()
                    wait = 0.5 if due is None else min(0.5, max(self.clock.real_seconds(due), 0.01))
                    self.store.wait(wait)
            else:
                return
            data = render(text)
            if data:
                yield data

        return Reply(stream=follow(), content_type="text/plain")

    # OpenAPI ---------------------------------------------------------------------------

    def _openapi(self, parts: list[str], request: Request) -> Reply:
        from local.cluster import openapi

        if parts == ["v2"]:
            return Reply(body=openapi.v2(self.registry))
        if parts == ["v3"]:
            return Reply(body=openapi.v3_index(self.registry))
        if len(parts) >= 2 and parts[0] == "v3":
            document = openapi.v3_group(self.registry, "/".join(parts[1:]))
            if document is not None:
                return Reply(body=document)
        raise _unknown_path()


_VERSION = {
    "major": "1",
    "minor": "37",
    "emulationMajor": "1",
    "emulationMinor": "37",
    "minCompatibilityMajor": "1",
    "minCompatibilityMinor": "36",
    "gitVersion": "v1.37.2-eks-bluegreen-emulator",
    "gitCommit": "0000000000000000000000000000000000000000",
    "gitTreeState": "clean",
    "buildDate": "2026-01-01T00:00:00Z",
    "goVersion": "go1.26.8",
    "compiler": "gc",
    "platform": "linux/amd64",
}


def _aggregated(document: dict[str, Any]) -> Reply:
    return Reply(
        body=document,
        content_type=("application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"),
    )


def _wants_table(request: Request) -> bool:
    return "as=Table" in request.header("accept")


def _dry(request: Request) -> bool:
    return request.param("dryRun") == "All"


def _int(value: str, name: str) -> int:
    if not value:
        return 0
    try:
        return int(value)
    except ValueError as error:
        raise bad_request(f"invalid value for {name}: {value!r} is not an integer") from error


def _unknown_path() -> ApiError:
    return ApiError(404, "NotFound", "the server could not find the requested resource", {})


def _selectable(kind: str, obj: dict[str, Any]) -> dict[str, Any]:
    """The object as its kind's field selectors see it (``GetAttrs``): a Job's
    ``status.successful`` is its count of succeeded pods, a pod's ``spec.hostNetwork``
    reads ``false`` when unset, an Event's ``source`` is its source component."""
    if kind == "Job":
        status = obj.get("status") or {}
        return {**obj, "status": {**status, "successful": status.get("succeeded") or 0}}
    if kind == "Pod":
        spec = obj.get("spec") or {}
        return {**obj, "spec": {**spec, "hostNetwork": bool(spec.get("hostNetwork"))}}
    if kind == "Event":
        source = obj.get("source")
        component = source.get("component", "") if isinstance(source, dict) else ""
        return {**obj, "source": component}
    return obj


def _unsupported_field(kind: str, path: str) -> str:
    """The message of the kind's field label conversion (or of the default one)."""
    if kind == "Job":
        return f'field label "{path}" not supported for Job'
    if kind in _FIELDS:
        return f"field label not supported: {path}"
    return f'"{path}" is not a known field selector: only "metadata.name", "metadata.namespace"'


def _page_not_found() -> Reply:
    """What a real API server answers for a path no API group serves: plain text."""
    return Reply(404, "404 page not found\n", content_type="text/plain; charset=utf-8")


def _not_allowed() -> ApiError:
    return ApiError(
        405,
        "MethodNotAllowed",
        "the server does not allow this method on the requested resource",
        {},
    )
