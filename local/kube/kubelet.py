"""A simulated kubelet: the one Node of the real control plane, running pods by our conventions.

No container runs. The kubelet registers its Node (Ready, with capacity the
scheduler binds pods against), renews its Lease, and for every pod the
scheduler binds to it reports the status the emulator would: serving pods get
Running and Ready, marked images crash-loop with Kubernetes' back-off (10 s,
20 s, 40 s... capped at 300 s) or fail to pull, Job pods end Succeeded or Failed
as their command would (``wp`` refuses to run as root without ``--allow-root``).
The decisions are the emulator's own (``local.cluster.kubelet``,
``local.cluster.containers``, ``local.cluster.commands``); this module only
carries them to a real API server:

- it authenticates as ``system:node:<name>`` in ``system:nodes``, so the Node
  authorizer and the NodeRestriction admission plugin judge every write;
- pod status goes through the ``pods/status`` subresource as a strategic-merge
  patch (the scheduler's ``PodScheduled`` condition is kept), Events are
  recorded like the kubelet's, and a pod being deleted is confirmed with a
  zero grace period once it is "stopped";
- logs are served on ``/containerLogs/<namespace>/<pod>/<container>`` over TLS,
  where the API server proxies ``kubectl logs`` and the product's log tails;
- images are marked through ``POST /_emulator/faults/images`` on the
  kubelet's control address (plain HTTP on loopback), the same fault path and
  body the emulator serves, so ``bluegreen push --broken`` works on both;
- once given a pod network (``serve_pods``: a network namespace where
  10.244.0.0/16 is local, ``local.kube.dataplane.PodNetwork``), pods started
  from then on get addresses in 10.244.0.0/16, and each running, ready container
  answers HTTP on its pod's address and its declared container ports, inside that
  namespace, as ``local.traffic`` says its image behaves (``good``; ``errors``: 5 %
  of its requests answer 500; ``slow``: it answers after 2 s; marked through
  ``behaviours``), with a body naming its pod, colour and image. A crash-looping
  or never-started container answers nothing, as its process is not running.

The kubelet's own delays (ready, a Job's run, the back-off) can be shortened
by ``KubeletOptions.speed`` for tests; the controllers' (a Deployment's progress
deadline) are real time, as on EKS.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import socket
import ssl
import threading
import time
import urllib.parse
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from local.cluster.containers import CRASH_LOOP, ImageMarks
from local.cluster.kubelet import (
    NODE_CAPACITY,
    KubeletClock,
    PodRun,
    kubelet_events,
    log_refusal,
    plan_pod,
    pod_finished,
    pod_log,
    pod_status,
    render_log,
)
from local.cluster.timefmt import timestamp
from local.kube.certs import KeyPair
from local.traffic import BEHAVIOURS, ERROR_SHARE, LATENCY

if TYPE_CHECKING:
    from kubernetes.client import ApiClient

_TICK = 0.1
"""Seconds between two looks at the pods bound to this node."""
_LEASE_SECONDS = 40
_LEASE_RENEW = 10.0
_NODE_HEARTBEAT = 30.0
_STRATEGIC = "application/strategic-merge-patch+json"
POD_NETWORK = ipaddress.ip_network("10.244.0.0/16")
"""Where pods get their addresses once the kubelet serves them (``serve_pods``)."""

T = TypeVar("T")


class PodNetwork(Protocol):
    """Where pod addresses are local: what ``serve_pods`` needs of a network namespace."""

    def call(self, fn: Callable[[], T]) -> T:
        """``fn()`` run inside the namespace: the sockets it makes live there."""
        ...


@dataclass(frozen=True)
class KubeletOptions:
    """How the simulated kubelet runs pods; Kubernetes' real timing by default."""

    ready_seconds: float = 0.5
    """From a serving pod's creation to Ready."""
    job_seconds: float = 0.5
    """How long a Job's command runs (plus what it sleeps)."""
    speed: float = 1.0
    """How many times faster than Kubernetes the kubelet's own delays run (the crash-loop
    back-off is 10 s, 20 s, 40 s... at 1.0); the controllers' deadlines stay real time."""


class SimulatedKubelet:
    """One Node of the real control plane; see the module."""

    def __init__(
        self,
        node: str,
        client: ApiClient,
        *,
        serving: KeyPair,
        client_ca: Path,
        host: str,
        version: str,
        options: KubeletOptions,
    ) -> None:
        from kubernetes.client import CoordinationV1Api, CoreV1Api

        self.node = node
        self.host = host
        self.version = version
        self.options = options
        self.images = ImageMarks()
        """Marked images; the same convention as the emulator's ``faults.images``."""
        self.errors: list[str] = []
        """The last things the kubelet could not do (kept for a test to show)."""
        self._client = client
        self._core = CoreV1Api(client)
        self._leases = CoordinationV1Api(client)
        self._clock = KubeletClock(duration=lambda seconds: seconds / max(options.speed, 1e-9))
        self._runs: dict[str, PodRun] = {}
        self._pods: dict[tuple[str, str], dict[str, Any]] = {}
        self._statuses: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.behaviours = ImageBehaviours()
        """How the served pods of an image answer (``local.traffic``'s conventions)."""
        self._network: PodNetwork | None = None
        self._addresses: dict[str, str] = {}
        self._servers: dict[tuple[str, int], _PodServer] = {}
        self._serving = threading.RLock()
        self._log_server = _server(self, host, serving, client_ca)
        self._control_server = _control_server(self, host)
        self.port = int(self._log_server.server_address[1])
        self.control_url = f"http://{host}:{self._control_server.server_address[1]}"

    # lifecycle ---------------------------------------------------------------------

    def start(self) -> None:
        """Register the Node, then run pods until ``stop``."""
        for server in (self._log_server, self._control_server):
            thread = threading.Thread(target=server.serve_forever, args=(0.2,), daemon=True)
            thread.start()
            self._threads.append(thread)
        self._register()
        for target in (self._sync_loop, self._lease_loop):
            thread = threading.Thread(target=target, name=f"kubelet-{target.__name__}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        """Stop the loops and the servers; the Node object stays (the cluster goes anyway)."""
        self._stop.set()
        self.serve_pods(None)
        for server in (self._log_server, self._control_server):
            server.shutdown()
            server.server_close()
        for thread in self._threads:
            thread.join(timeout=5)
        self._client.close()

    # the Node and its Lease ---------------------------------------------------------

    def _register(self) -> None:
        from kubernetes.client.exceptions import ApiException

        node = {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {
                "name": self.node,
                "labels": {
                    "kubernetes.io/hostname": self.node,
                    "kubernetes.io/os": "linux",
                    "kubernetes.io/arch": "amd64",
                    "node.kubernetes.io/instance-type": "simulated",
                },
            },
            "spec": {},
        }
        try:
            self._core.create_node(node, _preload_content=False)
        except ApiException as exc:
            if exc.status != 409:
                raise
        self._heartbeat()

    def _heartbeat(self) -> None:
        now = timestamp(time.time())
        capacity = dict(NODE_CAPACITY)
        ready = {
            "type": "Ready",
            "status": "True",
            "reason": "KubeletReady",
            "message": "kubelet is posting ready status",
            "lastHeartbeatTime": now,
            "lastTransitionTime": now,
        }
        pressures = [
            {
                "type": kind,
                "status": "False",
                "reason": f"KubeletHasSufficient{what}",
                "message": f"kubelet has sufficient {what.lower()} available",
                "lastHeartbeatTime": now,
                "lastTransitionTime": now,
            }
            for kind, what in (
                ("MemoryPressure", "Memory"),
                ("DiskPressure", "Disk"),
                ("PIDPressure", "PID"),
            )
        ]
        status = {
            "status": {
                "capacity": capacity,
                "allocatable": capacity,
                "conditions": [*pressures, ready],
                "addresses": [
                    {"type": "InternalIP", "address": self.host},
                    {"type": "Hostname", "address": self.node},
                ],
                "daemonEndpoints": {"kubeletEndpoint": {"Port": self.port}},
                "nodeInfo": {
                    "machineID": uuid.uuid5(uuid.NAMESPACE_DNS, self.node).hex,
                    "systemUUID": str(uuid.uuid5(uuid.NAMESPACE_DNS, self.node)),
                    "bootID": str(uuid.uuid4()),
                    "kernelVersion": "6.1.0",
                    "osImage": "eks-bluegreen simulated node",
                    "containerRuntimeVersion": "simulated://1.0",
                    "kubeletVersion": self.version,
                    "kubeProxyVersion": "",
                    "operatingSystem": "linux",
                    "architecture": "amd64",
                },
            }
        }
        self._core.patch_node_status(
            self.node, status, _content_type=_STRATEGIC, _preload_content=False
        )

    def _lease_loop(self) -> None:
        from kubernetes.client.exceptions import ApiException

        last_heartbeat = time.monotonic()
        while not self._stop.is_set():
            micro = time.strftime("%Y-%m-%dT%H:%M:%S.000000Z", time.gmtime())
            lease = {
                "apiVersion": "coordination.k8s.io/v1",
                "kind": "Lease",
                "metadata": {"name": self.node, "namespace": "kube-node-lease"},
                "spec": {
                    "holderIdentity": self.node,
                    "leaseDurationSeconds": _LEASE_SECONDS,
                    "renewTime": micro,
                },
            }
            try:
                try:
                    self._leases.replace_namespaced_lease(
                        self.node, "kube-node-lease", self._with_version(lease)
                    )
                except ApiException as exc:
                    if exc.status != 404:
                        raise
                    self._leases.create_namespaced_lease("kube-node-lease", lease)
                if time.monotonic() - last_heartbeat >= _NODE_HEARTBEAT:
                    self._heartbeat()
                    last_heartbeat = time.monotonic()
            except Exception as exc:  # the API server may be stopping; try again later
                self._note(f"lease: {exc}")
            self._stop.wait(_LEASE_RENEW)

    def _with_version(self, lease: dict[str, Any]) -> dict[str, Any]:
        current = self._leases.read_namespaced_lease(self.node, "kube-node-lease")
        lease["metadata"]["resourceVersion"] = current.metadata.resource_version
        return lease

    # pods -----------------------------------------------------------------------------

    def _sync_loop(self) -> None:
        while not self._stop.is_set():
            try:
                self._sync()
            except Exception as exc:  # one bad pass must not stop the node
                self._note(f"sync: {exc}")
            self._stop.wait(_TICK)

    def _sync(self) -> None:
        raw = self._core.list_pod_for_all_namespaces(
            field_selector=f"spec.nodeName={self.node}", _preload_content=False
        ).data
        pods = json.loads(raw).get("items", [])
        now = time.time()
        seen: set[str] = set()
        with self._lock:
            self._pods = {(p["metadata"]["namespace"], p["metadata"]["name"]): p for p in pods}
        for pod in pods:
            uid = pod["metadata"]["uid"]
            seen.add(uid)
            if pod["metadata"].get("deletionTimestamp"):
                self._close_servers(uid)
                self._confirm_deletion(pod)
                continue
            run = self._run_for(pod, now)
            status = pod_status(pod, run, now, clock=self._clock, host_ip=self.host)
            self._keep_address(uid, status)
            self._serve(pod, status)
            previous = self._statuses.get(uid) or pod.get("status") or {}
            if _same(previous, status):
                continue
            for event in kubelet_events(pod, previous, status):
                self._record_event(pod, event.reason, event.message, event.warning)
            self._core.patch_namespaced_pod_status(
                pod["metadata"]["name"],
                pod["metadata"]["namespace"],
                {"status": status},
                _content_type=_STRATEGIC,
                _preload_content=False,
            )
            self._statuses[uid] = status
        with self._lock:
            for gone in set(self._runs) - seen:
                self._runs.pop(gone, None)
                self._statuses.pop(gone, None)
                self._addresses.pop(gone, None)
        for uid, _ in list(self._servers):
            if uid not in seen:
                self._close_servers(uid)

    def _run_for(self, pod: dict[str, Any], now: float) -> PodRun:
        uid = pod["metadata"]["uid"]
        with self._lock:
            run = self._runs.get(uid)
            if run is None:
                created = _created(pod, now)
                job = pod["spec"].get("restartPolicy", "Always") != "Always"
                run = plan_pod(
                    pod,
                    created,
                    clock=self._clock,
                    image_mode=self.images.mode_of,
                    job=job,
                    job_seconds=self.options.job_seconds,
                    ready_seconds=self.options.ready_seconds,
                )
                self._runs[uid] = run
            return run

    def _confirm_deletion(self, pod: dict[str, Any]) -> None:
        """The kubelet's part of a graceful delete: the containers stopped, remove the pod."""
        from kubernetes.client.exceptions import ApiException

        meta = pod["metadata"]
        try:
            self._core.delete_namespaced_pod(
                meta["name"],
                meta["namespace"],
                body={"gracePeriodSeconds": 0, "preconditions": {"uid": meta["uid"]}},
                grace_period_seconds=0,
                _preload_content=False,
            )
        except ApiException as exc:
            if exc.status not in (404, 409):
                raise

    def _record_event(self, pod: dict[str, Any], reason: str, message: str, warning: bool) -> None:
        meta = pod["metadata"]
        container = pod["spec"]["containers"][0]["name"]
        now = timestamp(time.time())
        event = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {
                "name": f"{meta['name']}.{uuid.uuid4().hex[:16]}",
                "namespace": meta["namespace"],
            },
            "involvedObject": {
                "apiVersion": "v1",
                "kind": "Pod",
                "name": meta["name"],
                "namespace": meta["namespace"],
                "uid": meta["uid"],
                "fieldPath": f"spec.containers{{{container}}}",
            },
            "reason": reason,
            "message": message,
            "type": "Warning" if warning else "Normal",
            "source": {"component": "kubelet", "host": self.node},
            "reportingComponent": "kubelet",
            "reportingInstance": self.node,
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
        }
        try:
            self._core.create_namespaced_event(meta["namespace"], event, _preload_content=False)
        except Exception as exc:  # an Event is best effort, as the kubelet's are
            self._note(f"event {reason}: {exc}")

    def _note(self, problem: str) -> None:
        self.errors = [*self.errors[-19:], problem]

    # serving pods on their addresses ------------------------------------------------------

    def serve_pods(self, network: PodNetwork | None) -> None:
        """Serve pods' HTTP inside ``network`` from now on (None: stop serving).

        Pods started while a network is set get an address in ``POD_NETWORK``
        (those started before keep theirs: a pod's address never changes); each
        of their running, ready containers answers on that address and each
        container port it declares.
        """
        with self._serving:
            with self._lock:
                self._network = network
            if network is None:
                for uid, _ in list(self._servers):
                    self._close_servers(uid)

    def _keep_address(self, uid: str, status: dict[str, Any]) -> None:
        """A pod's address, chosen once: in ``POD_NETWORK`` while pods are served."""
        if "podIP" not in status:
            return
        with self._lock:
            address = self._addresses.get(uid)
            if address is None:
                address = status["podIP"] if self._network is None else self._free_address(uid)
                self._addresses[uid] = address
        status["podIP"] = address
        status["podIPs"] = [{"ip": address}]

    def _free_address(self, uid: str) -> str:
        """An address of ``POD_NETWORK`` no other pod holds, derived from the pod's uid."""
        size = POD_NETWORK.num_addresses - 2
        taken = set(self._addresses.values())
        start = int(uid.replace("-", "")[:8], 16) % size
        for step in range(size):
            address = str(POD_NETWORK[1 + (start + step) % size])
            if address not in taken:
                return address
        raise RuntimeError(f"no free address left in {POD_NETWORK}")

    def _serve(self, pod: dict[str, Any], status: dict[str, Any]) -> None:
        """Open (or close) the servers of a pod's containers to match their state."""
        with self._serving:
            self._serve_locked(pod, status)

    def _serve_locked(self, pod: dict[str, Any], status: dict[str, Any]) -> None:
        uid = pod["metadata"]["uid"]
        network = self._network
        address = str(status.get("podIP") or "")
        wanted: set[int] = set()
        if network is not None and address and ipaddress.ip_address(address) in POD_NETWORK:
            running = {
                c["name"]
                for c in status.get("containerStatuses") or []
                if "running" in (c.get("state") or {}) and c.get("ready")
            }
            if status.get("phase") == "Running":
                for container in pod["spec"].get("containers") or []:
                    if container["name"] not in running:
                        continue
                    for port in container.get("ports") or []:
                        if port.get("protocol", "TCP") == "TCP" and port.get("containerPort"):
                            wanted.add(int(port["containerPort"]))
        for key in [k for k in self._servers if k[0] == uid and k[1] not in wanted]:
            self._servers.pop(key).close()
        if network is None:
            return
        for port in wanted - {k[1] for k in self._servers if k[0] == uid}:
            try:
                server = _PodServer(self, pod, address, port, network)
            except OSError as exc:
                self._note(f"serve {pod['metadata']['name']} on {address}:{port}: {exc}")
                continue
            self._servers[(uid, port)] = server

    def _close_servers(self, uid: str) -> None:
        with self._serving:
            for key in [k for k in self._servers if k[0] == uid]:
                self._servers.pop(key).close()

    # logs -------------------------------------------------------------------------------

    def log_of(
        self, namespace: str, name: str, container: str, query: dict[str, str]
    ) -> tuple[int, bytes]:
        """What ``GET /containerLogs/...`` answers: (status, body)."""
        with self._lock:
            pod = self._pods.get((namespace, name))
            run = self._runs.get(pod["metadata"]["uid"]) if pod else None
            status = self._statuses.get(pod["metadata"]["uid"]) if pod else None
        if pod is None:
            return 404, f'pods "{name}" not found'.encode()
        shown = dict(pod, status=status or pod.get("status") or {})
        refusal = log_refusal(shown, container, previous=query.get("previous") == "true")
        if refusal:
            return 400, refusal.encode()
        return 200, render_log(
            pod_log(run, container, time.time()),
            tail_lines=_number(query.get("tailLines")),
            timestamps=query.get("timestamps") == "true",
            limit_bytes=_number(query.get("limitBytes")),
            now=time.time(),
        )

    def follow_log(self, namespace: str, name: str, container: str) -> Iterator[None]:
        """Waits (yielding) until the pod's containers have ended or the kubelet stops."""
        while not self._stop.is_set():
            with self._lock:
                pod = self._pods.get((namespace, name))
                status = self._statuses.get(pod["metadata"]["uid"]) if pod else None
            if pod is None or pod_finished({"status": status or pod.get("status") or {}}):
                return
            yield
            self._stop.wait(0.2)


class ImageBehaviours:
    """How served pods of an image answer: ``good``, ``errors`` or ``slow`` (``local.traffic``).

    A mark matches as an image fault does (``ImageMarks``): the image itself, an
    image pinned to it (``repo@<mark>``), or any image containing a marked
    ``sha256:`` digest. Thread-safe.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._marks: dict[str, str] = {}

    def mark(self, image: str, behaviour: str) -> None:
        if behaviour not in BEHAVIOURS:
            raise ValueError(f"behaviour must be one of {', '.join(BEHAVIOURS)}, not {behaviour!r}")
        if not image:
            raise ValueError("image must be an image string or a sha256: digest")
        with self._lock:
            self._marks[image] = behaviour

    def clear_all(self) -> None:
        with self._lock:
            self._marks.clear()

    def of(self, image: str) -> str:
        with self._lock:
            for marked, behaviour in self._marks.items():
                if (
                    image == marked
                    or image.endswith("@" + marked)
                    or (marked.startswith("sha256:") and marked in image)
                ):
                    return behaviour
        return "good"


class _PodServer:
    """One container port of a running pod, answering HTTP on the pod's address.

    The listening socket is made inside the pod network; the connections it
    accepted are closed with it, as a stopped container's would be.
    """

    def __init__(
        self,
        kubelet: SimulatedKubelet,
        pod: dict[str, Any],
        address: str,
        port: int,
        network: PodNetwork,
    ) -> None:
        meta = pod["metadata"]
        labels = meta.get("labels") or {}
        container: dict[str, Any] = next(
            (
                c
                for c in pod["spec"].get("containers") or []
                if any(p.get("containerPort") == port for p in c.get("ports") or [])
            ),
            {},
        )
        self.image = str(container.get("image", ""))
        self.identity = {
            "pod": meta["name"],
            "namespace": meta["namespace"],
            "colour": labels.get("colour") or labels.get("color") or labels.get("app") or "",
            "image": self.image,
            "address": f"{address}:{port}",
        }
        self._kubelet = kubelet
        # Half a request of credit, as local.traffic counts: a 5 % image errs on its 10th
        # request, then every 20th.
        self._error_carry = 0.5
        self._counter = threading.Lock()
        self._connections: set[socket.socket] = set()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                self._answer(head=False)

            def do_HEAD(self) -> None:
                self._answer(head=True)

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                self._answer(head=False)

            def _answer(self, head: bool) -> None:
                status, delay = server.next_answer()
                if delay:
                    time.sleep(delay)
                body = json.dumps({**server.identity, "status": status}).encode() + b"\n"
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if not head:
                    self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                return

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def process_request(self, request: Any, client_address: Any) -> None:
                # Headers and body go out in two writes: without this, a kept-alive
                # connection waits out the peer's delayed ACK (40 ms) on every answer.
                request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                with server._counter:
                    server._connections.add(request)
                super().process_request(request, client_address)

            def shutdown_request(self, request: Any) -> None:
                with server._counter:
                    server._connections.discard(request)
                super().shutdown_request(request)

        self._server = network.call(lambda: Server((address, port), Handler))
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            args=(0.2,),
            name=f"pod-{meta['name']}-{port}",
            daemon=True,
        )
        self._thread.start()

    def next_answer(self) -> tuple[int, float]:
        """The status and delay of the next request, by the image's behaviour now."""
        behaviour = self._kubelet.behaviours.of(self.image)
        with self._counter:
            self._error_carry += ERROR_SHARE[behaviour]
            failed = self._error_carry >= 1.0
            if failed:
                self._error_carry -= 1.0
        delay = LATENCY[behaviour] if behaviour == "slow" else 0.0
        return (500 if failed else 200), delay

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        with self._counter:
            connections = list(self._connections)
            self._connections.clear()
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
            connection.close()
        self._thread.join(timeout=5)


def _same(old: dict[str, Any], new: dict[str, Any]) -> bool:
    """Whether a status write would change nothing the kubelet owns."""
    keys = ("phase", "containerStatuses", "podIP", "hostIP", "startTime")
    if any(old.get(k) != new.get(k) for k in keys):
        return False
    conditions = {c.get("type"): c.get("status") for c in old.get("conditions") or []}
    return all(conditions.get(c["type"]) == c["status"] for c in new.get("conditions") or [])


def _created(pod: dict[str, Any], now: float) -> float:
    from local.cluster.timefmt import parse

    stamp = parse(pod["metadata"].get("creationTimestamp"))
    # Whole seconds: a pod seen within the second it was made counts from now.
    return max(stamp, now - 1.0) if stamp is not None else now


def _number(value: str | None) -> int | None:
    if value is None or value == "":
        return None
    try:
        return max(int(value), 0)
    except ValueError:
        return None


def _server(
    kubelet: SimulatedKubelet, host: str, serving: KeyPair, client_ca: Path
) -> ThreadingHTTPServer:
    """The kubelet's HTTPS endpoint: ``/healthz`` and ``/containerLogs/...``."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            url = urllib.parse.urlsplit(self.path)
            query = dict(urllib.parse.parse_qsl(url.query))
            parts = [urllib.parse.unquote(p) for p in url.path.strip("/").split("/")]
            if parts == ["healthz"]:
                self._answer(200, b"ok")
                return
            if len(parts) == 4 and parts[0] == "containerLogs":
                _, namespace, name, container = parts
                status, body = kubelet.log_of(namespace, name, container, query)
                if status == 200 and query.get("follow") == "true":
                    for _ in kubelet.follow_log(namespace, name, container):
                        pass
                    status, body = kubelet.log_of(namespace, name, container, query)
                self._answer(status, body)
                return
            self._answer(404, b"404 page not found")

        def _answer(self, status: int, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", "text/plain; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = ThreadingHTTPServer((host, 0), Handler)
    server.daemon_threads = True
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(str(serving.cert), str(serving.key))
    # The API server presents its kubelet-client certificate; anything else may still
    # ask for /healthz, as a kubelet's read-only checks allow.
    context.load_verify_locations(str(client_ca))
    context.verify_mode = ssl.CERT_OPTIONAL
    server.socket = context.wrap_socket(server.socket, server_side=True)
    return server


def _control_server(kubelet: SimulatedKubelet, host: str) -> ThreadingHTTPServer:
    """Plain HTTP on loopback: the fault path that marks images, as the emulator serves it."""

    class Handler(BaseHTTPRequestHandler):
        def _body(self) -> dict[str, Any]:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b"{}"
            try:
                body = json.loads(raw or b"{}")
            except ValueError:
                body = None
            return body if isinstance(body, dict) else {}

        def _answer(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_POST(self) -> None:
            if self.path != "/_emulator/faults/images":
                self._answer(404, {"error": f"no control path POST {self.path}"})
                return
            body = self._body()
            try:
                kubelet.images.mark(
                    str(body.get("image") or ""), str(body.get("mode") or CRASH_LOOP)
                )
            except ValueError as exc:
                self._answer(400, {"error": str(exc)})
                return
            self._answer(200, {"marked": body.get("image"), "mode": body.get("mode")})

        def do_DELETE(self) -> None:
            if self.path != "/_emulator/faults/images":
                self._answer(404, {"error": f"no control path DELETE {self.path}"})
                return
            kubelet.images.clear(str(self._body().get("image") or ""))
            self._answer(200, {"cleared": True})

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = ThreadingHTTPServer((host, 0), Handler)
    server.daemon_threads = True
    return server
