"""The controllers of a cluster: Deployments, ReplicaSets, pods (a kubelet), Jobs, GC, TTL.

They run inside the store's lock, after every write and whenever the clock moves, and
repeat until nothing changes, so an instant clock shows converged state to the next read.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import time
import uuid
from collections.abc import Callable
from typing import Any

from local.cluster.admission import default_pod_spec, random_suffix
from local.cluster.clock import Clock
from local.cluster.containers import BACKOFF_FIRST, CRASHES, IMAGE_PULL, PULL_SECONDS
from local.cluster.faults import Faults
from local.cluster.kubelet import (
    KubeletClock,
    PodRun,
    command_of,
    insufficient,
    kubelet_events,
    plan_pod,
    pod_finished,
    pod_log,
    pod_status,
    unschedulable_message,
)
from local.cluster.resources import Registry, Resource
from local.cluster.store import Store, clone
from local.cluster.timefmt import parse, timestamp

__all__ = ["Controllers", "PodRun", "on_every", "template_hash"]

REVISION = "deployment.kubernetes.io/revision"
_HOST_IP = "10.0.1.17"
_NODE_NAME = "ip-10-0-1-17.us-west-2.compute.internal"
"""The emulator's one node, where every pod that fits (``NODE_CAPACITY``) runs."""


def _unschedulable(missing: list[str], now: float) -> dict[str, Any]:
    return {
        "type": "PodScheduled",
        "status": "False",
        "reason": "Unschedulable",
        "message": unschedulable_message(missing),
        "lastProbeTime": None,
        "lastTransitionTime": timestamp(now),
    }


_HASH_LABEL = "pod-template-hash"
_HASH_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
# On a scaled clock time always moves; re-run the controllers at most this often (real s).
_SCALED_RESYNC = 0.02
_SLICE_MANAGER = "endpointslice-controller.k8s.io"
_GATEWAY_CONTROLLER = "emulator.bluegreen.local/gateway"
"""The controllerName the emulator reports HTTPRoutes under (it programs no proxy)."""


def template_hash(template: dict[str, Any], collisions: int = 0) -> str:
    """A stable ``pod-template-hash`` for a pod template, in the controller's alphabet."""
    raw = json.dumps(template, sort_keys=True) + str(collisions)
    number = int.from_bytes(hashlib.sha256(raw.encode()).digest()[:8], "big")
    chars = []
    for _ in range(10):
        number, index = divmod(number, len(_HASH_ALPHABET))
        chars.append(_HASH_ALPHABET[index])
    return "".join(chars)


def _without_hash(template: dict[str, Any]) -> dict[str, Any]:
    clean = clone(template)
    labels = clean.get("metadata", {}).get("labels")
    if isinstance(labels, dict):
        labels.pop(_HASH_LABEL, None)
    return clean


def _scaled(value: Any, total: int, round_up: bool) -> int:
    if isinstance(value, str) and value.endswith("%"):
        fraction = float(value[:-1]) * total / 100
        return math.ceil(fraction) if round_up else math.floor(fraction)
    return int(value or 0)


def _owner_ref(owner: dict[str, Any], api_version: str, kind: str) -> dict[str, Any]:
    return {
        "apiVersion": api_version,
        "kind": kind,
        "name": owner["metadata"]["name"],
        "uid": owner["metadata"]["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }


def _owned_by(obj: dict[str, Any], uid: str) -> bool:
    return any(
        ref.get("uid") == uid and ref.get("controller")
        for ref in obj["metadata"].get("ownerReferences") or []
    )


def _condition(conditions: list[dict[str, Any]], kind: str) -> dict[str, Any] | None:
    return next((c for c in conditions if c.get("type") == kind), None)


def _drop_zero(status: dict[str, Any], *keys: str) -> dict[str, Any]:
    for key in keys:
        if not status.get(key):
            status.pop(key, None)
    return status


ROOT_CA_NOTE = (
    "Contains a CA bundle that can be used to verify the kube-apiserver when using internal "
    "endpoints such as the internal service IP or kubernetes.default.svc. No other usage is "
    "guaranteed across distributions of Kubernetes clusters."
)
ROOT_CA = """-----BEGIN CERTIFICATE-----
MIIBkzCCATmgAwIBAgIUT0ASKxQzIi7YWXK93334bzpGD9QwCgYIKoZIzj0EAwIw
HjEcMBoGA1UEAwwTY2x1c3Rlci1lbXVsYXRvci1jYTAgFw0yNjEyMDYwNzA4MzJa
GA8yMTI2MTExMjA3MDgzMlowHjEcMBoGA1UEAwwTY2x1c3Rlci1lbXVsYXRvci1j
YTBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IABJwe+ZphAAqvMlVhxz4kEcSekptD
37ZDE8VLLi1TkzFneMo6L1sT6UAs6J1k9B7xgpyFqligQ41i78kTY9w2oVqjUzBR
MB0GA1UdDgQWBBQltdpB8Hc88K4k0Z+8oouOsla6mTAfBgNVHSMEGDAWgBQltdpB
8Hc88K4k0Z+8oouOsla6mTAPBgNVHRMBAf8EBTADAQH/MAoGCCqGSM49BAMCA0gA
MEUCIQC2OuZrYCH58P+Ns30BYP7UQb0jT7plyehtnl9F2Xwa2wIgfirWb4esCL5q
PkkAY0ni+ih+ei7a6Z7S/u65BP+gKIw=
-----END CERTIFICATE-----
"""
"""The ``ca.crt`` of every namespace's ``kube-root-ca.crt``. The emulator serves plain HTTP:
this is a fixed self-signed certificate whose key was thrown away, there for the shape."""


class Controllers:
    """Reconciles every controller-managed kind against the clock."""

    def __init__(
        self,
        store: Store,
        registry: Registry,
        clock: Clock,
        faults: Faults,
        rng: random.Random,
        rollout_seconds: float,
        job_seconds: float,
    ) -> None:
        self.store = store
        self.registry = registry
        self.clock = clock
        self.faults = faults
        self.rng = rng
        self.rollout_seconds = rollout_seconds
        self.job_seconds = job_seconds
        self.runs: dict[str, PodRun] = {}
        # Sub-second moments behind whole-second timestamps (a Deployment's last progress, a
        # Job's start), by (uid, what): on a fast clock a second is much of a deadline.
        self._moments: dict[tuple[str, str], float] = {}
        self.settling = False  # seeding: everything converges at once whatever the clock
        self._settled: tuple[int, float] = (-1, 0.0)
        self._settled_at = 0.0
        self.errors: list[str] = []  # the last objects a controller could not handle
        self._r = {
            name: self._res(name)
            for name in (
                "deployments",
                "replicasets",
                "pods",
                "jobs",
                "namespaces",
                "services",
                "endpoints",
                "endpointslices",
                "httproutes",
                "events",
                "configmaps",
                "serviceaccounts",
            )
        }

    def _res(self, plural: str) -> Resource:
        resource = self.registry.find(plural)
        assert resource is not None
        return resource

    def _duration(self, seconds: float) -> float:
        return 0.0 if self.settling else self.clock.duration(seconds)

    def _since(self, uid: str, what: str, stamp: str | None) -> float | None:
        """The moment a timestamp was written, to the sub-second when this process wrote it."""
        parsed = parse(stamp)
        precise = self._moments.get((uid, what))
        if parsed is not None and precise is not None and int(precise) == parsed:
            return precise
        return parsed

    # The loop ---------------------------------------------------------------------------

    def reconcile(self) -> None:
        """Run every controller until the cluster stops changing (bounded)."""
        with self.store.lock:
            settled = (self.store.revision, self.clock.now())
            if settled == self._settled or (
                self.clock.mode == "scaled"
                and settled[0] == self._settled[0]
                and time.monotonic() - self._settled_at < _SCALED_RESYNC
            ):
                return  # nothing was written and no time passed since the last pass
            for _ in range(60):
                before = self.store.revision
                now = self.clock.now()
                # Bottom-up: a deadline is judged on pods and ReplicaSets already brought up
                # to now, so work that finished in time is never reported as timed out just
                # because nothing had looked at the cluster since it finished.
                for plural, sync in (
                    ("pods", self._sync_pod),
                    ("replicasets", self._sync_replica_set),
                    ("deployments", self._sync_deployment),
                    ("jobs", self._sync_job),
                ):
                    for obj in list(self.store.items(self._r[plural])):
                        self._guarded(sync, obj, now)
                self._sync_namespaces()
                self._collect_garbage()
                self._sync_endpoints()
                self._sync_route_status()
                if self.store.revision == before:
                    break
            self._settled = (self.store.revision, self.clock.now())
            self._settled_at = time.monotonic()

    def _guarded(
        self, sync: Callable[[dict[str, Any], float], None], obj: dict[str, Any], now: float
    ) -> None:
        # Like a real controller, one object it cannot handle must not stop the others.
        try:
            sync(obj, now)
        except (KeyError, TypeError, ValueError, AttributeError, IndexError) as error:
            meta = obj.get("metadata", {})
            self.errors.append(f"{meta.get('namespace')}/{meta.get('name')}: {error!r}")
            del self.errors[:-20]

    def next_event_in(self) -> float | None:
        """Clock seconds until some pod changes state by itself (None if nothing is due)."""
        now = self.clock.now()
        due: list[float] = []
        for run in self.runs.values():
            for moment in (run.start_at, run.ready_at, run.finish_at):
                if moment is not None and moment > now:
                    due.append(moment - now)
            if run.fault in CRASHES:
                due.append(
                    BACKOFF_FIRST if self.clock.is_instant else self.clock.duration(BACKOFF_FIRST)
                )
            elif run.fault == IMAGE_PULL and now - run.start_at < self.clock.duration(PULL_SECONDS):
                due.append(run.start_at + self.clock.duration(PULL_SECONDS) - now)
        return min(due) if due else None

    def _write(self, plural: str, obj: dict[str, Any], *, new: bool = False) -> None:
        self.store.put(self._r[plural], obj, new=new)

    # Garbage collection --------------------------------------------------------------

    def _collect_garbage(self) -> None:
        live: set[str] = set()
        for resource in self.registry.all():
            for obj in self.store.items(resource):
                live.add(obj["metadata"].get("uid", ""))
        for resource in self.registry.all():
            for obj in list(self.store.items(resource)):
                refs = obj["metadata"].get("ownerReferences") or []
                if refs and all(ref.get("uid") not in live for ref in refs):
                    meta = obj["metadata"]
                    self.store.remove(resource, meta.get("namespace", ""), meta["name"])
                    self.runs.pop(meta.get("uid", ""), None)
        for gone in [key for key in self._moments if key[0] not in live]:
            del self._moments[gone]

    # Events ------------------------------------------------------------------------------

    def _event(
        self,
        obj: dict[str, Any],
        kind: str,
        reason: str,
        message: str,
        component: str,
        warning: bool = False,
    ) -> None:
        """Record a core/v1 Event about ``obj``, as the controller or kubelet would."""
        meta = obj["metadata"]
        stamp = timestamp(self.clock.now())
        event: dict[str, Any] = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {
                "name": f"{meta['name']}.{self.rng.getrandbits(64):016x}",
                "namespace": meta.get("namespace", "default"),
                "uid": str(uuid.uuid4()),
                "creationTimestamp": stamp,
            },
            "involvedObject": {
                "kind": kind,
                "namespace": meta.get("namespace", "default"),
                "name": meta["name"],
                "uid": meta.get("uid", ""),
                "apiVersion": obj.get("apiVersion", "v1"),
                "resourceVersion": meta.get("resourceVersion", ""),
            },
            "reason": reason,
            "message": message,
            "source": {"component": component},
            "firstTimestamp": stamp,
            "lastTimestamp": stamp,
            "count": 1,
            "type": "Warning" if warning else "Normal",
            "eventTime": None,
            "reportingComponent": component,
            "reportingInstance": "",
        }
        if kind == "Pod" and component == "kubelet":
            event["source"]["host"] = obj["spec"].get("nodeName", "")
            event["involvedObject"]["fieldPath"] = "spec.containers{{{}}}".format(
                obj["spec"]["containers"][0]["name"]
            )
        self.store.put(self._r["events"], event, new=True)

    # Namespaces -------------------------------------------------------------------------

    def _sync_namespaces(self) -> None:
        """What every namespace holds on a real cluster: the ``default`` ServiceAccount and
        the ``kube-root-ca.crt`` ConfigMap (the serviceaccount and root-ca publisher
        controllers)."""
        for namespace in list(self.store.items(self._r["namespaces"])):
            name = namespace["metadata"]["name"]
            made: tuple[tuple[str, dict[str, Any]], ...] = (
                ("serviceaccounts", {"apiVersion": "v1", "kind": "ServiceAccount"}),
                (
                    "configmaps",
                    {
                        "apiVersion": "v1",
                        "kind": "ConfigMap",
                        "metadata": {"annotations": {"kubernetes.io/description": ROOT_CA_NOTE}},
                        "data": {"ca.crt": ROOT_CA},
                    },
                ),
            )
            for plural, obj in made:
                wanted = "default" if plural == "serviceaccounts" else "kube-root-ca.crt"
                if self.store.get(self._r[plural], name, wanted) is not None:
                    continue
                obj["metadata"] = {
                    **obj.get("metadata", {}),
                    "name": wanted,
                    "namespace": name,
                    "uid": str(uuid.uuid4()),
                    "creationTimestamp": timestamp(self.clock.now()),
                }
                self._write(plural, obj, new=True)

    # Endpoints --------------------------------------------------------------------------

    def _sync_endpoints(self) -> None:
        """Keep one Endpoints object per selector Service: its pods' addresses and ports."""
        services = {
            (s["metadata"]["namespace"], s["metadata"]["name"]): s
            for s in self.store.items(self._r["services"])
            if (s.get("spec") or {}).get("selector")
        }
        for endpoints in list(self.store.items(self._r["endpoints"])):
            key = (endpoints["metadata"]["namespace"], endpoints["metadata"]["name"])
            managed = (endpoints["metadata"].get("labels") or {}).get(
                "endpoints.kubernetes.io/managed-by"
            ) == "endpoint-controller"
            if managed and key not in services:
                self.store.remove(self._r["endpoints"], *key)
        for (namespace, name), service in services.items():
            subsets = self._subsets(service)
            current = self.store.get(self._r["endpoints"], namespace, name)
            if current is not None and current.get("subsets", []) == subsets:
                continue
            labels = dict(service["metadata"].get("labels") or {})
            labels["endpoints.kubernetes.io/managed-by"] = "endpoint-controller"
            endpoints = current or {
                "apiVersion": "v1",
                "kind": "Endpoints",
                "metadata": {
                    "name": name,
                    "namespace": namespace,
                    "uid": str(uuid.uuid4()),
                    "creationTimestamp": timestamp(self.clock.now()),
                },
            }
            endpoints["metadata"]["labels"] = labels
            endpoints["metadata"]["annotations"] = {
                "endpoints.kubernetes.io/last-change-trigger-time": timestamp(self.clock.now())
            }
            if subsets:
                endpoints["subsets"] = subsets
            else:
                endpoints.pop("subsets", None)
            self._write("endpoints", endpoints, new=current is None)
        self._sync_endpoint_slices(services)

    def _sync_endpoint_slices(self, services: dict[tuple[str, str], dict[str, Any]]) -> None:
        """One EndpointSlice per selector Service, from the same pods as its Endpoints
        (what kube-proxy and load balancer controllers read on a real cluster)."""
        resource = self._r["endpointslices"]
        owned: dict[tuple[str, str], dict[str, Any]] = {}
        for piece in list(self.store.items(resource)):
            labels = piece["metadata"].get("labels") or {}
            if labels.get("endpointslice.kubernetes.io/managed-by") != _SLICE_MANAGER:
                continue
            key = (piece["metadata"]["namespace"], labels.get("kubernetes.io/service-name", ""))
            if key in services:
                owned[key] = piece
            else:
                self.store.remove(resource, key[0], piece["metadata"]["name"])
        for (namespace, name), service in services.items():
            endpoints: list[dict[str, Any]] = []
            ports: list[dict[str, Any]] = []
            for subset in self._subsets(service):
                for ready, field in ((True, "addresses"), (False, "notReadyAddresses")):
                    for address in subset.get(field) or []:
                        endpoints.append(
                            {
                                "addresses": [address["ip"]],
                                "conditions": {
                                    "ready": ready,
                                    "serving": ready,
                                    "terminating": False,
                                },
                                "nodeName": address.get("nodeName"),
                                "targetRef": address["targetRef"],
                            }
                        )
                ports = subset.get("ports") or []
            current = owned.get((namespace, name))
            wanted = {"endpoints": endpoints, "ports": ports}
            if (
                current is not None
                and {
                    "endpoints": current.get("endpoints") or [],
                    "ports": current.get("ports") or [],
                }
                == wanted
            ):
                continue
            uid = service["metadata"].get("uid", name)
            suffix = hashlib.sha1(uid.encode(), usedforsecurity=False).hexdigest()[:5]
            piece = current or {
                "apiVersion": "discovery.k8s.io/v1",
                "kind": "EndpointSlice",
                "addressType": "IPv4",
                "metadata": {
                    "name": f"{name}-{suffix}",
                    "namespace": namespace,
                    "uid": str(uuid.uuid4()),
                    "creationTimestamp": timestamp(self.clock.now()),
                    "labels": {
                        "kubernetes.io/service-name": name,
                        "endpointslice.kubernetes.io/managed-by": _SLICE_MANAGER,
                    },
                    "ownerReferences": [
                        {
                            "apiVersion": "v1",
                            "kind": "Service",
                            "name": name,
                            "uid": uid,
                            "controller": True,
                            "blockOwnerDeletion": True,
                        }
                    ],
                },
            }
            piece["endpoints"] = endpoints
            piece["ports"] = ports
            self._write("endpointslices", piece, new=current is None)

    # Gateway API route status ------------------------------------------------------------

    def _sync_route_status(self) -> None:
        """Report every HTTPRoute accepted by each of its parents, at its generation, as a
        Gateway implementation does once it has programmed the route (at once here), with
        ResolvedRefs False while a backendRef names a Service that does not exist."""
        resource = self._r["httproutes"]
        for route in list(self.store.items(resource)):
            meta = route["metadata"]
            namespace, generation = meta["namespace"], meta.get("generation", 1)
            missing = sorted(
                str(ref.get("name"))
                for rule in (route.get("spec") or {}).get("rules") or []
                for ref in rule.get("backendRefs") or []
                if ref.get("kind", "Service") == "Service"
                and self.store.get(
                    self._r["services"], ref.get("namespace") or namespace, str(ref.get("name"))
                )
                is None
            )
            now = timestamp(self.clock.now())
            parents = []
            for parent in (route.get("spec") or {}).get("parentRefs") or []:
                previous = next(
                    (
                        p
                        for p in (route.get("status") or {}).get("parents") or []
                        if p.get("parentRef") == parent
                    ),
                    None,
                )
                resolved = (
                    ("True", "ResolvedRefs", "")
                    if not missing
                    else ("False", "BackendNotFound", f"no Service {', '.join(missing)}")
                )
                refused = self.faults.route_refusal(meta["name"])
                accepted = (
                    ("True", "Accepted", "")
                    if refused is None
                    else ("False", refused, "the Gateway's listeners do not allow this route")
                )
                conditions = [
                    _route_condition("Accepted", accepted, generation, previous, now),
                    _route_condition("ResolvedRefs", resolved, generation, previous, now),
                ]
                parents.append(
                    {
                        "parentRef": parent,
                        "controllerName": _GATEWAY_CONTROLLER,
                        "conditions": conditions,
                    }
                )
            if ((route.get("status") or {}).get("parents") or []) == parents:
                continue
            updated = {**route, "status": {**(route.get("status") or {}), "parents": parents}}
            self._write("httproutes", updated)

    def _subsets(self, service: dict[str, Any]) -> list[dict[str, Any]]:
        selector = service["spec"]["selector"]
        namespace = service["metadata"]["namespace"]
        pods = [
            p
            for p in self.store.items(self._r["pods"], namespace)
            if all((p["metadata"].get("labels") or {}).get(k) == v for k, v in selector.items())
            and p.get("status", {}).get("podIP")
            and p.get("status", {}).get("phase") not in {"Succeeded", "Failed"}
        ]
        if not pods:
            return []
        ready: list[dict[str, Any]] = []
        waiting: list[dict[str, Any]] = []
        for pod in pods:
            address = {
                "ip": pod["status"]["podIP"],
                "nodeName": pod["spec"].get("nodeName"),
                "targetRef": {
                    "kind": "Pod",
                    "namespace": namespace,
                    "name": pod["metadata"]["name"],
                    "uid": pod["metadata"]["uid"],
                },
            }
            (ready if self._is_ready(pod) else waiting).append(address)
        ports = []
        for port in service["spec"].get("ports") or []:
            target = port.get("targetPort", port.get("port"))
            if isinstance(target, str):
                target = next(
                    (
                        p.get("containerPort")
                        for c in pods[0]["spec"]["containers"]
                        for p in c.get("ports") or []
                        if p.get("name") == target
                    ),
                    port.get("port"),
                )
            entry = {"port": target, "protocol": port.get("protocol", "TCP")}
            if port.get("name"):
                entry = {"name": port["name"], **entry}
            ports.append(entry)
        subset: dict[str, Any] = {}
        if ready:
            subset["addresses"] = sorted(ready, key=lambda a: a["ip"])
        if waiting:
            subset["notReadyAddresses"] = sorted(waiting, key=lambda a: a["ip"])
        subset["ports"] = ports
        return [subset]

    # Deployments ----------------------------------------------------------------------

    def _replica_sets_of(self, deployment: dict[str, Any]) -> list[dict[str, Any]]:
        meta = deployment["metadata"]
        return [
            rs
            for rs in self.store.items(self._r["replicasets"], meta["namespace"])
            if _owned_by(rs, meta["uid"])
        ]

    def _sync_deployment(self, deployment: dict[str, Any], now: float) -> None:
        spec = deployment["spec"]
        meta = deployment["metadata"]
        replica_sets = self._replica_sets_of(deployment)
        template = spec["template"]
        new_rs = next(
            (
                rs
                for rs in replica_sets
                if _without_hash(rs["spec"]["template"]) == _without_hash(template)
            ),
            None,
        )
        old = [rs for rs in replica_sets if rs is not new_rs]
        revisions = [
            int(rs["metadata"].get("annotations", {}).get(REVISION, "0") or 0) for rs in old
        ]
        max_old = max(revisions, default=0)
        status = clone(deployment.get("status") or {})
        conditions: list[dict[str, Any]] = status.get("conditions") or []
        stamp = timestamp(now)
        if spec.get("paused"):
            self._write_deployment_status(
                deployment, replica_sets, new_rs, conditions, now, paused=True
            )
            return
        if new_rs is None:
            new_rs = self._create_replica_set(deployment, max_old + 1, replica_sets)
            replica_sets.append(new_rs)
            self._set_condition(
                conditions,
                "Progressing",
                "True",
                "NewReplicaSetCreated",
                f'Created new replica set "{new_rs["metadata"]["name"]}"',
                stamp,
            )
        else:
            annotations = new_rs["metadata"].setdefault("annotations", {})
            if int(annotations.get(REVISION, "0") or 0) <= max_old:
                history = [annotations[REVISION]] if annotations.get(REVISION) else []
                if annotations.get("deployment.kubernetes.io/revision-history"):
                    history.insert(0, annotations["deployment.kubernetes.io/revision-history"])
                annotations[REVISION] = str(max_old + 1)
                if history:
                    annotations["deployment.kubernetes.io/revision-history"] = ",".join(history)
                self._write("replicasets", new_rs)
                self._set_condition(
                    conditions,
                    "Progressing",
                    "True",
                    "FoundNewReplicaSet",
                    f'Found new replica set "{new_rs["metadata"]["name"]}"',
                    stamp,
                )
        revision = new_rs["metadata"]["annotations"][REVISION]
        annotations = meta.setdefault("annotations", {})
        if annotations.get(REVISION) != revision:
            annotations[REVISION] = revision
            self._write("deployments", deployment)
        self._scale(deployment, new_rs, old)
        self._trim_history(deployment, old)
        self._write_deployment_status(
            deployment, self._replica_sets_of(deployment), new_rs, conditions, now
        )

    def _create_replica_set(
        self, deployment: dict[str, Any], revision: int, existing: list[dict[str, Any]]
    ) -> dict[str, Any]:
        meta = deployment["metadata"]
        template = clone(deployment["spec"]["template"])
        collisions = int((deployment.get("status") or {}).get("collisionCount", 0))
        names = {rs["metadata"]["name"] for rs in existing}
        pod_hash = template_hash(template, collisions)
        while f"{meta['name']}-{pod_hash}" in names:
            collisions += 1
            pod_hash = template_hash(template, collisions)
        template.setdefault("metadata", {}).setdefault("labels", {})[_HASH_LABEL] = pod_hash
        selector = clone(deployment["spec"]["selector"])
        selector.setdefault("matchLabels", {})[_HASH_LABEL] = pod_hash
        replicas = int(deployment["spec"].get("replicas", 1))
        surge = self._max_surge(deployment)
        annotations = {
            k: v
            for k, v in (meta.get("annotations") or {}).items()
            if k != REVISION and not k.startswith("kubectl.kubernetes.io/")
        }
        annotations.update(
            {
                "deployment.kubernetes.io/desired-replicas": str(replicas),
                "deployment.kubernetes.io/max-replicas": str(replicas + surge),
                REVISION: str(revision),
            }
        )
        labels = dict(template["metadata"]["labels"])
        replica_set: dict[str, Any] = {
            "apiVersion": "apps/v1",
            "kind": "ReplicaSet",
            "metadata": {
                "name": f"{meta['name']}-{pod_hash}",
                "namespace": meta["namespace"],
                "uid": str(uuid.uuid4()),
                "generation": 1,
                "creationTimestamp": timestamp(self.clock.now()),
                "labels": labels,
                "annotations": annotations,
                "ownerReferences": [_owner_ref(deployment, "apps/v1", "Deployment")],
            },
            "spec": {
                "replicas": 0,
                "minReadySeconds": int(deployment["spec"].get("minReadySeconds", 0)),
                "selector": selector,
                "template": template,
            },
            "status": {"replicas": 0},
        }
        if not replica_set["spec"]["minReadySeconds"]:
            replica_set["spec"].pop("minReadySeconds")
        strategy = deployment["spec"].get("strategy", {}).get("type")
        active = sum(int(rs["spec"].get("replicas", 0)) for rs in existing)
        if strategy == "Recreate":
            replica_set["spec"]["replicas"] = 0 if active else replicas
        else:
            replica_set["spec"]["replicas"] = max(min(replicas, replicas + surge - active), 0)
        self._write("replicasets", replica_set, new=True)
        if replica_set["spec"]["replicas"]:
            self._event(
                deployment,
                "Deployment",
                "ScalingReplicaSet",
                f"Scaled up replica set {replica_set['metadata']['name']} from 0 to "
                f"{replica_set['spec']['replicas']}",
                "deployment-controller",
            )
        return replica_set

    def _max_surge(self, deployment: dict[str, Any]) -> int:
        spec = deployment["spec"]
        if spec.get("strategy", {}).get("type") == "Recreate":
            return 0
        rolling = spec.get("strategy", {}).get("rollingUpdate") or {}
        replicas = int(spec.get("replicas", 1))
        return _scaled(rolling.get("maxSurge", "25%"), replicas, round_up=True)

    def max_unavailable(self, deployment: dict[str, Any]) -> int:
        """``maxUnavailable`` resolved against replicas (never 0 together with maxSurge)."""
        spec = deployment["spec"]
        replicas = int(spec.get("replicas", 1))
        if spec.get("strategy", {}).get("type") == "Recreate":
            return 0
        rolling = spec.get("strategy", {}).get("rollingUpdate") or {}
        unavailable = _scaled(rolling.get("maxUnavailable", "25%"), replicas, round_up=False)
        if unavailable == 0 and self._max_surge(deployment) == 0:
            unavailable = 1
        return min(unavailable, replicas)

    def _set_rs_replicas(
        self, replica_set: dict[str, Any], replicas: int, deployment: dict[str, Any]
    ) -> None:
        desired = int(deployment["spec"].get("replicas", 1))
        annotations = replica_set["metadata"].setdefault("annotations", {})
        wanted = {
            "deployment.kubernetes.io/desired-replicas": str(desired),
            "deployment.kubernetes.io/max-replicas": str(desired + self._max_surge(deployment)),
        }
        if replica_set["spec"].get("replicas") == replicas and all(
            annotations.get(k) == v for k, v in wanted.items()
        ):
            return
        annotations.update(wanted)
        before = int(replica_set["spec"].get("replicas", 0))
        if before != replicas:
            direction = "up" if replicas > before else "down"
            self._event(
                deployment,
                "Deployment",
                "ScalingReplicaSet",
                f"Scaled {direction} replica set {replica_set['metadata']['name']} "
                f"from {before} to {replicas}",
                "deployment-controller",
            )
            replica_set["spec"]["replicas"] = replicas
            replica_set["metadata"]["generation"] = (
                int(replica_set["metadata"].get("generation", 1)) + 1
            )
        self._write("replicasets", replica_set)

    def _scale(
        self, deployment: dict[str, Any], new_rs: dict[str, Any], old: list[dict[str, Any]]
    ) -> None:
        spec = deployment["spec"]
        replicas = int(spec.get("replicas", 1))
        if spec.get("strategy", {}).get("type") == "Recreate":
            for rs in old:
                self._set_rs_replicas(rs, 0, deployment)
            if any(rs.get("status", {}).get("replicas", 0) for rs in old):
                return
            self._set_rs_replicas(new_rs, replicas, deployment)
            return
        current = sum(int(rs["spec"].get("replicas", 0)) for rs in [new_rs, *old])
        new_replicas = int(new_rs["spec"].get("replicas", 0))
        if new_replicas > replicas:
            self._set_rs_replicas(new_rs, replicas, deployment)
        elif new_replicas < replicas:
            room = replicas + self._max_surge(deployment) - current
            if room > 0:
                self._set_rs_replicas(
                    new_rs, new_replicas + min(room, replicas - new_replicas), deployment
                )
        else:
            self._set_rs_replicas(new_rs, replicas, deployment)
        active_old = [rs for rs in old if int(rs["spec"].get("replicas", 0)) > 0]
        if not active_old:
            return
        all_pods = sum(int(rs["spec"].get("replicas", 0)) for rs in [new_rs, *old])
        min_available = replicas - self.max_unavailable(deployment)
        new_status = new_rs.get("status") or {}
        new_unavailable = int(new_rs["spec"].get("replicas", 0)) - int(
            new_status.get("availableReplicas", 0)
        )
        budget = all_pods - min_available - max(new_unavailable, 0)
        if budget <= 0:
            return
        ordered = sorted(active_old, key=lambda rs: rs["metadata"]["creationTimestamp"])
        for rs in ordered:  # unhealthy old replicas first: they serve nobody
            count = int(rs["spec"]["replicas"])
            unhealthy = count - int((rs.get("status") or {}).get("availableReplicas", 0))
            cut = min(max(unhealthy, 0), budget)
            if cut:
                self._set_rs_replicas(rs, count - cut, deployment)
                budget -= cut
        available = sum(
            int((rs.get("status") or {}).get("availableReplicas", 0)) for rs in [new_rs, *old]
        )
        budget = min(budget, available - min_available)
        for rs in ordered:
            if budget <= 0:
                break
            count = int(rs["spec"]["replicas"])
            cut = min(count, budget)
            if cut:
                self._set_rs_replicas(rs, count - cut, deployment)
                budget -= cut

    def _trim_history(self, deployment: dict[str, Any], old: list[dict[str, Any]]) -> None:
        limit = deployment["spec"].get("revisionHistoryLimit")
        if limit is None:
            return
        idle = [
            rs
            for rs in old
            if not rs["spec"].get("replicas") and not (rs.get("status") or {}).get("replicas")
        ]
        idle.sort(key=lambda rs: int(rs["metadata"].get("annotations", {}).get(REVISION, "0")))
        for rs in idle[: max(len(idle) - int(limit), 0)]:
            self.store.remove(
                self._r["replicasets"], rs["metadata"]["namespace"], rs["metadata"]["name"]
            )

    def _set_condition(
        self,
        conditions: list[dict[str, Any]],
        kind: str,
        status: str,
        reason: str,
        message: str,
        stamp: str,
    ) -> None:
        current = _condition(conditions, kind)
        if current and current.get("status") == status and current.get("reason") == reason:
            return
        fresh = {
            "type": kind,
            "status": status,
            "lastUpdateTime": stamp,
            "lastTransitionTime": stamp,
            "reason": reason,
            "message": message,
        }
        if current is not None:
            if current.get("status") == status:
                fresh["lastTransitionTime"] = current.get("lastTransitionTime", stamp)
            conditions[conditions.index(current)] = fresh
        else:
            conditions.append(fresh)

    def _write_deployment_status(
        self,
        deployment: dict[str, Any],
        replica_sets: list[dict[str, Any]],
        new_rs: dict[str, Any] | None,
        conditions: list[dict[str, Any]],
        now: float,
        paused: bool = False,
    ) -> None:
        spec = deployment["spec"]
        meta = deployment["metadata"]
        replicas = int(spec.get("replicas", 1))
        old_status = deployment.get("status") or {}
        stored = self.store.get(self._r["deployments"], meta["namespace"], meta["name"])
        previous = (stored or {}).get("status") or {}

        def total(key: str, sets: list[dict[str, Any]]) -> int:
            return sum(int((rs.get("status") or {}).get(key, 0)) for rs in sets)

        available = total("availableReplicas", replica_sets)
        spec_total = sum(int(rs["spec"].get("replicas", 0)) for rs in replica_sets)
        status: dict[str, Any] = {
            "observedGeneration": meta.get("generation", 1),
            "replicas": total("replicas", replica_sets),
            "updatedReplicas": total("replicas", [new_rs]) if new_rs else 0,
            "readyReplicas": total("readyReplicas", replica_sets),
            "availableReplicas": available,
            "unavailableReplicas": max(spec_total - available, 0),
        }
        if old_status.get("collisionCount"):
            status["collisionCount"] = old_status["collisionCount"]
        stamp = timestamp(now)
        conditions = clone(conditions)
        if available >= replicas - self.max_unavailable(deployment):
            self._set_condition(
                conditions,
                "Available",
                "True",
                "MinimumReplicasAvailable",
                "Deployment has minimum availability.",
                stamp,
            )
        else:
            self._set_condition(
                conditions,
                "Available",
                "False",
                "MinimumReplicasUnavailable",
                "Deployment does not have minimum availability.",
                stamp,
            )
        rs_name = new_rs["metadata"]["name"] if new_rs else meta["name"]
        what = f'ReplicaSet "{rs_name}"' if new_rs else f'Deployment "{rs_name}"'
        progressing = _condition(conditions, "Progressing")
        deadline = spec.get("progressDeadlineSeconds")
        complete_before = (
            progressing is not None
            and progressing.get("reason") == "NewReplicaSetAvailable"
            and status["replicas"] == status["updatedReplicas"]
        )
        if paused:
            self._set_condition(
                conditions,
                "Progressing",
                "Unknown",
                "DeploymentPaused",
                "Deployment is paused",
                stamp,
            )
        elif deadline is not None and not complete_before:
            complete = (
                status["updatedReplicas"] == replicas
                and status["replicas"] == replicas
                and available == replicas
            )
            old_old = int(previous.get("replicas", 0)) - int(previous.get("updatedReplicas", 0))
            new_old = status["replicas"] - status["updatedReplicas"]
            moved = (
                status["updatedReplicas"] > int(previous.get("updatedReplicas", 0))
                or new_old < old_old
                or status["readyReplicas"] > int(previous.get("readyReplicas", 0))
                or available > int(previous.get("availableReplicas", 0))
            )
            if complete:
                self._set_condition(
                    conditions,
                    "Progressing",
                    "True",
                    "NewReplicaSetAvailable",
                    f"{what} has successfully progressed.",
                    stamp,
                )
            elif moved:
                fresh = {
                    "type": "Progressing",
                    "status": "True",
                    "lastUpdateTime": stamp,
                    "lastTransitionTime": stamp,
                    "reason": "ReplicaSetUpdated",
                    "message": f"{what} is progressing.",
                }
                if progressing is not None:
                    if progressing.get("status") == "True":
                        fresh["lastTransitionTime"] = progressing["lastTransitionTime"]
                    conditions[conditions.index(progressing)] = fresh
                else:
                    conditions.append(fresh)
            elif progressing is not None:
                since = self._since(meta["uid"], "progressed", progressing.get("lastUpdateTime"))
                since = now if since is None else since
                limit = self._duration(float(deadline))
                timed_out = progressing.get("reason") == "ProgressDeadlineExceeded" or (
                    now - since >= limit if limit == 0 else now - since > limit
                )
                if timed_out:
                    self._set_condition(
                        conditions,
                        "Progressing",
                        "False",
                        "ProgressDeadlineExceeded",
                        f"{what} has timed out progressing.",
                        stamp,
                    )
        written = _condition(conditions, "Progressing")
        if written is not None and written.get("lastUpdateTime") == stamp:
            self._moments[(meta["uid"], "progressed")] = now
        # The real controller lists Available before Progressing.
        conditions.sort(key=lambda c: {"Available": 0, "Progressing": 1}.get(c["type"], 2))
        status["conditions"] = conditions
        _drop_zero(
            status,
            "replicas",
            "updatedReplicas",
            "readyReplicas",
            "availableReplicas",
            "unavailableReplicas",
        )
        if stored is not None and stored.get("status") != status:
            stored["status"] = status
            self._write("deployments", stored)

    # ReplicaSets -----------------------------------------------------------------------

    def _pods_of(self, owner: dict[str, Any]) -> list[dict[str, Any]]:
        meta = owner["metadata"]
        return [
            pod
            for pod in self.store.items(self._r["pods"], meta["namespace"])
            if _owned_by(pod, meta["uid"])
        ]

    def _sync_replica_set(self, replica_set: dict[str, Any], now: float) -> None:
        meta = replica_set["metadata"]
        pods = [
            p
            for p in self._pods_of(replica_set)
            if p.get("status", {}).get("phase") not in {"Succeeded", "Failed"}
        ]
        wanted = int(replica_set["spec"].get("replicas", 1))
        for _ in range(wanted - len(pods)):
            pods.append(
                self._create_pod(
                    replica_set, "ReplicaSet", "apps/v1", replica_set["spec"]["template"], now
                )
            )
        if len(pods) > wanted:
            # Delete pods that serve nobody first, then the newest.
            ranked = sorted(
                pods, key=lambda p: (self._is_ready(p), p["metadata"]["creationTimestamp"])
            )
            doomed = ranked[: len(pods) - wanted]
            doomed.sort(
                key=lambda p: (self._is_ready(p), -(parse(p["metadata"]["creationTimestamp"]) or 0))
            )
            for pod in doomed:
                self.store.remove(self._r["pods"], meta["namespace"], pod["metadata"]["name"])
                self._event(
                    replica_set,
                    "ReplicaSet",
                    "SuccessfulDelete",
                    f"Deleted pod: {pod['metadata']['name']}",
                    "replicaset-controller",
                )
                self.runs.pop(pod["metadata"]["uid"], None)
                pods.remove(pod)
        min_ready = int(replica_set["spec"].get("minReadySeconds", 0))
        ready = [p for p in pods if self._is_ready(p)]
        available = [p for p in ready if self._ready_for(p, now) >= self._duration(min_ready)]
        status: dict[str, Any] = {
            "replicas": len(pods),
            "fullyLabeledReplicas": len(pods),
            "readyReplicas": len(ready),
            "availableReplicas": len(available),
            "observedGeneration": meta.get("generation", 1),
        }
        _drop_zero(status, "fullyLabeledReplicas", "readyReplicas", "availableReplicas")
        if replica_set.get("status") != status:
            replica_set["status"] = status
            self._write("replicasets", replica_set)

    def _is_ready(self, pod: dict[str, Any]) -> bool:
        ready = _condition(pod.get("status", {}).get("conditions") or [], "Ready")
        return bool(ready and ready.get("status") == "True")

    def _ready_for(self, pod: dict[str, Any], now: float) -> float:
        ready = _condition(pod.get("status", {}).get("conditions") or [], "Ready")
        since = parse((ready or {}).get("lastTransitionTime")) or now
        return float("inf") if self.clock.is_instant or self.settling else now - since

    # Pods ------------------------------------------------------------------------------

    def _create_pod(
        self,
        owner: dict[str, Any],
        kind: str,
        api_version: str,
        template: dict[str, Any],
        now: float,
    ) -> dict[str, Any]:
        meta = owner["metadata"]
        name = f"{meta['name']}-{random_suffix(self.rng)}"
        while self.store.get(self._r["pods"], meta["namespace"], name) is not None:
            name = f"{meta['name']}-{random_suffix(self.rng)}"
        spec = clone(template.get("spec") or {})
        default_pod_spec(spec, template=False, job=kind == "Job")
        missing = insufficient(spec)
        if not missing:
            spec["nodeName"] = _NODE_NAME
        spec.setdefault(
            "tolerations",
            [
                {
                    "key": "node.kubernetes.io/not-ready",
                    "operator": "Exists",
                    "effect": "NoExecute",
                    "tolerationSeconds": 300,
                },
                {
                    "key": "node.kubernetes.io/unreachable",
                    "operator": "Exists",
                    "effect": "NoExecute",
                    "tolerationSeconds": 300,
                },
            ],
        )
        pod_meta = clone(template.get("metadata") or {})
        pod_meta.update(
            {
                "name": name,
                "generateName": f"{meta['name']}-",
                "namespace": meta["namespace"],
                "uid": str(uuid.uuid4()),
                "creationTimestamp": timestamp(now),
                "generation": 1,
                "ownerReferences": [_owner_ref(owner, api_version, kind)],
            }
        )
        status: dict[str, Any] = {"phase": "Pending", "qosClass": "BestEffort"}
        pod = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": pod_meta,
            "spec": spec,
            "status": status,
        }
        if missing:
            # The scheduler finds no node with room: the pod waits, Pending, and no
            # kubelet ever sees it.
            status["conditions"] = [_unschedulable(missing, now)]
            self._write("pods", pod, new=True)
            component = "job-controller" if kind == "Job" else "replicaset-controller"
            self._event(owner, kind, "SuccessfulCreate", f"Created pod: {name}", component)
            self._event(
                pod,
                "Pod",
                "FailedScheduling",
                unschedulable_message(missing),
                "default-scheduler",
                warning=True,
            )
            return pod
        self.runs[pod_meta["uid"]] = self._plan(pod, owner, kind, now)
        self._write("pods", pod, new=True)
        component = "job-controller" if kind == "Job" else "replicaset-controller"
        self._event(owner, kind, "SuccessfulCreate", f"Created pod: {name}", component)
        self._event(
            pod,
            "Pod",
            "Scheduled",
            f"Successfully assigned {meta['namespace']}/{name} to {spec['nodeName']}",
            "default-scheduler",
        )
        return pod

    @property
    def _kubelet_clock(self) -> KubeletClock:
        return KubeletClock(duration=self._duration, instant=self.clock.is_instant)

    def _plan(self, pod: dict[str, Any], owner: dict[str, Any], kind: str, now: float) -> PodRun:
        clock = self._kubelet_clock
        if kind == "Job":
            job_fault = self.faults.job_fault(owner["metadata"]["name"], command_of(pod["spec"]))
            return plan_pod(
                pod,
                now,
                clock=clock,
                image_mode=self.faults.image_fault,
                job=True,
                job_fault=job_fault,
                job_seconds=self.job_seconds,
            )
        desired = (owner["metadata"].get("annotations") or {}).get(
            "deployment.kubernetes.io/desired-replicas", owner["spec"].get("replicas", 1)
        )
        # Pods of a rollout get ready one after another, so the whole rollout takes
        # about rollout_seconds.
        replicas = max(int(desired), 1)
        return plan_pod(
            pod,
            now,
            clock=clock,
            image_mode=self.faults.image_fault,
            job=False,
            ready_seconds=self.rollout_seconds / replicas,
        )

    def _sync_pod(self, pod: dict[str, Any], now: float) -> None:
        meta = pod["metadata"]
        run = self.runs.get(meta["uid"])
        if run is None and not pod["spec"].get("nodeName") and insufficient(pod["spec"]):
            conditions = pod.get("status", {}).get("conditions") or []
            if not any(c.get("reason") == "Unschedulable" for c in conditions):
                missing = insufficient(pod["spec"])
                pod["status"] = {
                    "phase": "Pending",
                    "conditions": [_unschedulable(missing, now)],
                    "qosClass": "Burstable",
                }
                self._write("pods", pod)
                self._event(
                    pod,
                    "Pod",
                    "FailedScheduling",
                    unschedulable_message(missing),
                    "default-scheduler",
                    warning=True,
                )
            return
        if run is None and not pod["spec"].get("nodeName"):
            # A pod created through the API (not by a controller) is bound by the scheduler.
            pod["spec"]["nodeName"] = _NODE_NAME
            self._event(
                pod,
                "Pod",
                "Scheduled",
                f"Successfully assigned {meta['namespace']}/{meta['name']} to {_NODE_NAME}",
                "default-scheduler",
            )
        if run is None:
            # A pod created through the API (not by a controller) runs like a Job's pod
            # when its restartPolicy says it ends, or serves forever otherwise.
            policy = pod["spec"].get("restartPolicy", "Always")
            run = self._plan(pod, pod, "Job" if policy != "Always" else "Pod", now)
            if policy == "Always":
                run.ready_at = None if run.fault else now + self._duration(0.0)
            self.runs[meta["uid"]] = run
        status = pod_status(pod, run, now, clock=self._kubelet_clock, host_ip=_HOST_IP)
        if pod.get("status") != status:
            for event in kubelet_events(pod, pod.get("status") or {}, status):
                self._event(
                    pod, "Pod", event.reason, event.message, "kubelet", warning=event.warning
                )
            pod["status"] = status
            self._write("pods", pod)

    def pod_log(self, pod: dict[str, Any], container: str) -> str:
        """What the container printed so far (the kubelet's log for ``kubectl logs``)."""
        return pod_log(self.runs.get(pod["metadata"]["uid"]), container, self.clock.now())

    def pod_finished(self, pod: dict[str, Any]) -> bool:
        """Whether the pod's containers have all ended (a followed log stream then ends)."""
        return pod_finished(pod)

    # Jobs ------------------------------------------------------------------------------

    def _sync_job(self, job: dict[str, Any], now: float) -> None:
        meta = job["metadata"]
        spec = job["spec"]
        status = clone(job.get("status") or {})
        conditions: list[dict[str, Any]] = status.get("conditions") or []
        finished = any(
            c["type"] in {"Complete", "Failed"} and c["status"] == "True" for c in conditions
        )
        pods = self._pods_of(job)
        if finished:
            ttl = spec.get("ttlSecondsAfterFinished")
            done_at = (
                parse(status.get("completionTime"))
                or parse(
                    next(
                        (
                            c["lastTransitionTime"]
                            for c in conditions
                            if c["type"] in {"Complete", "Failed"}
                        ),
                        None,
                    )
                )
                or now
            )
            # Work is instant on an instant clock, but "an hour after it finished" is not:
            # there the TTL stays wall time, so a finished Job can still be read.
            if ttl is not None:
                lifetime = float(ttl) if self.clock.is_instant else self._duration(float(ttl))
                if now >= done_at + lifetime:
                    self._delete_with_pods(job, pods)
            return
        if spec.get("suspend"):
            return
        stamp = timestamp(now)
        if "startTime" not in status:
            status["startTime"] = stamp
            self._moments[(job["metadata"]["uid"], "started")] = now
        succeeded = sum(1 for p in pods if p.get("status", {}).get("phase") == "Succeeded")
        failed = sum(1 for p in pods if p.get("status", {}).get("phase") == "Failed")
        active = [
            p for p in pods if p.get("status", {}).get("phase") not in {"Succeeded", "Failed"}
        ]
        completions = int(spec.get("completions") or 1)
        backoff_limit = int(spec.get("backoffLimit", 6))
        deadline = spec.get("activeDeadlineSeconds")
        started = self._since(job["metadata"]["uid"], "started", status["startTime"])
        started = now if started is None else started
        outcome: tuple[str, str, str, str] | None = None
        if succeeded >= completions:
            outcome = (
                "SuccessCriteriaMet",
                "Complete",
                "CompletionsReached",
                "Reached expected number of succeeded pods",
            )
        elif failed > backoff_limit:
            outcome = (
                "FailureTarget",
                "Failed",
                "BackoffLimitExceeded",
                "Job has reached the specified backoff limit",
            )
        elif (
            deadline is not None
            and now - started >= self._duration(float(deadline))
            and (float(deadline) > 0 or active)
            and not self.clock.is_instant
        ):
            outcome = (
                "FailureTarget",
                "Failed",
                "DeadlineExceeded",
                "Job was active longer than specified deadline",
            )
        if outcome is None and not active:
            last_failure = max(
                (
                    parse(
                        p.get("status", {})
                        .get("containerStatuses", [{}])[0]
                        .get("state", {})
                        .get("terminated", {})
                        .get("finishedAt")
                    )
                    or now
                    for p in pods
                    if p.get("status", {}).get("phase") == "Failed"
                ),
                default=None,
            )
            wait = self._duration(min(10.0 * 2 ** max(failed - 1, 0), 360.0)) if failed else 0
            if last_failure is None or now >= last_failure + wait:
                active.append(self._create_pod(job, "Job", "batch/v1", spec["template"], now))
        if outcome is not None:
            for pod in active:
                self.store.remove(self._r["pods"], meta["namespace"], pod["metadata"]["name"])
                self.runs.pop(pod["metadata"]["uid"], None)
            active = []
            for kind in outcome[:2]:
                conditions.append(
                    {
                        "type": kind,
                        "status": "True",
                        "lastProbeTime": stamp,
                        "lastTransitionTime": stamp,
                        "reason": outcome[2],
                        "message": outcome[3],
                    }
                )
            if outcome[1] == "Complete":
                self._event(job, "Job", "Completed", "Job completed", "job-controller")
            else:
                self._event(job, "Job", outcome[2], outcome[3], "job-controller", warning=True)
            if outcome[1] == "Complete":
                status["completionTime"] = stamp
        ready = sum(1 for p in active if self._is_ready(p))
        status.update(
            {
                "active": len(active),
                "succeeded": succeeded,
                "failed": failed,
                "ready": ready,
                "terminating": 0,
                "uncountedTerminatedPods": {},
            }
        )
        if conditions:
            status["conditions"] = conditions
        _drop_zero(status, "active", "succeeded", "failed")
        if job.get("status") != status:
            job["status"] = status
            self._write("jobs", job)

    def _delete_with_pods(self, job: dict[str, Any], pods: list[dict[str, Any]]) -> None:
        meta = job["metadata"]
        for pod in pods:
            self.store.remove(self._r["pods"], meta["namespace"], pod["metadata"]["name"])
            self.runs.pop(pod["metadata"]["uid"], None)
        self.store.remove(self._r["jobs"], meta["namespace"], meta["name"])


def on_every(callbacks: list[Callable[[], None]]) -> Callable[[], None]:
    """One callback that runs several (the clock has a single listener list per emulator)."""

    def run() -> None:
        for callback in callbacks:
            callback()

    return run


def _route_condition(
    kind: str,
    said: tuple[str, str, str],
    generation: object,
    previous: dict[str, Any] | None,
    now: str,
) -> dict[str, Any]:
    """A route status condition; its transition time kept while its status stays."""
    status, reason, message = said
    before = next(
        (c for c in (previous or {}).get("conditions") or [] if c.get("type") == kind), None
    )
    since = before["lastTransitionTime"] if before and before.get("status") == status else now
    return {
        "type": kind,
        "status": status,
        "reason": reason,
        "message": message,
        "observedGeneration": generation,
        "lastTransitionTime": since,
    }
