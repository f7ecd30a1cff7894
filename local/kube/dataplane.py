"""A real data plane beside the real control plane: load balancer controller, proxy, Prometheus.

The binaries are built from Go modules (the controller, Traefik) or installed
from Debian (Prometheus) by ``local/kube/build-dataplane.sh`` (``make
dataplane``) into ``.cache/dataplane/<name>-<version>/``. Each launcher is a
context manager, like ``ControlPlane``, that stops everything it started on
exit; every process gets a parent-death signal, so none outlives the one that
started it.

- ``LoadBalancerController`` runs the controller against the control plane and
  moto's server: it reconciles Ingresses of class ``alb`` into moto's ELBv2 (load
  balancers, target groups, listener rules with weighted forward actions) and
  registers pod addresses as targets. ``seed_network`` makes the VPC, two subnets
  and the security group its Ingresses name (``ingress_annotations``).
- ``PodNetwork`` is a network namespace of the stack's own where
  ``POD_NETWORK`` (10.244.0.0/16) is local: the simulated kubelet serves pods on
  their addresses there (``SimulatedKubelet.serve_pods``), and the proxy and
  Prometheus run there. The control plane stays on the root namespace's
  loopback; a process inside the namespace reaches only the namespace's own
  loopback, so ``reach`` forwards a port of it to the API server, and ``expose``
  forwards a root-namespace port in (the proxy's entry point, Prometheus' API).
  Python threads enter the namespace with ``setns(2)`` (``call``), which is how
  the kubelet opens pod sockets there and a test sends requests from inside.
- ``GatewayProxy`` runs Traefik's Kubernetes Gateway provider inside the pod
  network: a GatewayClass for ``traefik.io/gateway-controller``, Gateways on its
  entry point, HTTPRoutes programmed into real routing with weighted backends and
  their ``status.parents[]`` reported; Prometheus metrics per service. The
  status is written before the proxy routes by the new configuration (up to its
  2 s throttle later): ``serving_weights`` reads what it routes by now.
- ``Prometheus`` scrapes the proxy's metrics every second; its HTTP API is
  ``url`` (root namespace).
"""

from __future__ import annotations

import contextlib
import ctypes
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import yaml

from local.kube.certs import Authority, Identity
from local.kube.controlplane import apply_objects, free_port, load_manifests
from local.kube.gatewayapi import module_dir as gateway_api_dir
from local.kube.kubelet import POD_NETWORK

if TYPE_CHECKING:
    from kubernetes.client import ApiClient

    from local.kube.controlplane import ControlPlane

T = TypeVar("T")

ROOT = Path(__file__).resolve().parents[2]
BUILD_SCRIPT = ROOT / "local" / "kube" / "build-dataplane.sh"
ALB_CONTROLLER = ("aws-load-balancer-controller", "v3.6.2")
TRAEFIK = ("traefik", "v3.6.12")
PROMETHEUS = "prometheus"
"""Debian's package: its version names the folder (``prometheus-v2.42.0``)."""
PROGRAMS = ("aws-load-balancer-controller", "traefik", "prometheus")

INGRESS_CLASS = "alb"
ALB_CONTROLLER_NAME = "ingress.k8s.aws/alb"
GATEWAY_CONTROLLER = "traefik.io/gateway-controller"
GATEWAY_CRDS = (
    "gateway.networking.k8s.io_gatewayclasses.yaml",
    "gateway.networking.k8s.io_gateways.yaml",
    "gateway.networking.k8s.io_grpcroutes.yaml",
    "gateway.networking.k8s.io_referencegrants.yaml",
    "gateway.networking.k8s.io_backendtlspolicies.yaml",
)
"""What Traefik's Gateway provider watches besides HTTPRoute (which the control plane
installs): without them its informers never sync."""
DUMMY_AWS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
}


class DataPlaneError(Exception):
    """A data-plane program could not be built or started; the message says why."""


# the binaries --------------------------------------------------------------------------


def dataplane_dir() -> Path:
    """Where ``make dataplane`` puts the programs (``BG_DATAPLANE_DIR`` overrides)."""
    configured = os.environ.get("BG_DATAPLANE_DIR")
    return Path(configured) if configured else ROOT / ".cache" / "dataplane"


@dataclass(frozen=True)
class Binaries:
    """Where each program of the data plane is (or will be, once built)."""

    folder: Path

    @property
    def alb_controller(self) -> Path:
        return self.folder / "-".join(ALB_CONTROLLER) / ALB_CONTROLLER[0]

    @property
    def alb_crds(self) -> Path:
        """The controller's CRDs, from its helm chart."""
        return self.alb_controller.parent / "crds" / "crds.yaml"

    @property
    def traefik(self) -> Path:
        return self.folder / "-".join(TRAEFIK) / TRAEFIK[0]

    @property
    def prometheus(self) -> Path:
        found = sorted(self.folder.glob(f"{PROMETHEUS}-*/{PROMETHEUS}"))
        return found[-1] if found else self.folder / PROMETHEUS / PROMETHEUS

    def missing(self, programs: Sequence[str] = PROGRAMS) -> list[str]:
        paths = {
            "aws-load-balancer-controller": (self.alb_controller, self.alb_crds),
            "traefik": (self.traefik,),
            "prometheus": (self.prometheus,),
        }
        return [p for p in programs if not all(path.exists() for path in paths[p])]


def ensure_dataplane(
    programs: Sequence[str] = PROGRAMS, *, folder: Path | None = None, build: bool = True
) -> Binaries:
    """The data plane's programs, built first (``build-dataplane.sh``) when one is missing.

    A cold build takes about 20 minutes on 2 cores and prints a line per program
    (one build at a time: a concurrent caller waits for it); later calls find the
    programs and return at once.
    """
    binaries = Binaries(folder or dataplane_dir())
    missing = binaries.missing(programs)
    if not missing:
        return binaries
    if not build:
        raise DataPlaneError(
            f"{', '.join(missing)} not built in {binaries.folder}: run `make dataplane`"
        )
    if shutil.which("go") is None:
        raise DataPlaneError("the data plane is not built and there is no `go` on PATH")
    result = subprocess.run(["bash", str(BUILD_SCRIPT), str(binaries.folder)], check=False)
    missing = binaries.missing(programs)
    if result.returncode != 0 or missing:
        raise DataPlaneError(
            f"building the data plane failed (exit {result.returncode}); missing: "
            f"{', '.join(missing) or 'nothing'}"
        )
    return binaries


# processes -------------------------------------------------------------------------------


@dataclass
class _Process:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    def tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


class _Processes:
    """Processes started with a parent-death signal, logging to files, stopped newest first."""

    def __init__(self, logs: Path) -> None:
        self.logs = logs
        self.running: list[_Process] = []

    def spawn(self, name: str, argv: list[str], env: Mapping[str, str] | None = None) -> _Process:
        setpriv = shutil.which("setpriv")
        command = [setpriv, "--pdeathsig", "TERM", "--", *argv] if setpriv else argv
        log = self.logs / f"{name}.log"
        with log.open("wb") as out:
            popen = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=dict(env) if env is not None else None,
            )
        process = _Process(name, popen, log)
        self.running.append(process)
        return process

    def wait(self, what: str, ready: Callable[[], bool], seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            for process in self.running:
                if process.popen.poll() is not None:
                    raise DataPlaneError(
                        f"{process.name} exited with {process.popen.returncode} while waiting "
                        f"for {what}; its log ({process.log}) ends:\n{process.tail()}"
                    )
            if ready():
                return
            time.sleep(0.1)
        logs = "\n".join(f"--- {p.name} ({p.log}):\n{p.tail()}" for p in self.running)
        raise DataPlaneError(f"{what} was not ready within {seconds:g}s\n{logs}")

    def stop(self) -> None:
        for process in reversed(self.running):
            if process.popen.poll() is None:
                process.popen.send_signal(signal.SIGTERM)
            try:
                process.popen.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.popen.kill()
                process.popen.wait(timeout=5)
        self.running = []


def _workdir(prefix: str) -> Path:
    return Path(tempfile.mkdtemp(prefix=prefix))


# the pod network -------------------------------------------------------------------------

_CLONE_NEWNET = 0x40000000
_inside = threading.local()


def inside_pod_network() -> bool:
    """Whether the calling thread is one of a ``PodNetwork``'s (its sockets live there)."""
    return bool(getattr(_inside, "network", False))


@dataclass(frozen=True)
class HttpAnswer:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class PodNetwork:
    """A network namespace where ``POD_NETWORK`` is local: pods, the proxy and Prometheus live here.

    It is a fresh namespace (``unshare --net``) held open by a process with a
    parent-death signal, so it vanishes with the process that made it, even on
    SIGKILL; inside, ``lo`` is up and ``ip route add local 10.244.0.0/16 dev lo``
    makes every pod address an address of this namespace. It has no other
    interface: nothing sent inside can leave it.
    """

    def __init__(self, *, workers: int = 8) -> None:
        self._workers = workers
        self._holder: subprocess.Popen[bytes] | None = None
        self._fd = -1
        self._executor: ThreadPoolExecutor | None = None
        self._forwarders: list[_Forwarder] = []
        self.path = ""
        """``/proc/<holder>/ns/net``: what ``nsenter --net=`` and ``setns`` take."""

    def __enter__(self) -> PodNetwork:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def start(self) -> PodNetwork:
        unshare, setpriv = shutil.which("unshare"), shutil.which("setpriv")
        if unshare is None or setpriv is None or os.geteuid() != 0:
            raise DataPlaneError(
                "a pod network needs root, unshare and setpriv (util-linux): "
                "it makes a network namespace"
            )
        script = (
            "ip link set lo up && "
            f"ip route add local {POD_NETWORK} dev lo && "
            "echo ready && exec sleep infinity"
        )
        self._holder = subprocess.Popen(
            [setpriv, "--pdeathsig", "KILL", "--", unshare, "--net", "--", "sh", "-c", script],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        assert self._holder.stdout is not None
        line = self._holder.stdout.readline()
        if line.strip() != b"ready":
            error = self._holder.stderr.read().decode() if self._holder.stderr else ""
            self.stop()
            raise DataPlaneError(f"could not make the pod network: {error.strip() or line!r}")
        self.path = f"/proc/{self._holder.pid}/ns/net"
        self._fd = os.open(self.path, os.O_RDONLY)
        self._executor = ThreadPoolExecutor(
            max_workers=self._workers, thread_name_prefix="pod-network", initializer=self._enter
        )
        return self

    def stop(self) -> None:
        for forwarder in self._forwarders:
            forwarder.close()
        self._forwarders = []
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
            self._executor = None
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
        if self._holder is not None:
            if self._holder.poll() is None:
                self._holder.kill()
            self._holder.wait(timeout=5)
            for stream in (self._holder.stdout, self._holder.stderr):
                if stream is not None:
                    stream.close()
            self._holder = None

    def _enter(self) -> None:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.setns(self._fd, _CLONE_NEWNET) != 0:
            error = ctypes.get_errno()
            raise OSError(error, f"setns({self.path}): {os.strerror(error)}")
        _inside.network = True

    # inside the namespace ------------------------------------------------------------------

    def call(self, fn: Callable[[], T]) -> T:
        """``fn()`` run by a thread inside the namespace: the sockets it makes live there."""
        if inside_pod_network():
            return fn()
        if self._executor is None:
            raise DataPlaneError("the pod network is not started")
        return self._executor.submit(fn).result()

    def command(self, argv: Sequence[str]) -> list[str]:
        """``argv`` run inside the namespace (``nsenter --net``)."""
        return ["nsenter", f"--net={self.path}", "--", *argv]

    def free_port(self) -> int:
        """A port nobody listens on inside the namespace."""
        return self.call(free_port)

    def connect(self, host: str, port: int, timeout: float = 10.0) -> socket.socket:
        """A TCP connection made from inside the namespace."""
        return self.call(lambda: socket.create_connection((host, port), timeout=timeout))

    def connection(self, host: str, port: int, timeout: float = 10.0) -> http.client.HTTPConnection:
        """An HTTP connection whose socket is made inside the namespace (kept alive between
        requests, reconnected when the server closes it)."""
        network = self

        class Connection(http.client.HTTPConnection):
            def connect(self) -> None:
                self.sock = network.connect(self.host, self.port, timeout)

        return Connection(host, port, timeout=timeout)

    def request(
        self,
        url: str,
        *,
        method: str = "GET",
        headers: Mapping[str, str] | None = None,
        body: bytes | None = None,
        timeout: float = 10.0,
        connection: http.client.HTTPConnection | None = None,
    ) -> HttpAnswer:
        """One HTTP request sent from inside the namespace, on ``connection`` when given
        (it must point at the URL's host and port), else on a connection of its own."""
        parts = urllib.parse.urlsplit(url)
        own = connection is None
        if connection is None:
            connection = self.connection(parts.hostname or "127.0.0.1", parts.port or 80, timeout)
        try:
            path = parts.path or "/"
            if parts.query:
                path += "?" + parts.query
            connection.request(method, path, body=body, headers=dict(headers or {}))
            answer = connection.getresponse()
            return HttpAnswer(answer.status, dict(answer.getheaders()), answer.read())
        except (OSError, http.client.HTTPException):
            connection.close()
            raise
        finally:
            if own:
                connection.close()

    # across the namespace's border -----------------------------------------------------------

    def reach(self, port: int, host: str = "127.0.0.1") -> int:
        """A port on the namespace's loopback forwarded to ``host:port`` of the root namespace."""
        listener = self.call(lambda: _listener("127.0.0.1"))
        forwarder = _Forwarder(listener, lambda: socket.create_connection((host, port), 10))
        self._forwarders.append(forwarder)
        return forwarder.port

    def expose(self, port: int, host: str = "127.0.0.1") -> int:
        """A port on the root namespace's loopback forwarded to ``host:port`` in the namespace."""
        forwarder = _Forwarder(_listener("127.0.0.1"), lambda: self.connect(host, port))
        self._forwarders.append(forwarder)
        return forwarder.port


def _listener(host: str) -> socket.socket:
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((host, 0))
    listener.listen(64)
    return listener


class _Forwarder:
    """A TCP relay: every connection accepted on ``listener`` is piped to a fresh ``dial()``."""

    def __init__(self, listener: socket.socket, dial: Callable[[], socket.socket]) -> None:
        self.port = int(listener.getsockname()[1])
        self._listener = listener
        self._listener.settimeout(0.2)
        self._dial = dial
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._open: set[socket.socket] = set()
        self._thread = threading.Thread(
            target=self._accept, name=f"forward-{self.port}", daemon=True
        )
        self._thread.start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            client.settimeout(None)
            threading.Thread(target=self._relay, args=(client,), daemon=True).start()

    def _relay(self, client: socket.socket) -> None:
        try:
            upstream = self._dial()
        except OSError:
            client.close()
            return
        upstream.settimeout(None)
        with self._lock:
            self._open.update((client, upstream))
        done = threading.Event()

        def pipe(source: socket.socket, sink: socket.socket) -> None:
            try:
                while data := source.recv(65536):
                    sink.sendall(data)
            except OSError:
                pass
            with contextlib.suppress(OSError):
                sink.shutdown(socket.SHUT_WR)
            if done.is_set():
                self._close(client, upstream)
            done.set()

        threading.Thread(target=pipe, args=(upstream, client), daemon=True).start()
        pipe(client, upstream)

    def _close(self, *sockets: socket.socket) -> None:
        for sock in sockets:
            with self._lock:
                self._open.discard(sock)
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._listener.close()
        with self._lock:
            still = list(self._open)
        self._close(*still)


# the AWS Load Balancer Controller ----------------------------------------------------------


@dataclass(frozen=True)
class AwsNetwork:
    """What ``seed_network`` made in (moto's) EC2 for the controller's load balancers."""

    vpc_id: str
    subnet_ids: tuple[str, str]
    security_group_id: str


def seed_network(ec2: Any, *, cidr: str = str(POD_NETWORK)) -> AwsNetwork:
    """A VPC holding the pod addresses, two subnets in two zones, and a load balancer's group.

    ``ec2`` is a boto3 EC2 client (on moto). The VPC's block is the pod network's,
    so the controller registers pod addresses as targets inside its VPC.
    """
    vpc = ec2.create_vpc(CidrBlock=cidr)["Vpc"]["VpcId"]
    zones = [z["ZoneName"] for z in ec2.describe_availability_zones()["AvailabilityZones"]][:2]
    halves = [f"{cidr.split('/')[0]}/17", f"{cidr.split('.')[0]}.{cidr.split('.')[1]}.128.0/17"]
    subnets = tuple(
        ec2.create_subnet(VpcId=vpc, CidrBlock=block, AvailabilityZone=zone)["Subnet"]["SubnetId"]
        for block, zone in zip(halves, zones, strict=True)
    )
    group = ec2.create_security_group(
        GroupName="eks-bluegreen-alb", Description="the load balancer's", VpcId=vpc
    )["GroupId"]
    return AwsNetwork(vpc, (subnets[0], subnets[1]), group)


def ingress_annotations(network: AwsNetwork) -> dict[str, str]:
    """The annotations an Ingress needs so the controller uses ``network`` as it is."""
    return {
        "alb.ingress.kubernetes.io/subnets": ",".join(network.subnet_ids),
        "alb.ingress.kubernetes.io/security-groups": network.security_group_id,
        # The group is ours: the controller must not try to manage the pods' rules.
        "alb.ingress.kubernetes.io/manage-backend-security-group-rules": "false",
    }


class LoadBalancerController:
    """The AWS Load Balancer Controller on the control plane, its AWS calls going to moto.

    ``watch_namespace`` limits it to one namespace (the controller adds finalizers
    to the Ingresses it reconciles: delete them before stopping it, or their
    namespace cannot finish deleting).
    """

    def __init__(
        self,
        control_plane: ControlPlane,
        moto_url: str,
        region: str,
        vpc_id: str,
        cluster_name: str,
        *,
        watch_namespace: str | None = None,
        binaries: Binaries | None = None,
        workdir: Path | None = None,
    ) -> None:
        self.control_plane = control_plane
        self.moto_url = moto_url.rstrip("/")
        self.region = region
        self.vpc_id = vpc_id
        self.cluster_name = cluster_name
        self.watch_namespace = watch_namespace
        self._binaries = binaries
        self._owned_workdir = workdir is None
        self.workdir = workdir
        self._processes: _Processes | None = None
        self.health_url = ""

    def __enter__(self) -> LoadBalancerController:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    @property
    def log(self) -> Path:
        assert self.workdir is not None, "the controller is not started"
        return self.workdir / "logs" / "aws-load-balancer-controller.log"

    def start(self) -> LoadBalancerController:
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self) -> None:
        binaries = self._binaries or ensure_dataplane(["aws-load-balancer-controller"])
        if self.workdir is None:
            self.workdir = _workdir("bluegreen-alb-")
        (self.workdir / "logs").mkdir(parents=True, exist_ok=True)
        self._processes = _Processes(self.workdir / "logs")
        with self.control_plane.admin_client() as client:
            crds = load_manifests(binaries.alb_crds)
            apply_objects(client, crds, namespace=None)
            for crd in crds:
                _wait_established(client, str(crd["metadata"]["name"]))
            apply_objects(client, [ingress_class()], namespace=None)

        # The webhooks are not registered with the API server (nothing calls them),
        # but the controller serves them and will not start without a certificate.
        pair = Authority(self.workdir / "pki", "aws-load-balancer-webhook-ca").serving(
            "webhook", "aws-load-balancer-webhook", ("127.0.0.1", "localhost")
        )
        certs = self.workdir / "webhook-certs"
        certs.mkdir(exist_ok=True)
        shutil.copy(pair.cert, certs / "tls.crt")
        shutil.copy(pair.key, certs / "tls.key")

        health = free_port()
        self.health_url = f"http://127.0.0.1:{health}"
        endpoints = ",".join(
            f"{service}={self.moto_url}" for service in ("EC2", "Elastic Load Balancing v2", "STS")
        )
        argv = [
            str(binaries.alb_controller),
            f"--kubeconfig={self.control_plane.admin_kubeconfig}",
            f"--cluster-name={self.cluster_name}",
            f"--aws-region={self.region}",
            f"--aws-vpc-id={self.vpc_id}",
            f"--aws-api-endpoints={endpoints}",
            "--aws-max-retries=2",
            "--enable-waf=false",
            "--enable-wafv2=false",
            "--enable-shield=false",
            "--feature-gates=ALBGatewayAPI=false,NLBGatewayAPI=false",
            "--enable-leader-election=false",
            f"--webhook-cert-dir={certs}",
            f"--webhook-bind-port={free_port()}",
            f"--metrics-bind-addr=127.0.0.1:{free_port()}",
            f"--health-probe-bind-addr=127.0.0.1:{health}",
            f"--ingress-class={INGRESS_CLASS}",
        ]
        if self.watch_namespace:
            argv.append(f"--watch-namespace={self.watch_namespace}")
        self._processes.spawn("aws-load-balancer-controller", argv, env=self._env())
        self._processes.wait(
            "the AWS Load Balancer Controller", lambda: _http_ok(f"{self.health_url}/readyz"), 60
        )

    def _env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env.update(DUMMY_AWS)
        env.update(
            AWS_REGION=self.region,
            AWS_DEFAULT_REGION=self.region,
            # Every other AWS API the SDK might reach goes to moto too, and the instance
            # metadata service is never asked: nothing leaves the machine.
            AWS_ENDPOINT_URL=self.moto_url,
            AWS_EC2_METADATA_DISABLED="true",
            NO_PROXY="127.0.0.1,localhost",
        )
        return env

    def stop(self) -> None:
        if self._processes is not None:
            self._processes.stop()
            self._processes = None
        if self._owned_workdir and self.workdir is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)
            self.workdir = None


def ingress_class() -> dict[str, Any]:
    """The IngressClass ``alb`` the controller serves (as its helm chart makes it)."""
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "IngressClass",
        "metadata": {"name": INGRESS_CLASS},
        "spec": {"controller": ALB_CONTROLLER_NAME},
    }


# Traefik -------------------------------------------------------------------------------------


class GatewayProxy:
    """Traefik with its Kubernetes Gateway provider, inside the pod network.

    It starts with a GatewayClass (``gateway_class``, controller
    ``traefik.io/gateway-controller``) and a Gateway (``gateway``, in namespace
    ``default``); ``add_gateway`` adds one in another namespace (an HTTPRoute's
    ``parentRefs`` without a namespace name a Gateway of its own namespace).
    Requests enter on ``web_port`` inside the namespace (``url``; ``web_url`` is
    the same entry point forwarded to the root namespace), Prometheus metrics are
    served on ``metrics_port`` (entry point ``metrics``) with a label per service.
    """

    def __init__(
        self,
        control_plane: ControlPlane,
        network: PodNetwork,
        *,
        gateway_class: str = "traefik",
        gateway: str = "web-gateway",
        binaries: Binaries | None = None,
        workdir: Path | None = None,
    ) -> None:
        self.control_plane = control_plane
        self.network = network
        self.gateway_class = gateway_class
        self.gateway = gateway
        self._binaries = binaries
        self._owned_workdir = workdir is None
        self.workdir = workdir
        self._processes: _Processes | None = None
        self.web_port = 0
        self.metrics_port = 0
        self.web_url = ""
        self._gateways: list[tuple[str, str]] = []

    def __enter__(self) -> GatewayProxy:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """The entry point, inside the pod network."""
        return f"http://127.0.0.1:{self.web_port}"

    @property
    def metrics_target(self) -> str:
        """``host:port`` of the metrics, inside the pod network (what Prometheus scrapes)."""
        return f"127.0.0.1:{self.metrics_port}"

    @property
    def log(self) -> Path:
        assert self.workdir is not None, "the proxy is not started"
        return self.workdir / "logs" / "traefik.log"

    def start(self) -> GatewayProxy:
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self) -> None:
        binaries = self._binaries or ensure_dataplane(["traefik"])
        if self.workdir is None:
            self.workdir = _workdir("bluegreen-traefik-")
        (self.workdir / "logs").mkdir(parents=True, exist_ok=True)
        self._processes = _Processes(self.workdir / "logs")
        with self.control_plane.admin_client() as client:
            crds = gateway_crds()
            apply_objects(client, crds, namespace=None)
            for crd in crds:
                _wait_established(client, str(crd["metadata"]["name"]))
            _create_cluster_object(client, "gatewayclasses", gateway_class(self.gateway_class))

        # The API server listens on the root namespace's loopback, out of Traefik's reach:
        # a port of the pod network's loopback is forwarded to it.
        api = urllib.parse.urlsplit(self.control_plane.url)
        inside = self.network.reach(int(api.port or 443), api.hostname or "127.0.0.1")
        kubeconfig = self.control_plane.kubeconfig_for(
            Identity("traefik", ("system:masters",)), "traefik"
        )
        config = yaml.safe_load(kubeconfig.read_text())
        config["clusters"][0]["cluster"]["server"] = f"https://127.0.0.1:{inside}"
        kubeconfig.write_text(yaml.safe_dump(config, sort_keys=False))

        self.web_port = self.network.free_port()
        self.metrics_port = self.network.free_port()
        argv = [
            str(binaries.traefik),
            f"--entryPoints.web.address=127.0.0.1:{self.web_port}",
            # Traefik's own entry point: its API (what it serves right now), ping, metrics.
            f"--entryPoints.traefik.address=127.0.0.1:{self.metrics_port}",
            "--api=true",
            "--api.insecure=true",
            "--api.dashboard=false",
            "--ping=true",
            "--providers.kubernetesgateway=true",
            "--providers.kubernetesgateway.statusAddress.ip=127.0.0.1",
            "--metrics.prometheus=true",
            "--metrics.prometheus.entryPoint=traefik",
            "--metrics.prometheus.addServicesLabels=true",
            "--metrics.prometheus.addRoutersLabels=true",
            "--metrics.prometheus.addEntryPointsLabels=true",
            # Stopping waits for open connections at most a second (10 s by default).
            "--entryPoints.web.transport.lifeCycle.graceTimeOut=1s",
            "--entryPoints.traefik.transport.lifeCycle.graceTimeOut=1s",
            "--global.checkNewVersion=false",
            "--global.sendAnonymousUsage=false",
            "--log.level=INFO",
            "--log.noColor=true",
        ]
        env = {k: v for k, v in os.environ.items() if not k.startswith("KUBERNETES_")}
        env["KUBECONFIG"] = str(kubeconfig)
        self._processes.spawn("traefik", self.network.command(argv), env=env)
        self._processes.wait("Traefik", self._pinged, 60)
        self.web_url = f"http://127.0.0.1:{self.network.expose(self.web_port)}"
        self.add_gateway("default", self.gateway)

    def _pinged(self) -> bool:
        try:
            answer = self.network.request(f"http://{self.metrics_target}/ping", timeout=1)
        except OSError:
            return False
        return answer.status == 200

    def api(self, path: str) -> Any:
        """Traefik's API (``/api/http/routers``, ...): the configuration it serves right now."""
        answer = self.network.request(f"http://{self.metrics_target}{path}", timeout=5)
        if answer.status != 200:
            raise DataPlaneError(f"Traefik's API {path} answered {answer.status}: {answer.body!r}")
        return answer.json()

    def serving_weights(self, namespace: str, route: str) -> list[dict[str, int]]:
        """Per rule of an HTTPRoute, in order, the weight per backend Service Traefik applies now.

        What the proxy routes by, not what its status says: the route's status is
        written when the provider has built the configuration, and the proxy switches
        to it a throttle later (``providersThrottleDuration``, 2 s by default). A
        backend given weight is listed only once Traefik knows a server of it.
        """
        prefix = provider_name(f"httproute-{namespace}-{route}-gw") + "-"
        rules: dict[int, str] = {}
        for router in self.api("/api/http/routers"):
            name = str(router.get("name", "")).removesuffix("@kubernetesgateway")
            if router.get("provider") == "kubernetesgateway" and name.startswith(prefix):
                index = int(name.rsplit("-", 2)[1])
                rules[index] = str(router["service"]).removesuffix("@kubernetesgateway")
        services = {
            str(s["name"]).removesuffix("@kubernetesgateway"): s
            for s in self.api("/api/http/services")
        }

        def has_servers(name: str) -> bool:
            # A backend Traefik knows no server of yet answers its share with a 503.
            leaf = services.get(name.removesuffix("@kubernetesgateway"), {})
            return bool((leaf.get("loadBalancer") or {}).get("servers"))

        answer = []
        for index in sorted(rules):
            weighted = services.get(rules[index], {}).get("weighted") or {}
            answer.append(
                {
                    # "<namespace>-<service>-http-<port>"
                    str(b["name"]).removeprefix(f"{namespace}-").rsplit("-", 2)[0]: int(
                        b.get("weight", 1)
                    )
                    for b in weighted.get("services") or []
                    if int(b.get("weight", 1)) == 0 or has_servers(str(b["name"]))
                }
            )
        return answer

    def add_gateway(self, namespace: str, name: str | None = None, seconds: float = 60) -> None:
        """A Gateway on the proxy's entry point, routes from its own namespace; waits until
        the proxy accepts it."""
        name = name or self.gateway
        body = {
            "apiVersion": "gateway.networking.k8s.io/v1",
            "kind": "Gateway",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {
                "gatewayClassName": self.gateway_class,
                "listeners": [
                    {
                        "name": "web",
                        "protocol": "HTTP",
                        "port": self.web_port,
                        "allowedRoutes": {"namespaces": {"from": "Same"}},
                    }
                ],
            },
        }
        with self.control_plane.admin_client() as client:
            apply_objects(client, [body], namespace=namespace)
            self._gateways.append((namespace, name))
            assert self._processes is not None
            self._processes.wait(
                f"Gateway {namespace}/{name}",
                lambda: _condition(client, "gateways", namespace, name, "Accepted"),
                seconds,
            )

    def remove_gateway(self, namespace: str, name: str | None = None, seconds: float = 30) -> None:
        """Delete ``namespace``'s Gateway and HTTPRoutes; wait until the proxy routes by none.

        Deleting the namespace alone leaves its routes to the namespace controller,
        seconds later: meanwhile the proxy keeps a router for the same host whose
        backends have no server, and may answer another namespace's requests by it.
        """
        from kubernetes.client import CustomObjectsApi
        from kubernetes.client.exceptions import ApiException

        name = name or self.gateway
        group, version = "gateway.networking.k8s.io", "v1"
        prefix = provider_name(f"httproute-{namespace}-")
        with self.control_plane.admin_client() as client:
            api = CustomObjectsApi(client)
            try:
                api.delete_collection_namespaced_custom_object(
                    group, version, namespace, "httproutes"
                )
                api.delete_namespaced_custom_object(group, version, namespace, "gateways", name)
            except ApiException as exc:
                if exc.status != 404:
                    raise
        if (namespace, name) in self._gateways:
            self._gateways.remove((namespace, name))
        assert self._processes is not None
        self._processes.wait(
            f"the proxy dropping the routes of {namespace}",
            lambda: (
                not any(
                    str(r.get("name", "")).startswith(prefix) for r in self.api("/api/http/routers")
                )
            ),
            seconds,
        )

    @contextlib.contextmanager
    def gateway_for(self, namespace: str) -> Iterator[None]:
        """``add_gateway`` for the block, ``remove_gateway`` after it."""
        self.add_gateway(namespace)
        try:
            yield
        finally:
            self.remove_gateway(namespace)

    def stop(self) -> None:
        if self._gateways and self._processes is not None:
            from kubernetes.client import CustomObjectsApi

            with (
                contextlib.suppress(Exception),
                self.control_plane.admin_client() as client,
            ):
                for namespace, name in self._gateways:
                    with contextlib.suppress(Exception):
                        CustomObjectsApi(client).delete_namespaced_custom_object(
                            "gateway.networking.k8s.io", "v1", namespace, "gateways", name
                        )
        self._gateways = []
        if self._processes is not None:
            self._processes.stop()
            self._processes = None
        if self._owned_workdir and self.workdir is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)
            self.workdir = None


def provider_name(text: str) -> str:
    """A name as Traefik's Kubernetes providers normalise it (``provider.Normalize``)."""
    fields = "".join(c if c.isalnum() else " " for c in text).split()
    return "-".join(fields)


def gateway_crds() -> list[dict[str, Any]]:
    """The standard-channel CRDs of ``GATEWAY_CRDS``, from the same gateway-api module."""
    standard = gateway_api_dir() / "config" / "crd" / "standard"
    return [yaml.safe_load((standard / name).read_text()) for name in GATEWAY_CRDS]


def gateway_class(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "GatewayClass",
        "metadata": {"name": name},
        "spec": {"controllerName": GATEWAY_CONTROLLER},
    }


# Prometheus ------------------------------------------------------------------------------------


class Prometheus:
    """Prometheus scraping ``targets`` (``host:port``) every ``interval``; its API at ``url``.

    With a ``network``, it runs inside it (the targets are addresses there) and
    ``url`` is its HTTP API forwarded to the root namespace's loopback.
    """

    def __init__(
        self,
        targets: Sequence[str],
        network: PodNetwork | None = None,
        *,
        interval: str = "1s",
        job: str = "traefik",
        binaries: Binaries | None = None,
        workdir: Path | None = None,
    ) -> None:
        self.targets = list(targets)
        self.network = network
        self.interval = interval
        self.job = job
        self._binaries = binaries
        self._owned_workdir = workdir is None
        self.workdir = workdir
        self._processes: _Processes | None = None
        self.url = ""

    def __enter__(self) -> Prometheus:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def start(self) -> Prometheus:
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self) -> None:
        binaries = self._binaries or ensure_dataplane(["prometheus"])
        if self.workdir is None:
            self.workdir = _workdir("bluegreen-prometheus-")
        (self.workdir / "logs").mkdir(parents=True, exist_ok=True)
        self._processes = _Processes(self.workdir / "logs")
        config = self.workdir / "prometheus.yml"
        config.write_text(
            yaml.safe_dump(
                {
                    "global": {
                        "scrape_interval": self.interval,
                        "evaluation_interval": self.interval,
                    },
                    "scrape_configs": [
                        {"job_name": self.job, "static_configs": [{"targets": self.targets}]}
                    ],
                },
                sort_keys=False,
            )
        )
        port = self.network.free_port() if self.network else free_port()
        argv = [
            str(binaries.prometheus),
            f"--config.file={config}",
            f"--storage.tsdb.path={self.workdir / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--log.level=warn",
        ]
        if self.network is not None:
            argv = self.network.command(argv)
        self._processes.spawn("prometheus", argv)
        self.url = f"http://127.0.0.1:{self.network.expose(port) if self.network else port}"
        self._processes.wait("Prometheus", lambda: _http_ok(f"{self.url}/-/ready"), 60)
        # Ready is not scraping yet: its discovery hands targets over at most every 5 s.
        self._processes.wait("Prometheus' first scrape of every target", self._all_up, 60)

    def _all_up(self) -> bool:
        try:
            return self.targets_up()
        except (OSError, ValueError, KeyError):
            return False

    def query(self, promql: str) -> list[dict[str, Any]]:
        """The result of an instant query (``data.result``); raises on an error answer."""
        url = f"{self.url}/api/v1/query?" + urllib.parse.urlencode({"query": promql})
        with _urlopen(url) as answer:
            body = json.load(answer)
        if body.get("status") != "success":
            raise DataPlaneError(f"query {promql!r} failed: {body}")
        return list(body["data"]["result"])

    def targets_up(self) -> bool:
        """Whether every scrape target's last scrape succeeded."""
        with _urlopen(f"{self.url}/api/v1/targets") as answer:
            active = json.load(answer)["data"]["activeTargets"]
        return bool(active) and all(t.get("health") == "up" for t in active)

    def stop(self) -> None:
        if self._processes is not None:
            self._processes.stop()
            self._processes = None
        if self._owned_workdir and self.workdir is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)
            self.workdir = None


# helpers ---------------------------------------------------------------------------------------


def _urlopen(url: str, timeout: float = 5) -> Any:
    import urllib.request

    # Straight to loopback, whatever proxy the environment names.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    return opener.open(url, timeout=timeout)


def _http_ok(url: str) -> bool:
    try:
        with _urlopen(url, timeout=1) as answer:
            return bool(answer.status == 200)
    except OSError:
        return False


def _wait_established(client: ApiClient, name: str, seconds: float = 30) -> None:
    from kubernetes.client import ApiextensionsV1Api

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        crd = ApiextensionsV1Api(client).read_custom_resource_definition(name)
        conditions = (crd.status.conditions if crd.status else None) or []
        if any(c.type == "Established" and c.status == "True" for c in conditions):
            return
        time.sleep(0.1)
    raise DataPlaneError(f"CRD {name} was not Established within {seconds:g}s")


def _create_cluster_object(client: ApiClient, plural: str, body: dict[str, Any]) -> None:
    from kubernetes.client import CustomObjectsApi
    from kubernetes.client.exceptions import ApiException

    group, _, version = str(body["apiVersion"]).rpartition("/")
    try:
        CustomObjectsApi(client).create_cluster_custom_object(group, version, plural, body)
    except ApiException as exc:
        if exc.status != 409:
            raise


def _condition(client: ApiClient, plural: str, namespace: str, name: str, kind: str) -> bool:
    from kubernetes.client import CustomObjectsApi
    from kubernetes.client.exceptions import ApiException

    try:
        obj = CustomObjectsApi(client).get_namespaced_custom_object(
            "gateway.networking.k8s.io", "v1", namespace, plural, name
        )
    except ApiException:
        return False
    conditions = (obj.get("status") or {}).get("conditions") or []
    return any(c.get("type") == kind and c.get("status") == "True" for c in conditions)
