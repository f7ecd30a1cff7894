"""``ClusterEmulator``: the store, controllers, API and HTTP server of one emulated cluster."""

from __future__ import annotations

import contextlib
import json
import os
import random
import socket
import threading
from collections.abc import Callable, MutableSequence
from pathlib import Path
from typing import Any

import yaml

from local.cluster.api import KubeApi, Reply, Request, Target
from local.cluster.clock import Clock
from local.cluster.controllers import Controllers
from local.cluster.errors import ApiError
from local.cluster.faults import IMAGE_MODES, Faults
from local.cluster.patching import PatchError, merge_patch
from local.cluster.resources import Registry, Resource
from local.cluster.server import ClusterHttpServer, RecordedRequest
from local.cluster.store import HISTORY, Store, clone

DEFAULT_SEED = Path(__file__).with_name("seed")
# Manifests the product deploys (RBAC for its Lambda role); loaded next to the seed.
PROJECT_MANIFESTS = Path(__file__).resolve().parents[2] / "deploy" / "kubernetes"
_SYSTEM_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")
_YAML_CACHE: dict[tuple[str, float], list[dict[str, Any]]] = {}
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _documents(path: Path) -> list[dict[str, Any]]:
    files = (
        sorted(p for p in path.rglob("*") if p.suffix in {".yaml", ".yml", ".json"})
        if path.is_dir()
        else [path]
    )
    documents: list[dict[str, Any]] = []
    for file in files:
        key = (str(file), file.stat().st_mtime)
        if key not in _YAML_CACHE:
            with file.open(encoding="utf-8") as handle:
                loaded = [d for d in yaml.load_all(handle, Loader=_Loader) if d]
            _YAML_CACHE[key] = loaded
        for document in _YAML_CACHE[key]:
            if document.get("kind") == "List" or str(document.get("kind", "")).endswith("List"):
                documents.extend(clone(document.get("items") or []))
            else:
                documents.append(clone(document))
    return documents


class ClusterEmulator:
    """An in-process Kubernetes API server for tests, the local stack and the demo.

    ``seed`` is ``"default"`` (the product's namespace, Deployments, Services and ConfigMap),
    ``None`` (an empty cluster) or a path to a YAML file or folder. ``rollout_seconds`` is how
    long a Deployment takes to roll out; ``job_seconds`` how long a Job's pod runs.
    """

    def __init__(
        self,
        seed: str | os.PathLike[str] | None = "default",
        clock: Clock | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        rollout_seconds: float = 10.0,
        job_seconds: float = 2.0,
        random_seed: int | None = None,
        verbose: bool = False,
        watch_history: int = HISTORY,
    ) -> None:
        self.clock = clock or Clock.instant()
        self.host = host
        self.verbose = verbose
        self.port = port
        self.faults = Faults()
        self.registry = Registry()
        self.store = Store(watch_history)
        self.rng = random.Random(random_seed)
        self.controllers = Controllers(
            self.store,
            self.registry,
            self.clock,
            self.faults,
            self.rng,
            rollout_seconds,
            job_seconds,
        )
        self.api = KubeApi(
            self.store,
            self.registry,
            self.controllers,
            self.rng,
            lambda: f"{self.host}:{self.port}",
        )
        self.requests: list[RecordedRequest] = []
        self._requests_lock = threading.Lock()
        self._server: ClusterHttpServer | None = None
        self._thread: threading.Thread | None = None
        self._load(seed)
        self.clock.subscribe(self._on_clock)

    # Lifecycle -------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT`` once started."""
        if self._server is None:
            raise RuntimeError("the emulator is not running: call start() or use `with`")
        return f"http://{self.host}:{self.port}"

    def start(self) -> ClusterEmulator:
        """Serve on a free port (or the one given) in a background thread."""
        if self._server is not None:
            return self
        self.api.stopping.clear()
        self._server = ClusterHttpServer(
            (self.host, self.port),
            self.api,
            self.faults,
            self._control,
            self._record,
            self.api.stopping,
        )
        self._server.verbose = self.verbose
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.5},
            name=f"cluster-emulator-{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and end every open stream."""
        server, self._server = self._server, None
        if server is None:
            return
        self.api.stopping.set()
        self.store.close()
        # serve_forever notices shutdown only when its select() wakes up; a throwaway
        # connection wakes it at once instead of after the poll interval.
        stopper = threading.Thread(target=server.shutdown, daemon=True)
        stopper.start()
        with (
            contextlib.suppress(OSError),
            socket.create_connection((self.host, self.port), timeout=0.5),
        ):
            pass
        stopper.join(timeout=2)
        server.close_connections()
        server.server_close()
        self.clock.unsubscribe(self._on_clock)
        if self._thread is not None:
            self._thread.join(timeout=2)

    def __enter__(self) -> ClusterEmulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # Python API ------------------------------------------------------------------------

    def _resource(self, name: str) -> Resource:
        resource = self.registry.find(name)
        if resource is None:
            raise KeyError(f"unknown resource {name!r}")
        return resource

    def get(self, resource: str, namespace: str | None, name: str) -> dict[str, Any] | None:
        """A copy of the stored object (converged first), or None if it does not exist."""
        kind = self._resource(resource)
        with self.store.lock:
            self.controllers.reconcile()
            found = self.store.get(kind, (namespace or "") if kind.namespaced else "", name)
            return clone(found)

    def list(self, resource: str, namespace: str | None = None) -> list[dict[str, Any]]:
        """Copies of every stored object of a resource (in ``namespace`` if given)."""
        kind = self._resource(resource)
        with self.store.lock:
            self.controllers.reconcile()
            return clone(self.store.items(kind, namespace))

    def mutate(
        self,
        resource: str,
        namespace: str | None,
        name: str,
        change: Callable[[dict[str, Any]], None],
    ) -> dict[str, Any]:
        """Change an object behind every client's back (new resourceVersion, MODIFIED event)."""
        kind = self._resource(resource)
        with self.store.lock:
            scope = (namespace or "") if kind.namespaced else ""
            stored = self.store.get(kind, scope, name)
            if stored is None:
                raise KeyError(f"{kind.key} {scope}/{name} does not exist")
            changed = clone(stored)
            change(changed)
            changed["metadata"].pop("resourceVersion", None)
            target = Target(kind, scope, name, "")
            updated = self.api._update(target, stored, changed)
            if updated["metadata"]["resourceVersion"] == stored["metadata"]["resourceVersion"]:
                # Even an identical rewrite is a write: etcd bumps the revision.
                updated = self.store.put(kind, clone(updated), new=False)
            self.controllers.reconcile()
            return clone(updated)

    def apply(self, manifest: dict[str, Any]) -> dict[str, Any]:
        """Create an object from a manifest without HTTP (like ``kubectl create``)."""
        kind = self.registry.for_kind(
            manifest.get("apiVersion", ""), manifest.get("kind", ""), learn=True
        )
        if kind is None:
            raise ValueError("manifest needs apiVersion and kind")
        obj = clone(manifest)
        meta = obj.setdefault("metadata", {})
        if kind.namespaced:
            meta.setdefault("namespace", "default")
        with self.store.lock:
            created = self.api.create_object(kind, obj)
            self.controllers.reconcile()
            return clone(created)

    def reset_requests(self) -> None:
        """Forget the recorded requests."""
        with self._requests_lock:
            self.requests.clear()

    def _record(self, request: RecordedRequest) -> None:
        with self._requests_lock:
            self.requests.append(request)

    def _on_clock(self) -> None:
        with self.store.lock:
            self.controllers.reconcile()
            self.store.changed.notify_all()

    # Seeding ---------------------------------------------------------------------------

    def _load(self, seed: str | os.PathLike[str] | None) -> None:
        documents: list[dict[str, Any]] = [
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}
            for name in _SYSTEM_NAMESPACES
        ]
        if seed is not None:
            path = DEFAULT_SEED if seed == "default" else Path(seed)
            if not path.exists():
                raise FileNotFoundError(f"seed {path} does not exist")
            documents += _documents(path)
            if seed == "default" and PROJECT_MANIFESTS.is_dir():
                documents += _documents(PROJECT_MANIFESTS)
        self._create_all(documents)

    def seed_namespace(self, namespace: str) -> None:
        """The default seed again in ``namespace``: another application of the fleet, with
        its own colours, Services, ConfigMap, routes and the shipped RBAC."""
        documents = _documents(DEFAULT_SEED)
        if PROJECT_MANIFESTS.is_dir():
            documents += _documents(PROJECT_MANIFESTS)
        namespaces = self._resource("namespaces")
        for document in documents:
            kind = self.registry.for_kind(
                str(document.get("apiVersion", "")), str(document.get("kind", "")), learn=True
            )
            meta = document.setdefault("metadata", {})
            if kind is namespaces:
                meta["name"] = namespace
            elif kind is not None and kind.namespaced:
                meta["namespace"] = namespace
            for subject in document.get("subjects") or []:
                if "namespace" in subject:
                    subject["namespace"] = namespace
        self._create_all(documents)

    def _create_all(self, documents: MutableSequence[dict[str, Any]]) -> None:
        namespaces = self._resource("namespaces")
        documents = sorted(documents, key=lambda d: d.get("kind") != "Namespace")
        with self.store.lock:
            self.controllers.settling = True
            try:
                for document in documents:
                    kind = self.registry.for_kind(
                        str(document.get("apiVersion", "")),
                        str(document.get("kind", "")),
                        learn=True,
                    )
                    if kind is None:
                        raise ValueError(f"seed document without apiVersion/kind: {document}")
                    meta = document.setdefault("metadata", {})
                    if kind is namespaces and self.store.get(kind, "", meta.get("name", "")):
                        continue
                    if kind.namespaced:
                        meta.setdefault("namespace", "default")
                    self.api.create_object(kind, document)
                self.controllers.reconcile()
            except ApiError as error:
                raise ValueError(f"seed rejected: {error.message}") from error
            finally:
                self.controllers.settling = False

    # Control path (never served by a real cluster) -------------------------------------

    def _control(self, request: Request) -> Reply:
        try:
            return self._control_route(request)
        except (ValueError, KeyError, TypeError, PatchError) as error:
            message = error.args[0] if isinstance(error, KeyError) and error.args else str(error)
            return _control_failure(ApiError(400, "BadRequest", str(message)))
        except Exception as error:  # a bug here must not look like a dropped connection
            return _control_failure(
                ApiError(500, "InternalError", f"emulator control path failed: {error!r}")
            )

    def _control_route(self, request: Request) -> Reply:
        path = request.path.rstrip("/")
        method = request.method
        try:
            raw: object = json.loads(request.body) if request.body else {}
        except ValueError as error:
            raise ValueError(f"the body is not JSON: {error}") from None
        if not isinstance(raw, dict):
            raise ValueError("the body must be a JSON object")
        body: dict[str, Any] = raw
        fields = _CONTROL_FIELDS.get((method, path))
        if fields is not None:
            _check_fields(body, *fields)
        if path == "/_emulator" and method == "GET":
            return Reply(200, {"paths": _CONTROL_PATHS})
        if path == "/_emulator/faults/images" and method == "POST":
            self.faults.break_image(_text(body, "image"), _text(body, "mode", "CrashLoopBackOff"))
        elif path == "/_emulator/faults/images" and method == "DELETE":
            self.faults.repair_image(_text(body, "image"))
        elif path == "/_emulator/faults/requests" and method == "POST":
            self.faults.fail_requests(
                _text(body, "method", "*"),
                _text(body, "path", ".*"),
                _whole(body, "status", 500),
                _whole(body, "count", 1),
            )
        elif path == "/_emulator/faults/hangs" and method == "POST":
            self.faults.hang_requests(
                _text(body, "method", "*"),
                _text(body, "path", ".*"),
                _number(body, "seconds", 5.0),
                _whole(body, "count", 1),
            )
        elif path == "/_emulator/faults/jobs" and method == "POST":
            self.faults.fail_jobs(
                _text(body, "match"),
                _text(body, "mode", "fail"),
                _whole(body, "count") if "count" in body else None,
            )
        elif path == "/_emulator/faults/routes" and method == "POST":
            self.faults.refuse_route(
                _text(body, "name"), _text(body, "reason", "NotAllowedByListeners")
            )
        elif path == "/_emulator/faults" and method == "DELETE":
            self.faults.clear()
        elif path == "/_emulator/clock/advance" and method == "POST":
            self.clock.advance(_number(body, "seconds"))
        elif path == "/_emulator/clock" and method == "GET":
            return Reply(200, {"mode": self.clock.mode, "now": self.clock.now()})
        elif path == "/_emulator/requests" and method == "GET":
            with self._requests_lock:
                return Reply(200, {"requests": [r._asdict() for r in self.requests]})
        elif path == "/_emulator/requests" and method == "DELETE":
            self.reset_requests()
        elif path.startswith("/_emulator/objects/") and method == "PATCH":
            parts = path.split("/")[3:]
            if len(parts) == 2:
                resource, namespace, name = parts[0], None, parts[1]
            elif len(parts) == 3:
                resource, namespace, name = parts
            else:
                return Reply(404, {"error": "use /_emulator/objects/<resource>/<ns>/<name>"})

            def change(obj: dict[str, Any]) -> None:
                patched = merge_patch(obj, body)
                obj.clear()
                obj.update(patched)

            return Reply(200, self.mutate(resource, namespace, name, change))
        else:
            return Reply(
                404, {"error": f"no control endpoint {method} {path}", "paths": _CONTROL_PATHS}
            )
        return Reply(200, {"ok": True})


_CONTROL_PATHS = [
    "POST /_emulator/faults/images {image, mode: " + "|".join(IMAGE_MODES) + "}",
    "DELETE /_emulator/faults/images {image}",
    "POST /_emulator/faults/requests {method, path (regex), status: 500|503|429, count}",
    "POST /_emulator/faults/hangs {method, path (regex), seconds, count}",
    "POST /_emulator/faults/jobs {match, mode: fail|hang, count (default: until cleared)}",
    "POST /_emulator/faults/routes {name, reason}: the HTTPRoute reported not Accepted",
    "DELETE /_emulator/faults",
    "POST /_emulator/clock/advance {seconds}",
    "GET /_emulator/clock",
    "GET /_emulator/requests",
    "DELETE /_emulator/requests",
    "PATCH /_emulator/objects/<resource>/<namespace>/<name> (JSON merge patch, no "
    "resourceVersion check)",
]

# Fields each control path accepts (required, optional): anything else is a typo that
# would otherwise be ignored silently and leave a fault behaving unlike what was asked.
_CONTROL_FIELDS: dict[tuple[str, str], tuple[frozenset[str], frozenset[str]]] = {
    ("GET", "/_emulator"): (frozenset(), frozenset()),
    ("POST", "/_emulator/faults/images"): (frozenset({"image"}), frozenset({"mode"})),
    ("DELETE", "/_emulator/faults/images"): (frozenset({"image"}), frozenset()),
    ("POST", "/_emulator/faults/requests"): (
        frozenset(),
        frozenset({"method", "path", "status", "count"}),
    ),
    ("POST", "/_emulator/faults/hangs"): (
        frozenset(),
        frozenset({"method", "path", "seconds", "count"}),
    ),
    ("POST", "/_emulator/faults/jobs"): (frozenset({"match"}), frozenset({"mode", "count"})),
    ("POST", "/_emulator/faults/routes"): (frozenset({"name"}), frozenset({"reason"})),
    ("DELETE", "/_emulator/faults"): (frozenset(), frozenset()),
    ("POST", "/_emulator/clock/advance"): (frozenset({"seconds"}), frozenset()),
    ("GET", "/_emulator/clock"): (frozenset(), frozenset()),
    ("GET", "/_emulator/requests"): (frozenset(), frozenset()),
    ("DELETE", "/_emulator/requests"): (frozenset(), frozenset()),
}
_MISSING = object()


def _control_failure(error: ApiError) -> Reply:
    status = error.status()
    # "error" too: what scripts written against this path read.
    return Reply(error.code, {**status, "error": error.message})


def _check_fields(body: dict[str, Any], required: frozenset[str], optional: frozenset[str]) -> None:
    unknown = sorted(set(body) - required - optional)
    if unknown:
        accepted = ", ".join(sorted(required | optional)) or "none"
        raise ValueError(f"unknown field(s) {', '.join(unknown)}; accepted fields: {accepted}")
    missing = sorted(required - set(body))
    if missing:
        raise ValueError(f"missing required field(s) {', '.join(missing)}")


def _field(body: dict[str, Any], name: str, default: Any) -> Any:
    value = body.get(name, default)
    if value is _MISSING:
        raise ValueError(f"missing required field {name}")
    return value


def _text(body: dict[str, Any], name: str, default: Any = _MISSING) -> str:
    value = _field(body, name, default)
    if not isinstance(value, str):
        raise ValueError(f"field {name} must be a string, not {value!r}")
    return value


def _whole(body: dict[str, Any], name: str, default: Any = _MISSING) -> int:
    value = _field(body, name, default)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"field {name} must be an integer, not {value!r}")
    return value


def _number(body: dict[str, Any], name: str, default: Any = _MISSING) -> float:
    value = _field(body, name, default)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"field {name} must be a number, not {value!r}")
    return float(value)
