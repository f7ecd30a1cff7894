"""A real Kubernetes control plane on loopback: etcd, kube-apiserver, controller-manager, scheduler.

The binaries are the ones EKS runs, built from Go modules by ``local/kube/build.sh``
(``make kube``) into ``.cache/kube/<version>/``. ``ControlPlane`` starts them
as envtest and kwok do, with what the emulator cannot give:

- TLS everywhere, with a PKI made fresh at each start (``local.kube.certs``);
- ``--authorization-mode=Node,RBAC``, service-account signing keys and the
  ServiceAccount and NodeRestriction admission plugins;
- the controller-manager's deployment, replicaset, job, garbage-collector,
  serviceaccount(-token), namespace, endpoints/endpointslice and
  ttl-after-finished controllers, each with its own service account, and the
  scheduler (leader election off for both);
- a simulated kubelet (``local.kube.kubelet``) as the one Node, so pods run,
  get ready, crash-loop and serve logs by the same conventions as the emulator.

It applies the emulator's seed and the shipped ``deploy/kubernetes/rbac.yaml``
with an admin identity, and writes two kubeconfigs: ``admin.kubeconfig``
(``system:masters``, for kubectl and test set-up) and ``product.kubeconfig``,
whose client certificate makes its holder exactly what EKS makes the Lambda
roles: a member of the group the shipped RoleBinding names, and nothing else.

Every process is started with a parent-death signal and stopped by ``stop()``
(or the context manager), so a test run or Ctrl-C leaves no orphan behind.

``restart_apiserver()`` and ``restart_etcd()`` restart one program in place, as a
real control plane's restart does: the process stopped (SIGTERM, or SIGKILL for a
crash), started again with the same arguments, ports, certificates and data, and
awaited until it serves; the controllers and the kubelet keep running and
reconnect by themselves.
"""

from __future__ import annotations

import base64
import contextlib
import copy
import functools
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from local.kube.certs import Authority, Identity, KeyPair, service_account_keys
from local.kube.gatewayapi import VERSION as GATEWAY_API
from local.kube.gatewayapi import crd_manifests
from local.kube.kubelet import KubeletOptions

if TYPE_CHECKING:
    from kubernetes.client import ApiClient

    from local.kube.kubelet import SimulatedKubelet

ROOT = Path(__file__).resolve().parents[2]
KUBE_DIR = ROOT / "local" / "kube"
RBAC_MANIFEST = ROOT / "deploy" / "kubernetes" / "rbac.yaml"
SEED_DIR = ROOT / "local" / "cluster" / "seed"
PROGRAMS = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler")
CONTROLLERS = (
    "deployment-controller",
    "replicaset-controller",
    "job-controller",
    "garbage-collector-controller",
    "serviceaccount-controller",
    "serviceaccount-token-controller",
    "namespace-controller",
    "endpoints-controller",
    "endpointslice-controller",
    "ttl-after-finished-controller",
    "root-ca-certificate-publisher-controller",
    "pod-garbage-collector-controller",
    # Lifts the not-ready taint the API server puts on a new Node once the kubelet
    # reports Ready, and watches its Lease as on any cluster.
    "node-lifecycle-controller",
)
PRODUCT_USER = "eks-bluegreen-functions"
"""The user name of the product's certificate (EKS names it after the IAM role)."""
SERVICE_RANGE = "10.96.0.0/16"


class ControlPlaneError(Exception):
    """The control plane could not be built or started; the message says why and where to look."""


def kubernetes_version() -> str:
    """The release pinned in ``local/kube/go.mod`` (``v1.37.2``)."""
    for line in (KUBE_DIR / "go.mod").read_text().splitlines():
        words = line.split("//")[0].split()
        if len(words) == 2 and words[0] == "k8s.io/kubernetes":
            return words[1]
    raise ControlPlaneError("local/kube/go.mod does not require k8s.io/kubernetes")


def binaries_dir() -> Path:
    """Where ``make kube`` puts the binaries of the pinned release."""
    configured = os.environ.get("BG_KUBE_BIN_DIR")
    return Path(configured) if configured else ROOT / ".cache" / "kube" / kubernetes_version()


def ensure_binaries(folder: Path | None = None, *, build: bool = True) -> Path:
    """The folder holding the four binaries, building them first when one is missing.

    The build (``local/kube/build.sh``) prints its progress; a cold one takes
    15-30 minutes on 2 cores, later ones nothing.
    """
    target = folder or binaries_dir()
    missing = [name for name in PROGRAMS if not (target / name).is_file()]
    if not missing:
        return target
    if not build:
        raise ControlPlaneError(
            f"{', '.join(missing)} not built in {target}: run `make kube` (a cold build takes "
            "15-30 minutes on 2 cores)"
        )
    if shutil.which("go") is None:
        raise ControlPlaneError(
            "the control plane is not built and there is no `go` on PATH to build it"
        )
    result = subprocess.run(["bash", str(KUBE_DIR / "build.sh"), str(target)], check=False)
    if result.returncode != 0:
        raise ControlPlaneError(f"building the control plane failed (exit {result.returncode})")
    return target


def free_port(host: str = "127.0.0.1") -> int:
    """A port nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def rbac_group(manifest: Path = RBAC_MANIFEST) -> str:
    """The Group the shipped RoleBinding binds the Role to (what EKS access entries map to)."""
    for document in yaml.safe_load_all(manifest.read_text()):
        if isinstance(document, dict) and document.get("kind") == "RoleBinding":
            for subject in document.get("subjects") or []:
                if subject.get("kind") == "Group":
                    return str(subject["name"])
    raise ControlPlaneError(f"{manifest} has no RoleBinding to a Group")


def load_manifests(path: Path) -> list[dict[str, Any]]:
    """Every object of a YAML file, or of the ``*.yaml`` files of a folder in name order."""
    files = sorted(path.glob("*.yaml")) if path.is_dir() else [path]
    objects: list[dict[str, Any]] = []
    for file in files:
        objects.extend(d for d in yaml.safe_load_all(file.read_text()) if isinstance(d, dict))
    return objects


def write_kubeconfig(
    path: Path, server: str, ca: bytes, pair: KeyPair, user: str, context: str
) -> Path:
    """A self-contained kubeconfig (certificates inlined) for one client certificate."""

    def inline(data: bytes) -> str:
        return base64.b64encode(data).decode()

    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "local-kube",
                "cluster": {"server": server, "certificate-authority-data": inline(ca)},
            }
        ],
        "users": [
            {
                "name": user,
                "user": {
                    "client-certificate-data": inline(pair.cert.read_bytes()),
                    "client-key-data": inline(pair.key.read_bytes()),
                },
            }
        ],
        "contexts": [{"name": context, "context": {"cluster": "local-kube", "user": user}}],
        "current-context": context,
    }
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    path.chmod(0o600)
    return path


@dataclass
class _Process:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path
    argv: list[str] = field(default_factory=list)
    """What it was started with (a restart in place starts it again with exactly this)."""

    def tail(self, lines: int = 15) -> str:
        try:
            text = self.log.read_text(errors="replace").splitlines()
        except OSError:
            return ""
        return "\n".join(text[-lines:])


def _terminate(popen: subprocess.Popen[bytes]) -> None:
    """Stop a process with SIGTERM and reap it (``_reap``)."""
    if popen.poll() is None:
        popen.send_signal(signal.SIGTERM)
    _reap(popen)


def _reap(popen: subprocess.Popen[bytes]) -> None:
    """Wait for a signalled process to exit; SIGKILL it if it has not within 5 s."""
    try:
        popen.wait(timeout=5)
    except subprocess.TimeoutExpired:
        popen.kill()
        popen.wait(timeout=5)


def _accepts(host: str, port: int) -> bool:
    """Whether something accepts TCP connections on ``host:port`` now."""
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


@dataclass
class Restart:
    """One in-place restart of a control-plane program (``ControlPlane.restart_apiserver``,
    ``restart_etcd``), as it goes; times are ``time.monotonic()`` readings."""

    program: str
    signalled_at: float
    """When the old process was sent its signal."""
    refusing_at: float = 0.0
    """When its port stopped accepting connections (clients are refused from then on)."""
    exited_at: float | None = None
    """When the old process was gone (a SIGTERM it outlives by 5 s is followed by SIGKILL)."""
    started_at: float | None = None
    """When the new process was started, with the old one's arguments."""
    ready_at: float | None = None
    """When it served again."""
    error: BaseException | None = field(default=None, repr=False)
    _done: threading.Event = field(default_factory=threading.Event, repr=False)

    def wait(self, timeout: float = 120.0) -> Restart:
        """Wait until the program serves again; what went wrong is raised here."""
        if not self._done.wait(timeout):
            raise ControlPlaneError(f"{self.program} did not come back within {timeout:g}s")
        if self.error is not None:
            raise self.error
        return self

    @property
    def done(self) -> bool:
        """Whether it serves again (or failed to)."""
        return self._done.is_set()

    @property
    def down_seconds(self) -> float:
        """From its port refusing connections to the new process serving (after ``wait``)."""
        assert self.ready_at is not None, "wait() first"
        return self.ready_at - self.refusing_at


def _with_parent_death_signal(argv: list[str]) -> list[str]:
    """``argv`` run so that it gets SIGTERM when this process dies, even by SIGKILL."""
    setpriv = shutil.which("setpriv")
    return [setpriv, "--pdeathsig", "TERM", "--", *argv] if setpriv else argv


@dataclass
class ControlPlane:
    """etcd, kube-apiserver, kube-controller-manager, kube-scheduler and a kubelet, on loopback."""

    workdir: Path | None = None
    """Where certificates, kubeconfigs, etcd's data and the logs go (a temporary folder)."""
    seed: bool = True
    """Apply the emulator's seed (namespace wp-platform) and the shipped RBAC at start."""
    kubelet_options: KubeletOptions = field(default_factory=KubeletOptions)
    progress: Callable[[str], None] = field(default=lambda line: print(line, file=sys.stderr))
    host: str = "127.0.0.1"
    port: int = 0
    """The API server's port; 0 picks a free one."""
    audit_users: tuple[str, ...] = (PRODUCT_USER,)
    """Whose requests the API server's audit log records (``audit_log``): what the
    product really asked for, as the authorizer saw it."""

    def __post_init__(self) -> None:
        self._processes: list[_Process] = []
        self._processes_lock = threading.RLock()
        self._restarter: ThreadPoolExecutor | None = None
        self._etcd_url = ""
        self._owned_workdir = self.workdir is None
        self._stopped = threading.Event()
        self.kubelet: SimulatedKubelet | None = None
        self.url = ""
        self.product_group = rbac_group()

    # lifecycle ------------------------------------------------------------------

    def __enter__(self) -> ControlPlane:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def start(self) -> ControlPlane:
        """Start everything and wait until it serves; on failure stop what started, raise."""
        began = time.monotonic()
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        self.started_in = time.monotonic() - began
        self.progress(
            f"control plane {kubernetes_version()} ready at {self.url} in {self.started_in:.1f}s"
        )
        return self

    def stop(self) -> None:
        """Stop the kubelet and every process (SIGTERM, then SIGKILL); safe to call twice."""
        self._stopped.set()
        if self.kubelet is not None:
            self.kubelet.stop()
            self.kubelet = None
        # One at a time, newest first: an API server whose etcd is already gone spends
        # its whole grace period retrying, where in this order it stops in a second.
        with self._processes_lock:
            for process in reversed(self._processes):
                _terminate(process.popen)
            self._processes = []
            restarter, self._restarter = self._restarter, None
        if restarter is not None:
            restarter.shutdown(wait=True)
        if self._owned_workdir and self.workdir is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)
            self.workdir = None

    # restarting in place ------------------------------------------------------------

    def restart_apiserver(
        self, *, kill: bool = False, wait: bool = True, timeout: float = 90.0
    ) -> Restart:
        """Stop kube-apiserver and start it again with the same arguments, port and certificates.

        Nothing else is touched: the controller-manager, the scheduler and the kubelet keep
        running and reconnect by themselves, as they do on a cluster whose API server
        restarts; other clients see refused connections and cut keep-alive connections
        until it serves again. ``kill`` stops it with SIGKILL (a crash: requests
        in flight are cut) instead of SIGTERM (its graceful shutdown: it stops listening at
        once, and is killed if it has not exited 5 s later, as ``stop`` does). With ``wait``
        it returns once ``/readyz`` answers 200 again (``timeout``); without, as soon as its
        port refuses connections, the rest going on in the background until
        ``Restart.wait()``.
        """
        return self._restart("kube-apiserver", self.url, self._apiserver_ready, kill, wait, timeout)

    def restart_etcd(
        self, *, kill: bool = False, wait: bool = True, timeout: float = 90.0
    ) -> Restart:
        """Stop etcd and start it again on the same ports and data directory.

        The cluster's objects and resourceVersions survive (the data directory is kept);
        meanwhile the API server stays up, answering what needs etcd late or with an error,
        and its etcd client reconnects by itself. ``kill`` and ``wait`` as for
        ``restart_apiserver``; ready once etcd's ``/health`` and the API server's
        ``/readyz`` (which checks etcd) answer 200.
        """

        def ready() -> bool:
            return _http_ok(f"{self._etcd_url}/health") and self._apiserver_ready()

        return self._restart("etcd", self._etcd_url, ready, kill, wait, timeout)

    def _restart(
        self,
        name: str,
        url: str,
        ready: Callable[[], bool],
        kill: bool,
        wait: bool,
        timeout: float,
    ) -> Restart:
        with self._processes_lock:
            if self._stopped.is_set():
                raise ControlPlaneError(f"the control plane is stopped: cannot restart {name}")
            old = next((p for p in self._processes if p.name == name), None)
            if old is None or old.popen.poll() is not None:
                raise ControlPlaneError(f"{name} is not running: nothing to restart")
            old.popen.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
        restart = Restart(name, signalled_at=time.monotonic())
        address = urllib.parse.urlsplit(url)
        host, port = address.hostname or self.host, int(address.port or 0)
        deadline = time.monotonic() + 10
        while old.popen.poll() is None and _accepts(host, port):
            if time.monotonic() > deadline:
                raise ControlPlaneError(f"{name} still accepts connections 10 s after its signal")
            time.sleep(0.01)
        restart.refusing_at = time.monotonic()
        # The parent-death signal follows the thread that spawned a process, not the
        # process: the new one is spawned from a thread that lives as long as the plane.
        with self._processes_lock:
            if self._restarter is None:
                self._restarter = ThreadPoolExecutor(1, thread_name_prefix="control-plane-restart")
            self._restarter.submit(self._replace, old, restart, ready, timeout)
        return restart.wait(timeout + 15) if wait else restart

    def _replace(
        self, old: _Process, restart: Restart, ready: Callable[[], bool], timeout: float
    ) -> None:
        """The rest of a restart: the old process reaped, the new one started and serving."""
        try:
            _reap(old.popen)
            restart.exited_at = time.monotonic()
            with self._processes_lock:
                if self._stopped.is_set() or old not in self._processes:
                    raise ControlPlaneError(f"the control plane stopped while {old.name} restarted")
                new = self._spawn(old.name, old.argv, append=True)
                self._processes[self._processes.index(old)] = new
            restart.started_at = time.monotonic()
            self._wait(
                f"{old.name} after its restart",
                lambda: self._stopped.is_set() or ready(),
                timeout,
            )
            if self._stopped.is_set():
                raise ControlPlaneError(f"the control plane stopped while {old.name} restarted")
            restart.ready_at = time.monotonic()
        except BaseException as exc:  # handed to whoever waits for the restart
            restart.error = exc
        finally:
            restart._done.set()

    # what it hands out ------------------------------------------------------------

    @property
    def admin_kubeconfig(self) -> Path:
        """``system:masters``: for kubectl and test set-up, never for the product."""
        return self._dir / "admin.kubeconfig"

    @property
    def product_kubeconfig(self) -> Path:
        """The product's identity: a member of the shipped RoleBinding's group, nothing more."""
        return self._dir / "product.kubeconfig"

    @property
    def audit_log(self) -> Path:
        """JSON lines, one per request of ``audit_users`` (audit level Metadata)."""
        return self._dir / "logs" / "audit.jsonl"

    @property
    def product_identity(self) -> Identity:
        return Identity(PRODUCT_USER, (self.product_group,))

    def admin_client(self) -> ApiClient:
        """A fresh ``ApiClient`` with the admin identity."""
        return api_client_from(self.admin_kubeconfig)

    def kubeconfig_for(self, identity: Identity, name: str) -> Path:
        """A kubeconfig for any other identity (a test that needs one more user)."""
        pair = self._ca.client(f"user-{name}", identity)
        return write_kubeconfig(
            self._dir / f"{name}.kubeconfig", self.url, self._ca.pem, pair, identity.user, name
        )

    # starting ---------------------------------------------------------------------

    @property
    def _dir(self) -> Path:
        assert self.workdir is not None, "the control plane is not started"
        return self.workdir

    def _start(self) -> None:
        from local.kube.kubelet import SimulatedKubelet

        bin_dir = ensure_binaries()
        if self.workdir is None:
            self.workdir = Path(tempfile.mkdtemp(prefix="bluegreen-kube-"))
        work = self._dir
        (work / "logs").mkdir(parents=True, exist_ok=True)
        pki = work / "pki"
        self._ca = Authority(pki)
        port = self.port or free_port(self.host)
        self.url = f"https://{self.host}:{port}"
        hosts = (
            self.host,
            "localhost",
            "kubernetes",
            "kubernetes.default",
            "kubernetes.default.svc",
            "kubernetes.default.svc.cluster.local",
            "10.96.0.1",
        )
        serving = self._ca.serving("apiserver", "kube-apiserver", hosts)
        sa = service_account_keys(pki)
        kubelet_client = self._ca.client(
            "apiserver-kubelet-client",
            Identity("kube-apiserver-kubelet-client", ("system:masters",)),
        )
        admin = self._ca.client("admin", Identity("kubernetes-admin", ("system:masters",)))
        write_kubeconfig(self.admin_kubeconfig, self.url, self._ca.pem, admin, "admin", "admin")
        product = self._ca.client("product", self.product_identity)
        write_kubeconfig(
            self.product_kubeconfig, self.url, self._ca.pem, product, PRODUCT_USER, "product"
        )

        self.progress("control plane: starting etcd")
        etcd_port, peer_port = free_port(self.host), free_port(self.host)
        etcd_url = f"http://{self.host}:{etcd_port}"
        self._etcd_url = etcd_url
        peer_url = f"http://{self.host}:{peer_port}"
        self._spawn(
            "etcd",
            [
                str(bin_dir / "etcd"),
                "--name=local",
                f"--data-dir={work / 'etcd'}",
                f"--listen-client-urls={etcd_url}",
                f"--advertise-client-urls={etcd_url}",
                f"--listen-peer-urls={peer_url}",
                f"--initial-advertise-peer-urls={peer_url}",
                f"--initial-cluster=local={peer_url}",
                # Throw-away data: durability costs seconds a test run never needs.
                "--unsafe-no-fsync",
                "--log-level=warn",
            ],
        )
        self._wait("etcd", lambda: _http_ok(f"{etcd_url}/health"), 30)

        policy = work / "audit-policy.yaml"
        policy.write_text(
            yaml.safe_dump(
                {
                    "apiVersion": "audit.k8s.io/v1",
                    "kind": "Policy",
                    "omitStages": ["RequestReceived"],
                    "rules": [
                        {"level": "Metadata", "users": list(self.audit_users)},
                        {"level": "None"},
                    ],
                }
            )
        )
        self.progress("control plane: starting kube-apiserver")
        self._spawn(
            "kube-apiserver",
            [
                str(bin_dir / "kube-apiserver"),
                f"--etcd-servers={etcd_url}",
                f"--bind-address={self.host}",
                f"--advertise-address={self.host}",
                # The reconciler refuses a loopback address for the kubernetes Service's
                # endpoints; nothing here reaches the API server through that Service.
                "--endpoint-reconciler-type=none",
                f"--secure-port={port}",
                f"--tls-cert-file={serving.cert}",
                f"--tls-private-key-file={serving.key}",
                f"--client-ca-file={self._ca.pair.cert}",
                "--authorization-mode=Node,RBAC",
                "--enable-admission-plugins=NamespaceLifecycle,LimitRanger,ServiceAccount,"
                "DefaultTolerationSeconds,NodeRestriction,ResourceQuota",
                "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
                f"--service-account-key-file={sa.cert}",
                f"--service-account-signing-key-file={sa.key}",
                f"--service-cluster-ip-range={SERVICE_RANGE}",
                f"--kubelet-client-certificate={kubelet_client.cert}",
                f"--kubelet-client-key={kubelet_client.key}",
                f"--kubelet-certificate-authority={self._ca.pair.cert}",
                "--kubelet-preferred-address-types=InternalIP",
                "--allow-privileged=true",
                f"--cert-dir={work / 'apiserver'}",
                f"--audit-policy-file={policy}",
                f"--audit-log-path={self.audit_log}",
                "--audit-log-mode=blocking",
                "--profiling=false",
                "--v=1",
            ],
        )
        self._wait("kube-apiserver", self._apiserver_ready, 90)

        for name, identity, extra in (
            (
                "kube-controller-manager",
                Identity("system:kube-controller-manager"),
                [
                    f"--controllers={','.join(CONTROLLERS)}",
                    f"--service-account-private-key-file={sa.key}",
                    f"--root-ca-file={self._ca.pair.cert}",
                    "--use-service-account-credentials=true",
                ],
            ),
            ("kube-scheduler", Identity("system:kube-scheduler"), []),
        ):
            self.progress(f"control plane: starting {name}")
            pair = self._ca.client(name, identity)
            config = write_kubeconfig(
                work / f"{name}.kubeconfig", self.url, self._ca.pem, pair, identity.user, name
            )
            self._spawn(
                name,
                [
                    str(bin_dir / name),
                    f"--kubeconfig={config}",
                    "--leader-elect=false",
                    "--secure-port=0",
                    "--v=1",
                    *extra,
                ],
            )

        self.progress("control plane: starting the simulated kubelet")
        node = "kubelet-0"
        node_pair = self._ca.client("kubelet", Identity(f"system:node:{node}", ("system:nodes",)))
        node_config = write_kubeconfig(
            work / "kubelet.kubeconfig", self.url, self._ca.pem, node_pair, node, "kubelet"
        )
        kubelet_serving = self._ca.serving("kubelet-serving", node, (self.host, node))
        self.kubelet = SimulatedKubelet(
            node,
            api_client_from(node_config),
            serving=kubelet_serving,
            client_ca=self._ca.pair.cert,
            host=self.host,
            version=kubernetes_version(),
            options=self.kubelet_options,
        )
        self.kubelet.start()

        with self.admin_client() as client:
            self._wait("the default service account", lambda: _has_default_sa(client), 60)
            self.progress(f"control plane: installing the Gateway API CRDs ({GATEWAY_API})")
            crds = crd_manifests()
            apply_objects(client, crds, namespace=None)
            for crd in crds:
                name = str(crd["metadata"]["name"])
                self._wait(f"CRD {name}", functools.partial(_established, client, name), 30)
            if self.seed:
                self.progress("control plane: applying the seed and deploy/kubernetes/rbac.yaml")
                self.seed_namespace("wp-platform", client=client)

    def _spawn(self, name: str, argv: list[str], *, append: bool = False) -> _Process:
        if self._stopped.is_set() and self._processes:
            raise ControlPlaneError("stopped")
        log = self._dir / "logs" / f"{name}.log"
        with log.open("ab" if append else "wb") as out:
            if append:
                out.write(f"--- {name} restarted in place ---\n".encode())
                out.flush()
            popen = subprocess.Popen(
                _with_parent_death_signal(argv),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        process = _Process(name, popen, log, list(argv))
        if not append:
            with self._processes_lock:
                self._processes.append(process)
        return process

    def _wait(self, what: str, ready: Callable[[], bool], seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            with self._processes_lock:
                processes = list(self._processes)
            for process in processes:
                if process.popen.poll() is not None:
                    raise ControlPlaneError(
                        f"{process.name} exited with {process.popen.returncode} while waiting "
                        f"for {what}; its log ({process.log}) ends:\n{process.tail()}"
                    )
            if ready():
                return
            time.sleep(0.1)
        raise ControlPlaneError(f"{what} was not ready within {seconds:g}s")

    def _ssl_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=str(self._ca.pair.cert))
        admin = self._dir / "pki"
        context.load_cert_chain(str(admin / "admin.crt"), str(admin / "admin.key"))
        return context

    def _apiserver_ready(self) -> bool:
        try:
            with urllib.request.urlopen(
                f"{self.url}/readyz", context=self._ssl_context(), timeout=2
            ) as answer:
                return bool(answer.status == 200)
        except (urllib.error.URLError, OSError, ssl.SSLError):
            return False

    # the application's objects ------------------------------------------------------

    def seed_namespace(
        self,
        namespace: str,
        *,
        client: ApiClient | None = None,
        seed: Path = SEED_DIR,
        progress_deadline_seconds: int | None = None,
        wait: bool = True,
    ) -> None:
        """Create ``namespace`` with the seed's objects and the shipped Role and RoleBinding.

        The seed names namespace ``wp-platform``; its objects (and the RBAC
        manifest's) are put into ``namespace`` instead, so every test can have a
        namespace of its own. ``progress_deadline_seconds`` shortens the
        Deployments' deadline (a real clock cannot be sped up); ``wait`` waits
        until both Deployments are rolled out.
        """
        owned = client is None
        api = client or self.admin_client()
        try:
            objects = [o for o in load_manifests(seed) if o.get("kind") != "Namespace"]
            objects += load_manifests(RBAC_MANIFEST)
            apply_objects(api, [namespace_object(namespace)], namespace=None)
            apply_objects(api, _with_deadline(objects, progress_deadline_seconds), namespace)
            if wait:
                self._wait(
                    f"the Deployments of namespace {namespace}",
                    lambda: _rolled_out(api, namespace),
                    60,
                )
        finally:
            if owned:
                api.close()


def _with_deadline(objects: list[dict[str, Any]], seconds: int | None) -> list[dict[str, Any]]:
    if seconds is None:
        return objects
    changed = []
    for obj in objects:
        if obj.get("kind") == "Deployment":
            obj = copy.deepcopy(obj)
            obj["spec"]["progressDeadlineSeconds"] = seconds
        changed.append(obj)
    return changed


def namespace_object(name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}


def api_client_from(kubeconfig: Path) -> ApiClient:
    """An ``ApiClient`` for a kubeconfig file."""
    from kubernetes.client import ApiClient, Configuration
    from kubernetes.config import kube_config

    configuration = Configuration()
    kube_config.load_kube_config(
        config_file=str(kubeconfig), client_configuration=configuration, persist_config=False
    )
    return ApiClient(configuration=configuration)


def apply_objects(client: ApiClient, objects: list[dict[str, Any]], namespace: str | None) -> None:
    """Create each object (in ``namespace`` when it is namespaced); replace it if it exists."""
    from kubernetes import utils
    from kubernetes.client import CustomObjectsApi
    from kubernetes.client.exceptions import ApiException

    for original in objects:
        obj = copy.deepcopy(original)
        if namespace is not None:
            obj.setdefault("metadata", {})["namespace"] = namespace
        group, _, version = str(obj.get("apiVersion", "")).rpartition("/")
        if group in CUSTOM_GROUPS:
            # The client's create_from_dict knows only the built-in kinds.
            try:
                CustomObjectsApi(client).create_namespaced_custom_object(
                    group, version, obj["metadata"]["namespace"], _plural(obj["kind"]), obj
                )
            except ApiException as exc:
                if exc.status != 409:
                    raise
            continue
        try:
            utils.create_from_dict(client, obj, namespace=namespace)
        except utils.FailToCreateError as failure:
            conflicts = [e for e in failure.api_exceptions if getattr(e, "status", 0) == 409]
            if len(conflicts) != len(failure.api_exceptions):
                raise
        except ApiException as exc:
            if exc.status != 409:
                raise


CUSTOM_GROUPS = frozenset({"gateway.networking.k8s.io"})
"""Groups of the seed's custom resources (served once their CRDs are installed)."""


def _plural(kind: str) -> str:
    return kind.lower() + "s"


def _established(client: ApiClient, name: str) -> bool:
    from kubernetes.client import ApiextensionsV1Api

    crd = ApiextensionsV1Api(client).read_custom_resource_definition(name)
    conditions = (crd.status.conditions if crd.status else None) or []
    return any(c.type == "Established" and c.status == "True" for c in conditions)


def _has_default_sa(client: ApiClient) -> bool:
    from kubernetes.client import CoreV1Api
    from kubernetes.client.exceptions import ApiException

    try:
        CoreV1Api(client).read_namespaced_service_account("default", "default")
    except ApiException:
        return False
    return True


def _rolled_out(client: ApiClient, namespace: str) -> bool:
    from kubernetes.client import AppsV1Api

    items = AppsV1Api(client).list_namespaced_deployment(namespace).items
    if not items:
        return False
    for deployment in items:
        status, spec = deployment.status, deployment.spec
        wanted = spec.replicas if spec.replicas is not None else 1
        if (
            (status.observed_generation or 0) < (deployment.metadata.generation or 0)
            or (status.updated_replicas or 0) < wanted
            or (status.available_replicas or 0) < wanted
            or (status.replicas or 0) > wanted
        ):
            return False
    return True


def _http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as answer:
            return bool(answer.status == 200)
    except (urllib.error.URLError, OSError):
        return False


@contextlib.contextmanager
def running(**options: Any) -> Iterator[ControlPlane]:
    """``with running() as plane:`` a started control plane, stopped on exit."""
    with ControlPlane(**options) as plane:
        yield plane
