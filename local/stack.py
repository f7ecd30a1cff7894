"""The local stack: the whole product on one machine, no AWS account, no Docker.

``python -m local.stack`` (``make local``) runs, in this one process:

- moto's server (AWS: DynamoDB ledger and idempotency tables from
  ``template.yaml``, the ECR repository, the real ``deploy.asl.json`` on moto's
  Step Functions interpreter with its Lambda tasks dispatched in-process);
- the cluster emulator with the default seed, on the real time but with its
  controllers' work (rollouts, hook Jobs, deadlines) ``--speed`` times shorter
  (Wait states are shortened by the same factor), so a whole deploy takes seconds;
- a local API Gateway endpoint in front of the real ``services_api`` handler,
  plus the local-only ``POST /_local/events`` path that delivers an EventBridge
  event to ``ecr_push`` when the template's rule matches it (``bluegreen push``);
- the traffic simulator (``local.traffic``): a steady request rate through the
  stack's router (``--router selector|alb|gateway``), published as ALB metrics per
  target group into moto's CloudWatch, so a progressive promotion's analysis has
  numbers to judge; ``POST /_local/traffic`` marks an image that answers 5 % 5xx or
  is slow (``bluegreen push --errors|--slow``) and reports what the users saw;
- on the real control plane under ``gateway`` (as root), the real data plane: Traefik
  carrying real requests to the pods, and a real Prometheus scraping it every second,
  which the canaries' analysis then reads (``BG_METRIC_PROVIDER=prometheus``), not the
  simulator's CloudWatch figures.

Every handler runs here with the ``BG_*`` environment a deployed function gets
(values from the template's parameters' defaults) and ``AWS_ENDPOINT_URL``
pointing at moto. ``.local-stack/stack.json`` (``--state-dir``) records the pid,
URLs and that environment for ``bluegreen``, ``make push`` and ``make invoke``; a
second start on the same state folder while one runs refuses with the running
one's endpoints (a second stack needs its own ``--state-dir`` and ports). Ctrl-C
stops it all.

Tests start the same stack in-process on free ports: ``with LocalStack(
StackOptions.ephemeral(tmp_path)) as stack: ...``.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import logging
import math
import os
import signal
import socket
import sys
import threading
import time
import urllib.error
import urllib.request
import warnings
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
STATE_DIR = ROOT / ".local-stack"
LOCAL_TARGET_GROUPS = {
    "blue": "targetgroup/k8s-wpplatfo-blueserv-5f2c1e7a90/6d0ecf831eec9f09",
    "green": "targetgroup/k8s-wpplatfo-greenser-0b7d3c4e21/9a4b2c1d8e7f6a5b",
}
"""The TargetGroup dimension of each colour's Service, as the Load Balancer Controller
would name them; the simulator publishes under them, the analysis reads them."""
LOCAL_LOAD_BALANCER = "app/k8s-wpplatform-web-3c1e9f/50dc6c495c0c9188"
PROMETHEUS_SCRAPE_SECONDS = 1.0
"""How often the stack's Prometheus scrapes the proxy (kube, gateway)."""
PROMETHEUS_SCRAPES_PER_WINDOW = 6
"""The fewest scrapes an analysis window spans when Prometheus judges the canary:
``increase()`` reads the samples inside the window and extrapolates to its ends, so with
a handful of them the count stays near what the proxy counted."""
LAYER = ROOT / "layers" / "bluegreen"
"""Where the handlers' shared ``bluegreen`` package lives (a Lambda layer when deployed)."""


def make_project_importable() -> None:
    """Put the ``bluegreen`` layer and the project root on ``sys.path`` when missing.

    ``make`` sets ``PYTHONPATH`` for these; ``python -m local.stack`` (or ``local.invoke``,
    ``local.demo``) started by hand must find the handlers' packages all the same.
    """
    entries = {os.path.realpath(entry or os.curdir) for entry in sys.path}
    for folder in (ROOT, LAYER):
        if os.path.realpath(folder) not in entries:
            sys.path.insert(0, str(folder))


make_project_importable()
STATE_FILE = "stack.json"
ACCOUNT = "123456789012"
"""moto's default account: what ARNs and the ECR registry host name carry."""


FLEET_APP = "payments"
"""The local stack's second application: namespace and repository of the same name."""
FLEET_OPERATOR = {
    "access_key_id": "AKIALOCALALICE",
    "secret_access_key": "alice-local-secret",
    "user_arn": f"arn:aws:iam::{ACCOUNT}:user/alice",
}
"""alice: operator of ``FLEET_APP`` only (the README's per-application operator policy)."""


class StackError(Exception):
    """The stack cannot start as asked (port taken, already running); said in one line."""


class StackAlreadyRunning(StackError):
    """Another local stack (this project, same state folder) is alive."""


# -- the state file -------------------------------------------------------------


@dataclass(frozen=True)
class StackState:
    """What a running stack publishes in ``.local-stack/stack.json``."""

    pid: int
    started_at: str
    api_url: str
    moto_url: str
    cluster_url: str
    region: str
    account: str
    repository: str
    registry: str
    namespace: str
    state_machine_arn: str
    kubeconfig: str
    environment: dict[str, str] = field(default_factory=dict)
    cluster_kind: str = "emulator"
    """``emulator`` or ``kube`` (the real control plane)."""
    faults_url: str = ""
    """Where ``POST /_emulator/faults/images`` marks images: the emulator, or the kubelet."""
    access_key_id: str = ""
    """The access key the API endpoint accepts signatures of (SigV4, ``execute-api``)."""
    secret_access_key: str = ""
    caller_arn: str = ""
    """The IAM identity the handlers see for that key: who deployments are recorded as."""
    fleet_app: str = ""
    """The second application of the stack's fleet (its own namespace, repository, ledger
    and lock; the selector router), registered at start; empty when the seed is custom."""
    fleet_operator: dict[str, str] = field(default_factory=dict)
    """An identity with the per-application operator policy of ``fleet_app`` only:
    ``access_key_id``, ``secret_access_key``, ``user_arn``."""
    data_plane: dict[str, str] = field(default_factory=dict)
    """On the real control plane with a weighted router, the real data plane: under
    ``gateway`` the pod network (``pod_network``: the namespace's path, ``enter``: the
    command prefix that enters it), the proxy (``proxy_address`` inside it,
    ``proxy_url`` forwarded to loopback, ``proxy_host``, ``try``: a curl line that
    works) and ``prometheus_url``; under ``alb`` the controller's ``load_balancer``
    in moto. ``note`` says why there is none when it could not be made."""

    def to_json(self) -> str:
        """The state file's text."""
        return json.dumps(asdict(self), indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, text: str) -> StackState:
        """Parse a state file; raises ``ValueError`` when it is not one."""
        data = json.loads(text)
        if not isinstance(data, dict):
            raise ValueError("not a JSON object")
        known = {name for name in cls.__dataclass_fields__}
        try:
            return cls(**{k: v for k, v in data.items() if k in known})
        except TypeError as exc:
            raise ValueError(str(exc)) from None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def running_stack(state_dir: Path = STATE_DIR) -> StackState | None:
    """The stack recorded in ``state_dir`` if its process is alive, else None."""
    return running_stack_at(state_dir / STATE_FILE)


def running_stack_at(state_file: Path) -> StackState | None:
    """The stack a state file names if its process is alive, else None."""
    try:
        state = StackState.from_json(state_file.read_text())
    except (OSError, ValueError):
        return None
    return state if _alive(state.pid) else None


# -- options ----------------------------------------------------------------------


@dataclass(frozen=True)
class StackOptions:
    """Ports, speed and where the state goes. Port 0 picks a free port."""

    host: str = "127.0.0.1"
    api_port: int = 3000
    moto_port: int = 5000
    cluster_port: int = 8001
    speed: float = 60.0
    """How much faster than real time the cluster's clock and the flow's waits run."""
    cluster: str = "emulator"
    """``emulator`` (instant start, faults, a scaled clock) or ``kube`` (the real control
    plane built by ``make kube``, RBAC on, real time unless ``speed`` says otherwise)."""
    state_dir: Path = STATE_DIR
    write_state: bool = True
    access_log: bool = True
    seed: Path | None = None
    """Kubernetes manifests to seed the emulator with; None: its default seed."""
    log_level: str = "WARNING"
    """The handlers' Powertools log level (their JSON logs go to standard output)."""
    overrides: Mapping[str, str] = field(default_factory=dict)
    """Extra environment for the handlers (``BG_*`` settings), after the template's."""
    access_key_id: str = "testing"
    """The one access key the API endpoint accepts (moto's default key: one pair signs
    for the API and the AWS CLI alike)."""
    secret_access_key: str = "testing"  # noqa: S105 - a local stack's well-known key
    caller_name: str = ""
    """The IAM user the key belongs to; empty: the login name of who started the stack."""
    router: str = "selector"
    """The stack's ``TrafficRouter``: ``selector``, ``alb`` or ``gateway``."""
    traffic_rate: float = 400.0
    """Simulated requests per second through the router (0: no simulator)."""

    @property
    def caller_arn(self) -> str:
        """``arn:aws:iam::<account>:user/<caller_name>``: the identity API calls carry."""
        return f"arn:aws:iam::{ACCOUNT}:user/{self.caller_name or _login_name()}"

    @classmethod
    def ephemeral(cls, state_dir: Path, **changes: Any) -> StackOptions:
        """Free ports, a private state folder, no access log, no simulated traffic: for tests."""
        base = cls(
            api_port=0,
            moto_port=0,
            cluster_port=0,
            state_dir=state_dir,
            access_log=False,
            traffic_rate=0.0,
        )
        return replace(base, **changes)


def template_environment(template: Mapping[str, Any], function: str) -> dict[str, str]:
    """The environment the template gives ``function`` (its ``CodeUri`` folder name).

    Globals first, then the function's own variables; ``!Ref`` to a parameter
    takes the parameter's default; anything only AWS can resolve (ARNs, table
    names of created resources) is left out for the stack to fill in.
    """
    parameters = template.get("Parameters") or {}

    def resolve(value: Any) -> str | None:
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, str | int | float):
            return str(value)
        if isinstance(value, dict) and set(value) == {"Ref"}:
            parameter = parameters.get(value["Ref"])
            if isinstance(parameter, dict) and "Default" in parameter:
                default = parameter["Default"]
                if isinstance(default, list):
                    return ",".join(str(item) for item in default)
                return str(default)
        return None

    variables: dict[str, Any] = {}
    globals_ = ((template.get("Globals") or {}).get("Function") or {}).get("Environment") or {}
    variables.update(globals_.get("Variables") or {})
    for resource in (template.get("Resources") or {}).values():
        if not isinstance(resource, dict) or resource.get("Type") != "AWS::Serverless::Function":
            continue
        properties = resource.get("Properties") or {}
        if str(properties.get("CodeUri", "")).rstrip("/").rsplit("/", 1)[-1] != function:
            continue
        variables.update((properties.get("Environment") or {}).get("Variables") or {})
    resolved = {name: resolve(value) for name, value in variables.items()}
    return {name: value for name, value in resolved.items() if value is not None}


def event_rule_patterns(template: Mapping[str, Any], function: str) -> list[dict[str, Any]]:
    """The EventBridge patterns that deliver to ``function``, parameters resolved."""
    parameters = template.get("Parameters") or {}

    def resolve(value: Any) -> Any:
        if isinstance(value, dict):
            if set(value) == {"Ref"} and isinstance(parameters.get(value["Ref"]), dict):
                return parameters[value["Ref"]].get("Default")
            return {k: resolve(v) for k, v in value.items()}
        if isinstance(value, list):
            return [resolve(item) for item in value]
        return value

    patterns = []
    for resource in (template.get("Resources") or {}).values():
        if not isinstance(resource, dict) or resource.get("Type") != "AWS::Serverless::Function":
            continue
        properties = resource.get("Properties") or {}
        if str(properties.get("CodeUri", "")).rstrip("/").rsplit("/", 1)[-1] != function:
            continue
        for event in (properties.get("Events") or {}).values():
            if isinstance(event, dict) and event.get("Type") in (
                "EventBridgeRule",
                "CloudWatchEvent",
            ):
                pattern = (event.get("Properties") or {}).get("Pattern")
                if isinstance(pattern, dict):
                    patterns.append(resolve(pattern))
    return patterns


def pattern_matches(pattern: Mapping[str, Any], event: Mapping[str, Any]) -> bool:
    """Whether EventBridge delivers ``event`` by ``pattern`` (every pattern form: values,
    nesting, ``prefix`` and the other content filters), as moto's EventBridge matches it."""
    from moto.events.models import EventPattern

    # matches_event reads any JSON object; its annotation names EventBridge's PutEvents shape.
    return EventPattern.load(json.dumps(pattern)).matches_event(dict(event))  # type: ignore[arg-type]


# -- the stack ----------------------------------------------------------------------


class LocalStack:
    """moto + the cluster emulator + the API endpoint, started and stopped together."""

    def __init__(self, options: StackOptions | None = None) -> None:
        self.options = options or StackOptions()
        self.state: StackState | None = None
        self._exits = contextlib.ExitStack()
        self._saved_environ: dict[str, str | None] = {}
        self._handler_locks: dict[str, threading.Lock] = {}
        self._template: dict[str, Any] = {}
        self.cluster: Any = None
        self.control_plane: Any = None
        self.api: Any = None
        self.moto: Any = None
        self.traffic: Any = None
        self.pod_network: Any = None
        """The ``PodNetwork`` pods are served in (kube, gateway, as root), else None."""
        self.proxy: Any = None
        """The ``GatewayProxy`` (Traefik) programming the seed's HTTPRoute, else None."""
        self.prometheus: Any = None
        self.load_balancer_controller: Any = None
        self.load_balancers: Any = None
        """The product's own ELBv2 reader (``Elbv2LoadBalancers``) over the stack's moto
        (kube, alb), else None: how the simulator, the demo and the tests see what the
        load balancer holds."""
        self._load_balancers_lock = threading.Lock()
        self._ingress = ("", "")
        """The namespace and name of the Ingress the controller reconciles (kube, alb)."""
        self.data_plane: dict[str, str] = {}

    # lifecycle --------------------------------------------------------------

    def __enter__(self) -> LocalStack:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def start(self) -> LocalStack:
        """Start everything; on any failure, stop what was started and raise."""
        options = self.options
        running = running_stack(options.state_dir)
        if running is not None and _answers(running.api_url):
            raise StackAlreadyRunning(
                f"a local stack is already running (pid {running.pid}): API {running.api_url}, "
                f"moto {running.moto_url}, cluster {running.cluster_url}. Stop it with Ctrl-C "
                f"in its terminal (or kill {running.pid}) before starting another."
            )
        for name, port in (
            ("--api-port", options.api_port),
            ("--moto-port", options.moto_port),
            ("--cluster-port", options.cluster_port),
        ):
            _check_port_free(options.host, port, name)
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self) -> None:
        from local.aws import load_template

        self._template = load_template()
        moto_url = self._start_moto()
        cluster_url = self._start_cluster()
        environment = self._environment(moto_url, cluster_url)
        if self.control_plane is not None:
            self._start_data_plane(environment)
        elif self.options.router == "alb":
            self._start_simulated_load_balancer(environment, cluster_url)
        if self.control_plane is not None:
            # The product reaches the real API server as EKS access entries make it: a
            # member of the shipped RoleBinding's group, with the Role's rights only.
            environment.pop("BG_KUBE_API_URL")
            environment["KUBECONFIG"] = str(self.control_plane.product_kubeconfig)
        self._apply_environment(environment)
        machine_arn = self._create_aws_resources(environment)
        environment["BG_STATE_MACHINE_ARN"] = machine_arn
        self._apply_environment(environment)
        fleet_app = self._register_fleet_app(environment)
        self._exits.callback(_fresh_handler_modules())
        _cold_start()
        api_url = self._start_api(environment)
        self._start_traffic(environment)
        kubeconfig = self._write_kubeconfig(cluster_url)
        self.state = StackState(
            pid=os.getpid(),
            started_at=datetime.now(UTC).isoformat(timespec="seconds"),
            api_url=api_url,
            moto_url=moto_url,
            cluster_url=cluster_url,
            region=environment["AWS_REGION"],
            account=ACCOUNT,
            repository=environment["BG_REPOSITORY_NAME"],
            registry=environment["BG_REGISTRY"],
            namespace=environment["BG_NAMESPACE"],
            state_machine_arn=machine_arn,
            kubeconfig=str(kubeconfig) if kubeconfig else "",
            environment=environment,
            cluster_kind=self.options.cluster,
            faults_url=self._faults_url(cluster_url),
            access_key_id=self.options.access_key_id,
            secret_access_key=self.options.secret_access_key,
            caller_arn=self.options.caller_arn,
            fleet_app=fleet_app,
            fleet_operator=dict(FLEET_OPERATOR) if fleet_app else {},
            data_plane=dict(self.data_plane),
        )
        if self.options.write_state:
            self.options.state_dir.mkdir(parents=True, exist_ok=True)
            path = self.options.state_dir / STATE_FILE
            path.write_text(self.state.to_json())
            self._exits.callback(_remove_state, path, os.getpid())

    def stop(self) -> None:
        """Stop everything started, restore the process environment; safe to call twice."""
        try:
            self._exits.close()
        finally:
            self._exits = contextlib.ExitStack()
            for name, value in self._saved_environ.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value
            self._saved_environ = {}
            _cold_start()

    # pieces ---------------------------------------------------------------------

    def _start_moto(self) -> str:
        from moto.core.config import default_user_config
        from moto.server import ThreadedMotoServer

        # werkzeug logs every request moto serves; the API's access log is the useful one.
        # moto's interpreter logs every expected task failure (a rollback is one) at ERROR
        # with a long dump; the flow's own Error/Cause says it better.
        quieter = {"werkzeug": logging.ERROR, "moto.stepfunctions.parser": logging.CRITICAL}
        for name, level in quieter.items():
            quiet = logging.getLogger(name)
            self._exits.callback(quiet.setLevel, quiet.level)
            quiet.setLevel(level)

        # moto's GetMetricData computes no percentile: the analysis reads a p99.
        from local.cloudwatch import percentiles_in_moto

        self._exits.enter_context(percentiles_in_moto())
        from local.dynamodb import atomic_dynamodb_requests

        atomic_dynamodb_requests()
        server = ThreadedMotoServer(
            ip_address=self.options.host, port=self.options.moto_port, verbose=False
        )
        server.start()
        self.moto = server
        self._exits.callback(server.stop)
        previous = default_user_config.get("stepfunctions", {}).get("execute_state_machine", False)
        default_user_config["stepfunctions"] = {"execute_state_machine": True}

        def restore() -> None:
            default_user_config["stepfunctions"] = {"execute_state_machine": previous}

        self._exits.callback(restore)
        host, port = server.get_host_and_port()
        url = f"http://{host}:{port}"
        # moto keeps its backends in the process: a second stack started in the same
        # process (tests) would inherit the first one's ledger, verdicts and executions.
        reset = urllib.request.Request(f"{url}/moto-api/reset", data=b"", method="POST")
        urllib.request.urlopen(reset, timeout=30).close()
        return url

    def _start_cluster(self) -> str:
        if self.options.cluster == "kube":
            return self._start_control_plane()
        from local.cluster import Clock, ClusterEmulator

        kwargs: dict[str, Any] = {
            "clock": Clock.scaled(self.options.speed),
            "host": self.options.host,
            "port": self.options.cluster_port,
        }
        if self.options.seed is not None:
            kwargs["seed"] = self.options.seed
        emulator = ClusterEmulator(**kwargs)
        emulator.start()
        self.cluster = emulator
        self._exits.callback(emulator.stop)
        return str(emulator.url).rstrip("/")

    def _start_control_plane(self) -> str:
        from local.kube import ControlPlane, KubeletOptions

        if self.options.seed is not None:
            raise StackError("--seed applies to the emulator; the real control plane has its own")
        plane = ControlPlane(
            workdir=self.options.state_dir / "kube" if self.options.write_state else None,
            # Under gateway the seed waits for the pod network: pods get their addresses,
            # and are served on them, only when started after it.
            seed=self.options.router != "gateway",
            kubelet_options=KubeletOptions(speed=self.options.speed),
            progress=_log,
            host=self.options.host,
            port=self.options.cluster_port,
        )
        if plane.workdir is not None:
            import shutil

            shutil.rmtree(plane.workdir, ignore_errors=True)
            plane.workdir.mkdir(parents=True)
        plane.start()
        self.control_plane = plane
        self._exits.callback(plane.stop)
        return str(plane.url)

    def _start_data_plane(self, environment: dict[str, str]) -> None:
        """The real data plane the weighted router's object is programmed into."""
        if self.options.router == "gateway":
            self._start_gateway(environment["BG_NAMESPACE"])
            if self.prometheus is not None:
                self._judge_from_prometheus(environment)
        elif self.options.router == "alb":
            self._start_load_balancer_controller(environment)

    def _start_gateway(self, namespace: str) -> None:
        """Pods on addresses of a network namespace of the stack's own, Traefik routing to
        them by the seed's HTTPRoute, Prometheus scraping Traefik every second.

        Without root (no namespace can be made) the stack says so and runs as without
        a data plane: the HTTPRoute is only written, the simulator carries the traffic.
        """
        from local.kube.dataplane import DataPlaneError, GatewayProxy, PodNetwork, Prometheus

        plane = self.control_plane
        try:
            network = PodNetwork().start()
        except DataPlaneError as exc:
            self.data_plane = {"note": f"no real proxy: {exc}"}
            _log(f"data plane: {self.data_plane['note']}; the HTTPRoute is written, not served")
            plane.seed_namespace(namespace)
            return
        self._exits.callback(network.stop)
        self.pod_network = network
        plane.kubelet.serve_pods(network)
        self._exits.callback(plane.kubelet.serve_pods, None)
        _log("data plane: pod network made; seeding, pods served on 10.244.0.0/16 inside it")
        plane.seed_namespace(namespace)
        _log("data plane: starting Traefik (Gateway API provider)")
        proxy = GatewayProxy(plane, network, workdir=self._data_plane_dir("traefik"))
        proxy.start()
        self._exits.callback(proxy.stop)
        self.proxy = proxy
        # The seed's HTTPRoute names a Gateway of its own namespace.
        proxy.add_gateway(namespace)
        _log("data plane: starting Prometheus (scrapes Traefik every second)")
        prometheus = Prometheus(
            [proxy.metrics_target],
            network,
            interval=f"{PROMETHEUS_SCRAPE_SECONDS:g}s",
            workdir=self._data_plane_dir("prometheus"),
        )
        prometheus.start()
        self._exits.callback(prometheus.stop)
        self.prometheus = prometheus
        host = "www.example.com"
        enter = " ".join(network.command([]))
        self.data_plane = {
            "pod_network": network.path,
            "enter": enter,
            "proxy_address": proxy.url.removeprefix("http://"),
            "proxy_url": proxy.web_url,
            "proxy_host": host,
            "try": f"{enter} curl -s -H 'Host: {host}' {proxy.url}/",
            "prometheus_url": prometheus.url,
        }

    def _judge_from_prometheus(self, environment: dict[str, str]) -> None:
        """The canaries are judged from the proxy's real counts, as Prometheus scraped them.

        Unless the stack's overrides choose a provider: then theirs. The analysis
        interval grows, when needed, so that a window spans ``PROMETHEUS_SCRAPES_PER_WINDOW``
        scrapes on the wall clock (the flow's waits run ``speed`` times shorter).
        """
        if "BG_METRIC_PROVIDER" in self.options.overrides:
            return
        environment["BG_METRIC_PROVIDER"] = "prometheus"
        environment["BG_PROMETHEUS_URL"] = self.prometheus.url
        if "BG_ANALYSIS_INTERVAL_SECONDS" in self.options.overrides:
            return
        template = int(environment.get("BG_ANALYSIS_INTERVAL_SECONDS") or 60)
        spanned = PROMETHEUS_SCRAPES_PER_WINDOW * PROMETHEUS_SCRAPE_SECONDS * self.options.speed
        environment["BG_ANALYSIS_INTERVAL_SECONDS"] = str(max(template, math.ceil(spanned)))

    def _start_simulated_load_balancer(
        self, environment: Mapping[str, str], cluster_url: str
    ) -> None:
        """On the emulator, the stand-in controller makes the seed's Ingress into moto's
        ELBv2 (``local.alb_controller``), where the product confirms each move."""

        from bluegreen.adapters.kube.client import api_client_for
        from bluegreen.config import Settings
        from local.alb_controller import SimulatedLoadBalancerController

        client = functools.partial(_moto_client, environment)

        settings = Settings.from_env(environment)
        controller = SimulatedLoadBalancerController(
            api_client_for(Settings(kube_api_url=cluster_url)),
            client("elbv2"),
            client("ec2"),
            settings.cluster_name,
            settings.namespace,
        )
        self._exits.enter_context(controller.running(interval=0.2))
        self.data_plane = {"note": "a stand-in load balancer controller programs moto's ELBv2"}

    def _start_load_balancer_controller(self, environment: Mapping[str, str]) -> None:
        """The AWS Load Balancer Controller reconciling the seed's Ingress into moto's ELBv2."""
        from kubernetes.client import NetworkingV1Api

        from bluegreen.adapters.elbv2 import Elbv2LoadBalancers
        from local.kube.dataplane import LoadBalancerController, ingress_annotations, seed_network

        client = functools.partial(_moto_client, environment)

        from bluegreen.config import Settings

        settings = Settings.from_env(environment)
        namespace, ingress, cluster = (
            settings.namespace,
            settings.ingress_name,
            settings.cluster_name,
        )
        network = seed_network(client("ec2"))
        # The Ingress names the subnets and the security group made in moto: the controller
        # then needs no subnet discovery (tags) and manages no security group rule.
        with self.control_plane.admin_client() as api:
            patched = NetworkingV1Api(api).patch_namespaced_ingress(
                ingress, namespace, {"metadata": {"annotations": ingress_annotations(network)}}
            )
        production_host = next(
            (
                rule.host
                for rule in patched.spec.rules or []
                for path in (rule.http.paths if rule.http else [])
                if path.backend.service
                and path.backend.service.name == settings.ingress_production_action
            ),
            "",
        )
        _log("data plane: starting the AWS Load Balancer Controller against moto")
        controller = LoadBalancerController(
            self.control_plane,
            environment["AWS_ENDPOINT_URL"],
            environment["AWS_REGION"],
            network.vpc_id,
            cluster,
            watch_namespace=namespace,
            workdir=self._data_plane_dir("aws-load-balancer-controller"),
        )
        controller.start()
        self._exits.callback(controller.stop)
        self.load_balancer_controller = controller
        self.load_balancers = Elbv2LoadBalancers(client("elbv2"), cluster)
        self._ingress = (namespace, ingress)
        self.data_plane = {
            "controller": "aws-load-balancer-controller",
            "cluster": cluster,
            "vpc": network.vpc_id,
            "subnets": ",".join(network.subnet_ids),
            "security_group": network.security_group_id,
            "controller_log": str(controller.log),
            "production_host": production_host,
        }

    def _data_plane_dir(self, name: str) -> Path | None:
        """Where a data-plane program keeps its logs: the state folder, or a temporary one."""
        if not self.options.write_state:
            return None
        folder = self.options.state_dir / "dataplane" / name
        import shutil

        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        return folder

    def _faults_url(self, cluster_url: str) -> str:
        plane = self.control_plane
        if plane is not None and plane.kubelet is not None:
            return str(plane.kubelet.control_url)
        return cluster_url

    def _seed_deployments(self, environment: Mapping[str, str]) -> list[dict[str, Any]]:
        """The seeded namespace's Deployments, read as an administrator."""
        namespace = environment["BG_NAMESPACE"]
        if self.control_plane is not None:
            from kubernetes.client import AppsV1Api

            with self.control_plane.admin_client() as client:
                raw = AppsV1Api(client).list_namespaced_deployment(
                    namespace, _preload_content=False
                )
                return list(json.loads(raw.data).get("items") or [])
        url = f"{environment['BG_KUBE_API_URL']}/apis/apps/v1/namespaces/{namespace}/deployments"
        with urllib.request.urlopen(url, timeout=10) as answer:
            return list(json.load(answer).get("items") or [])

    def _environment(self, moto_url: str, cluster_url: str) -> dict[str, str]:
        """The handlers' environment: template values, then what only this stack knows."""
        from bluegreen.config import Settings

        environment: dict[str, str] = {}
        for function in ("ecr_push", "services_api", "deploy_steps"):
            environment.update(template_environment(self._template, function))
        environment.update(
            {
                "AWS_ENDPOINT_URL": moto_url,
                # moto's Step Functions interpreter invokes Lambda at localhost:$MOTO_PORT.
                "MOTO_PORT": moto_url.rsplit(":", 1)[-1],
                # The seed's images name this region's registry: the host's region is not used.
                "AWS_REGION": Settings().region,
                "AWS_ACCESS_KEY_ID": self.options.access_key_id,
                "AWS_SECRET_ACCESS_KEY": self.options.secret_access_key,
                "BG_KUBE_API_URL": cluster_url,
                "POWERTOOLS_TRACE_DISABLED": "true",
                "POWERTOOLS_METRICS_DISABLED": "true",
                "POWERTOOLS_LOG_LEVEL": self.options.log_level,
                "BG_TRAFFIC_ROUTER": self.options.router,
                "BG_ANALYSIS_TARGET_GROUPS": ",".join(
                    f"{colour}={group}" for colour, group in LOCAL_TARGET_GROUPS.items()
                ),
                "BG_ANALYSIS_LOAD_BALANCER": LOCAL_LOAD_BALANCER,
                # What the simulator sends a canary at 10 % in one analysis interval, with
                # the interval shortened by the stack's speed: 400/s x 1 s x 10 % at x60.
                "BG_ANALYSIS_MIN_REQUESTS": "10",
            }
        )
        environment["AWS_DEFAULT_REGION"] = environment["AWS_REGION"]
        defaults = Settings()
        environment.setdefault("BG_REPOSITORY_NAME", defaults.repository)
        environment.setdefault("BG_NAMESPACE", defaults.namespace)
        environment.setdefault("BG_LEDGER_TABLE_NAME", defaults.ledger_table)
        environment.setdefault("BG_IDEMPOTENCY_TABLE_NAME", defaults.idempotency_table)
        environment["BG_REGISTRY"] = f"{ACCOUNT}.dkr.ecr.{environment['AWS_REGION']}.amazonaws.com"
        environment.update(self.options.overrides)
        return environment

    def _apply_environment(self, environment: Mapping[str, str]) -> None:
        for name, value in environment.items():
            self._saved_environ.setdefault(name, os.environ.get(name))
            os.environ[name] = value
        # A profile of the host would make boto3 look for files instead of the keys above.
        for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
            if name in os.environ and name not in environment:
                self._saved_environ.setdefault(name, os.environ.get(name))
                os.environ.pop(name)

    def _create_aws_resources(self, environment: Mapping[str, str]) -> str:
        """Tables, the ECR repository (with the seed's images), the deploy state machine."""

        from local.aws import create_tables
        from local.lambdas import dispatch_lambdas_in_process
        from local.stepfunctions import (
            create_deploy_state_machine,
            parse_definitions_once,
            shortened_waits,
        )

        client = functools.partial(_moto_client, environment)

        create_tables(
            client("dynamodb"),
            names={
                "LedgerTable": environment["BG_LEDGER_TABLE_NAME"],
                "IdempotencyTable": environment["BG_IDEMPOTENCY_TABLE_NAME"],
            },
        )
        ecr = client("ecr")
        with contextlib.suppress(ecr.exceptions.RepositoryAlreadyExistsException):
            ecr.create_repository(repositoryName=environment["BG_REPOSITORY_NAME"])
        self._register_seed_images(ecr, environment)
        machine = create_deploy_state_machine(
            lambda_client=client("lambda"),
            stepfunctions_client=client("stepfunctions"),
            iam_client=client("iam"),
        )
        handlers = {name: _deploy_steps_handler for name in machine.function_names}
        self._exits.enter_context(dispatch_lambdas_in_process(handlers))
        self._exits.enter_context(shortened_waits(1.0 / self.options.speed))
        # moto re-parses the ASL (~0.5 s) at every execution's start otherwise.
        self._exits.enter_context(parse_definitions_once())
        return machine.arn

    def _register_fleet_app(self, environment: Mapping[str, str]) -> str:
        """``FLEET_APP`` beside the stack's own application: the seed again in its namespace,
        its repository, its spec in the registry (the stack's settings but for where it
        lives, and the selector router). Not with a custom seed (it may lack the objects).
        """
        if self.options.seed is not None:
            return ""
        from bluegreen.adapters.apps import DynamoAppRegistry
        from bluegreen.config import load_settings
        from bluegreen.domain.apps import AppSpec, Editor, default_app_spec
        from bluegreen.domain.errors import AppVersionConflict
        from bluegreen.logic.apps import register_default

        if self.control_plane is not None:
            self.control_plane.seed_namespace(FLEET_APP, wait=False)
        elif self.cluster is not None:
            self.cluster.seed_namespace(FLEET_APP)
        ecr = _moto_client(environment, "ecr")
        with contextlib.suppress(ecr.exceptions.RepositoryAlreadyExistsException):
            ecr.create_repository(repositoryName=FLEET_APP)
        settings = load_settings()
        spec = default_app_spec(settings).to_json()
        spec.update(namespace=FLEET_APP, repository=FLEET_APP)
        spec["router"]["kind"] = "selector"
        registry = DynamoAppRegistry(settings.ledger_table, _moto_client(environment, "dynamodb"))
        register_default(registry, settings)
        with contextlib.suppress(AppVersionConflict):  # a stack restarted on the same moto
            registry.put(FLEET_APP, AppSpec.parse(spec), Editor(actor="local stack"), None)
        return FLEET_APP

    def _register_seed_images(self, ecr: Any, environment: Mapping[str, str]) -> None:
        """Put the digests the seeded Deployments run into ECR, as if pushed before.

        So that ``deploy <digest>`` of what already runs is accepted, as it would
        be on a cluster fed from that repository.
        """
        prefix = f"{environment['BG_REGISTRY']}/{environment['BG_REPOSITORY_NAME']}@sha256:"
        deployments = self._seed_deployments(environment)
        digests = {
            container["image"][len(prefix) - len("sha256:") :]
            for item in deployments
            for container in item["spec"]["template"]["spec"].get("containers", [])
            if str(container.get("image", "")).startswith(prefix)
        }
        for digest in sorted(digests):
            manifest = json.dumps(
                {
                    "schemaVersion": 2,
                    "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
                    "config": {
                        "mediaType": "application/vnd.docker.container.image.v1+json",
                        "size": 7023,
                        "digest": digest,
                    },
                    "layers": [],
                }
            )
            with contextlib.suppress(ecr.exceptions.ImageAlreadyExistsException):
                ecr.put_image(
                    repositoryName=environment["BG_REPOSITORY_NAME"],
                    imageManifest=manifest,
                    imageManifestMediaType="application/vnd.docker.distribution.manifest.v2+json",
                    imageDigest=digest,
                )

    def _start_api(self, environment: Mapping[str, str]) -> str:
        from local.apigw import LocalApiGateway, LocalCredential, Stage, routes_from_template
        from local.iam import app_operator_policy
        from local.invoke import LocalLambdaContext

        region = environment["AWS_REGION"]

        def context(request_id: str) -> LocalLambdaContext:
            return LocalLambdaContext(
                function_name="services-api", aws_request_id=request_id, region=region
            )

        stage = Stage(account=ACCOUNT, region=region, stage=self._stage_name())
        api = LocalApiGateway(
            handler=_services_api_handler,
            routes=routes_from_template(),
            stage=stage,
            host=self.options.host,
            port=self.options.api_port,
            control_paths={"/_local/events": self._deliver_event, "/_local/traffic": self._traffic},
            credentials={
                self.options.access_key_id: LocalCredential(
                    self.options.access_key_id,
                    self.options.secret_access_key,
                    self.options.caller_arn,
                ),
                # alice may operate the fleet's second application, nothing else.
                FLEET_OPERATOR["access_key_id"]: LocalCredential(
                    FLEET_OPERATOR["access_key_id"],
                    FLEET_OPERATOR["secret_access_key"],
                    FLEET_OPERATOR["user_arn"],
                    policies=(app_operator_policy(stage, FLEET_APP),),
                ),
            },
            access_log=_log if self.options.access_log else None,
            context_factory=context,
        )
        api.start()
        self.api = api
        self._exits.callback(api.stop)
        return api.url

    def _start_traffic(self, environment: Mapping[str, str]) -> None:
        """The simulated users, reading where the router sends them as the product does."""
        if self.options.traffic_rate <= 0:
            return
        import boto3

        from bluegreen.adapters.kube.cluster import KubernetesCluster
        from bluegreen.config import Settings
        from local.traffic import TrafficSimulator

        settings = Settings.from_env(environment)
        cloudwatch = boto3.client(
            "cloudwatch",
            endpoint_url=environment["AWS_ENDPOINT_URL"],
            region_name=environment["AWS_REGION"],
        )
        held = self._held_weights(settings) if self.load_balancers is not None else None
        simulator = TrafficSimulator(
            KubernetesCluster.from_settings(settings),
            cloudwatch,
            LOCAL_TARGET_GROUPS,
            rate=self.options.traffic_rate,
            load_balancer=LOCAL_LOAD_BALANCER,
            # A new IP target serves once it passes the target group's health check: with
            # the controller's defaults (15 s apart, 5 in a row) 75 s, on the stack's clock.
            registration_seconds=75.0 / self.options.speed,
            held_weights=held,
        )
        simulator.start()
        self.traffic = simulator
        self._exits.callback(simulator.stop)

    def _held_weights(self, settings: Any) -> Callable[[], Any]:
        """Production's weights as the load balancer's listener rule holds them (moto's ELBv2)."""
        from bluegreen.domain.traffic import Weights

        services = {
            colour: settings.colour_service_pattern.format(colour=colour)
            for colour in ("blue", "green")
        }

        def held() -> Weights | None:
            found = self.listener_weights()
            if found is None:
                return None
            return Weights(
                blue=found.get(services["blue"], 0), green=found.get(services["green"], 0)
            )

        return held

    def listener_weights(self) -> dict[str, int] | None:
        """The weights per Service of the listener rule forwarding the production host, as
        the product's ELBv2 reader sees them (kube, alb); None while there is no such rule.
        """
        if self.load_balancers is None:
            return None
        host = self.data_plane.get("production_host", "")
        # One reader for the simulator's thread, the demo's and the tests': it keeps
        # what it found (the load balancer's ARN, the target groups' Services) in dicts.
        with self._load_balancers_lock:
            balancer = self.load_balancers.programmed(*self._ingress)
        for rule in balancer.rules:
            if host in rule.hosts:
                return dict(rule.weights)
        return None

    def _traffic(self, body: bytes) -> tuple[int, Any]:
        """``POST /_local/traffic``: mark an image (``{"image", "behaviour"}``); the tally."""
        simulator = self.traffic
        if simulator is None:
            return 409, {"error": "NoTraffic", "detail": "this stack runs no traffic simulator"}
        try:
            asked = json.loads(body or b"{}")
        except ValueError as exc:
            return 400, {"error": "InvalidInput", "detail": f"the body is not JSON: {exc}"}
        if not isinstance(asked, dict) or set(asked) - {"image", "behaviour"}:
            return 400, {
                "error": "InvalidInput",
                "detail": 'send {} for the tally, or {"image": "sha256:...", "behaviour": '
                '"errors"|"slow"|"good"}',
            }
        if "image" in asked:
            try:
                simulator.mark(str(asked["image"]), str(asked.get("behaviour", "good")))
            except ValueError as exc:
                return 400, {"error": "InvalidInput", "detail": f"behaviour: {exc}"}
            if self.pod_network is not None:
                from local.traffic import image_mark

                # The real pods answer the real requests the same way.
                self.control_plane.kubelet.behaviours.mark(
                    image_mark(str(asked["image"])), str(asked.get("behaviour", "good"))
                )
        tally = simulator.tally
        return 200, {
            "rate": simulator.rate,
            "sent": dict(tally.sent),
            "errors": dict(tally.errors),
            "failed": tally.failed,
            "marks": simulator.marks(),
            "lastError": simulator.last_error,
        }

    def _stage_name(self) -> str:
        """The API's stage: the default of the template's ``ApiStageName`` parameter."""
        parameter = (self._template.get("Parameters") or {}).get("ApiStageName")
        default = parameter.get("Default") if isinstance(parameter, dict) else None
        return str(default) if default else "Prod"

    def _write_kubeconfig(self, cluster_url: str) -> Path | None:
        """A kubeconfig for kubectl: the emulator's, or the control plane's administrator."""
        if self.control_plane is not None:
            path = Path(self.control_plane.admin_kubeconfig)
            return path if path.exists() else None
        if not self.options.write_state:
            return None
        self.options.state_dir.mkdir(parents=True, exist_ok=True)
        path = self.options.state_dir / "kubeconfig"
        self._exits.callback(path.unlink, missing_ok=True)
        namespace = os.environ.get("BG_NAMESPACE", "wp-platform")
        path.write_text(
            json.dumps(
                {
                    "apiVersion": "v1",
                    "kind": "Config",
                    "clusters": [{"name": "local", "cluster": {"server": cluster_url}}],
                    "users": [{"name": "local", "user": {}}],
                    "contexts": [
                        {
                            "name": "local",
                            "context": {
                                "cluster": "local",
                                "user": "local",
                                "namespace": namespace,
                            },
                        }
                    ],
                    "current-context": "local",
                },
                indent=2,
            )
        )
        return path

    # the local-only event path ------------------------------------------------------

    def _deliver_event(self, body: bytes) -> tuple[int, Any]:
        """``POST /_local/events``: what EventBridge does with an event put on the bus."""
        try:
            event = json.loads(body or b"null")
        except ValueError as exc:
            return 400, {"error": "InvalidInput", "detail": f"the body is not JSON: {exc}"}
        if not isinstance(event, dict):
            return 400, {"error": "InvalidInput", "detail": "the body must be one event object"}
        patterns = event_rule_patterns(self._template, "ecr_push")
        if patterns and not any(pattern_matches(p, event) for p in patterns):
            return 200, {
                "delivered": False,
                "function": "ecr_push",
                "reason": "no rule of the template matches this event",
            }
        from local.invoke import LocalLambdaContext

        handler = self._locked("ecr_push", _ecr_push_handler)
        context = LocalLambdaContext(function_name="ecr-push", region=os.environ["AWS_REGION"])
        try:
            response = handler(event, context)
        except Exception as exc:
            return 200, {
                "delivered": True,
                "function": "ecr_push",
                "error": {"errorType": type(exc).__name__, "errorMessage": str(exc)},
            }
        answer: dict[str, Any] = {"delivered": True, "function": "ecr_push", "response": response}
        answer.update(self._auto_deployment(event))
        return 200, answer

    def _auto_deployment(self, event: Mapping[str, Any]) -> dict[str, Any]:
        """The deployments the push started (the names are derived): the first as
        ``deploymentId``/``executionArn``, each by application under ``deployments``."""
        import boto3

        from bluegreen.adapters.apps import DynamoAppRegistry
        from bluegreen.config import load_settings
        from bluegreen.domain.executions import execution_arn, execution_name
        from bluegreen.domain.models import Digest
        from bluegreen.logic.apps import applications_for

        detail = event.get("detail")
        if not isinstance(detail, Mapping):
            return {}
        try:
            digest = Digest.parse(detail.get("image-digest"))
        except Exception:
            return {}
        settings = load_settings()
        dynamodb = boto3.client("dynamodb", region_name=settings.region)
        registry = DynamoAppRegistry(settings.ledger_table, dynamodb)
        repository = str(detail.get("repository-name", ""))
        client = boto3.client("stepfunctions", region_name=settings.region)
        started: dict[str, dict[str, str]] = {}
        for app in applications_for(registry, settings, repository):
            application = app.name if app is not None else settings.application
            name = execution_name(application, "deploy", digest.hex)
            arn = execution_arn(settings.state_machine_arn, name)
            try:
                client.describe_execution(executionArn=arn)
            except client.exceptions.ExecutionDoesNotExist:
                continue
            started[application] = {"deploymentId": name, "executionArn": arn}
        if not started:
            return {}
        return {**next(iter(started.values())), "deployments": started}

    def _locked(self, name: str, handler: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
        """One warm instance per function: invocations of one function never interleave."""
        lock = self._handler_locks.setdefault(name, threading.Lock())

        def call(event: Any, context: Any) -> Any:
            with lock:
                return handler(event, context)

        return call

    # what people see ------------------------------------------------------------------

    def banner(self) -> str:
        """Endpoints, the kubectl line and the environment for the CLI / AWS CLI / curl."""
        if self.state is None:
            return "the local stack is not running"
        state = self.state
        kubectl = f"{ROOT / '.venv' / 'bin' / 'kubectl'}"
        rel_kubectl = ".venv/bin/kubectl" if Path(kubectl).exists() else "kubectl"
        lines = [
            f"eks-bluegreen local stack (pid {state.pid}, clock x{self.options.speed:g}, "
            f"cluster: {state.cluster_kind}, router: {self.options.router})",
            "",
            f"  API (services_api)  {state.api_url}    SigV4 only, as API Gateway (AWS_IAM)",
            f"  moto (AWS)          {state.moto_url}",
            (
                f"  cluster emulator    {state.cluster_url}"
                if state.cluster_kind == "emulator"
                else f"  kube-apiserver      {state.cluster_url}  (real control plane, RBAC on)"
            ),
            f"  state machine       {state.state_machine_arn}",
            f"  API credentials     {state.access_key_id} / {state.secret_access_key}  "
            f"(calls are recorded as {state.caller_arn})",
            *(
                [
                    f"  fleet               {state.environment.get('BG_APP_NAME')} (the stack's "
                    f"own) and {state.fleet_app} (namespace and repository {state.fleet_app})",
                    f"  alice               {state.fleet_operator['access_key_id']} / "
                    f"{state.fleet_operator['secret_access_key']}  (operator of "
                    f"{state.fleet_app} only: /apps/{state.fleet_app}/...)",
                ]
                if state.fleet_app
                else []
            ),
            *self._data_plane_lines(state),
            "",
            "Everything (ledger, executions, cluster) lives in this process's memory: "
            "stopping the stack forgets it.",
            "",
            "kubectl:",
        ]
        if state.cluster_kind == "emulator":
            lines.append(
                f"  {rel_kubectl} --server={state.cluster_url} -n {state.namespace} "
                "get deploy,svc,cm,pods,rs"
            )
        if state.kubeconfig and state.cluster_kind == "kube":
            lines.append(
                f"  {rel_kubectl} --kubeconfig={state.kubeconfig} -n {state.namespace} "
                "get deploy,svc,cm,pods,rs   (administrator; the product has only the Role)"
            )
        elif state.kubeconfig:
            lines.append(f"  KUBECONFIG={state.kubeconfig} {rel_kubectl} get deploy,svc,cm")
        cli = "CLI (reads .local-stack/ by itself, signs with the credentials above):"
        if self.options.state_dir.resolve() != STATE_DIR:
            state_file = self.options.state_dir.resolve() / STATE_FILE
            cli = f"CLI (this stack's state): export BLUEGREEN_LOCAL_STATE={state_file}"
        lines += [
            "",
            cli,
            "  .venv/bin/bluegreen status       make push TAG=dev [BROKEN=1 | ERRORS=1 | SLOW=1]",
            "  .venv/bin/bluegreen promote --steps 10,50:manual,100 --wait    (alb, gateway)",
            "  make invoke FN=ecr_push EVENT=events/ecr_push/tagged_push.json",
            "  .venv/bin/bluegreen dashboard --open   the release in a browser: "
            "http://127.0.0.1:3100/",
            "",
            "environment for the AWS CLI, curl or another shell:",
            f"  export AWS_ENDPOINT_URL={state.moto_url} AWS_REGION={state.region} "
            f"AWS_DEFAULT_REGION={state.region}",
            f"  export AWS_ACCESS_KEY_ID={state.access_key_id} "
            f"AWS_SECRET_ACCESS_KEY={state.secret_access_key}",
            f"  export BLUEGREEN_ENDPOINT={state.api_url}",
            f"  aws dynamodb scan --table-name {state.environment.get('BG_LEDGER_TABLE_NAME')}",
            f'  curl --aws-sigv4 "aws:amz:{state.region}:execute-api" '
            f'--user "$AWS_ACCESS_KEY_ID:$AWS_SECRET_ACCESS_KEY" {state.api_url}/services',
            "",
            "Ctrl-C stops everything.",
        ]
        return "\n".join(lines)

    @staticmethod
    def _data_plane_lines(state: StackState) -> list[str]:
        """Where the real data plane is and how to reach it (empty without one)."""
        plane = state.data_plane
        if not plane:
            return []
        if "note" in plane:
            return ["", f"  data plane          {plane['note']}"]
        if "proxy_url" in plane:
            host = plane["proxy_host"]
            return [
                "",
                f"  Gateway proxy       Traefik at {plane['proxy_address']} inside the pod network "
                f"{plane['pod_network']}",
                f"                      (forwarded to {plane['proxy_url']}); pods on 10.244.0.0/16",
                f"  Prometheus          {plane['prometheus_url']}   (scrapes Traefik every second"
                + (
                    "; the canaries are judged from it)"
                    if state.environment.get("BG_METRIC_PROVIDER") == "prometheus"
                    else ")"
                ),
                "  real requests through the proxy, from inside the pod network:",
                f"    {plane['try']}",
                f"    curl -s -H 'Host: {host}' {plane['proxy_url']}/    (the same, from here)",
                "    .venv/bin/python -m local.load --count 1000 --seconds 30   (by colour)",
            ]
        return [
            "",
            f"  Load Balancer Ctl   {plane['controller']} (cluster {plane['cluster']}): the "
            f"Ingress's listener rules live in moto's ELBv2 ({plane['vpc']})",
            f"                      aws elbv2 describe-load-balancers; its log: "
            f"{plane['controller_log']}",
        ]


# -- handlers, imported on first use -------------------------------------------------


def _services_api_handler(event: Any, context: Any) -> Any:
    from functions.services_api.app import lambda_handler

    return lambda_handler(event, context)


def _ecr_push_handler(event: Any, context: Any) -> Any:
    from functions.ecr_push.app import lambda_handler

    return lambda_handler(event, context)


def _deploy_steps_handler(event: Any, context: Any) -> Any:
    from functions.deploy_steps.app import lambda_handler

    return lambda_handler(event, context)


def _cold_start() -> None:
    """Forget every cached setting and client, as a new Lambda instance would.

    Handlers cache their settings and AWS/Kubernetes clients (``lru_cache``
    factories); a stack started on new ports, or after tests that used other
    endpoints, must not reuse them.
    """
    for name, module in list(sys.modules.items()):
        if module is None or not name.startswith(("functions.", "bluegreen")):
            continue
        for value in list(vars(module).values()):
            clear = getattr(value, "cache_clear", None)
            if callable(clear) and getattr(value, "__module__", None) == name:
                clear()


def _fresh_handler_modules() -> Callable[[], None]:
    """Make the next import of ``functions.*`` run the modules again (a Lambda cold start).

    Handler modules read their settings at import time; ones imported before
    the stack set its environment would talk to other endpoints. Returns the
    undo, which puts the previously imported modules back.
    """
    saved = {name: module for name, module in sys.modules.items() if name.startswith("functions.")}
    for name in saved:
        del sys.modules[name]

    def restore() -> None:
        for name in [n for n in sys.modules if n.startswith("functions.")]:
            del sys.modules[name]
        sys.modules.update(saved)

    return restore


def _answers(url: str) -> bool:
    """Whether something serves HTTP at ``url`` (a reused pid is not a running stack)."""
    try:
        urllib.request.urlopen(url + "/_local/ping", timeout=2).close()
    except urllib.error.HTTPError:
        return True
    except OSError:
        return False
    return True


def _check_port_free(host: str, port: int, option: str) -> None:
    if port == 0:
        return
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            raise StackError(
                f"port {port} on {host} is in use: pick another with {option} <port>"
            ) from None


def _remove_state(path: Path, pid: int) -> None:
    # Only our own file: a second stack that failed to start must not delete the first's.
    with contextlib.suppress(OSError, ValueError):
        if StackState.from_json(path.read_text()).pid == pid:
            path.unlink()


def _login_name() -> str:
    """Who started the stack, as an IAM user name (``local-operator`` when unknown)."""
    import getpass

    try:
        name = getpass.getuser()
    except (KeyError, OSError):
        name = ""
    return "".join(c for c in name if c.isalnum() or c in "+=,.@_-") or "local-operator"


def _moto_client(environment: Mapping[str, str], service: str) -> Any:
    """A boto3 client of the stack's moto (which accepts any key)."""
    import boto3

    return boto3.client(
        service,
        endpoint_url=environment["AWS_ENDPOINT_URL"],
        region_name=environment["AWS_REGION"],
        aws_access_key_id="testing",
        aws_secret_access_key="testing",  # noqa: S106 - moto accepts any key
    )


def _log(line: str) -> None:
    sys.stderr.write(f"{time.strftime('%H:%M:%S')} {line}\n")
    sys.stderr.flush()


@contextlib.contextmanager
def local_stack(options: StackOptions) -> Iterator[LocalStack]:
    """``with local_stack(StackOptions.ephemeral(tmp)) as stack:`` (a test fixture's body)."""
    stack = LocalStack(options)
    stack.start()
    try:
        yield stack
    finally:
        stack.stop()


# -- command line -------------------------------------------------------------------


def parse_options(argv: list[str] | None = None) -> StackOptions:
    """The command line's options (``--help`` and bad values exit, as argparse does)."""
    parser = argparse.ArgumentParser(
        prog="python -m local.stack",
        description="Run eks-bluegreen locally: moto, the cluster emulator and the API.",
    )
    defaults = StackOptions()
    parser.add_argument(
        "--host", default=defaults.host, help="address to bind (default %(default)s)"
    )
    parser.add_argument(
        "--api-port",
        type=int,
        default=defaults.api_port,
        help="the API endpoint's port (default %(default)s)",
    )
    parser.add_argument(
        "--moto-port",
        type=int,
        default=defaults.moto_port,
        help="moto's port (default %(default)s)",
    )
    parser.add_argument(
        "--cluster-port",
        type=int,
        default=defaults.cluster_port,
        help="the cluster emulator's port (default %(default)s)",
    )
    parser.add_argument(
        "--state-dir",
        type=Path,
        help="where stack.json and the kubeconfig go (default .local-stack in the project); "
        "a second stack, on other ports, needs its own",
    )
    parser.add_argument(
        "--cluster",
        choices=("emulator", "kube"),
        default=defaults.cluster,
        help="the Kubernetes side: the emulator (default: instant start, fault injection, a "
        "fast clock) or kube, the real kube-apiserver, controller-manager, scheduler and etcd "
        "built by `make kube`, RBAC on, with a simulated kubelet",
    )
    parser.add_argument(
        "--speed",
        type=float,
        help="how much faster than real time the cluster and the flow's waits run (default "
        f"{defaults.speed:g} on the emulator; 1 on kube, where the controllers' deadlines "
        "are real time anyway)",
    )
    parser.add_argument(
        "--seed", type=Path, help="Kubernetes manifests (file or folder); none: the default seed"
    )
    parser.add_argument(
        "--router",
        choices=("selector", "alb", "gateway"),
        default=defaults.router,
        help="the stack's TrafficRouter (default %(default)s): the Services' selectors, the "
        "seed's Ingress (alb) or its HTTPRoute (gateway)",
    )
    parser.add_argument(
        "--traffic",
        type=float,
        default=defaults.traffic_rate,
        metavar="REQUESTS_PER_SECOND",
        help="the simulated users' rate through the router (default %(default)g; 0: none)",
    )
    parser.add_argument("--quiet", action="store_true", help="no access log")
    parser.add_argument(
        "--log-level",
        default=defaults.log_level,
        choices=("DEBUG", "INFO", "WARNING", "ERROR"),
        help="the handlers' log level (default %(default)s: failures only)",
    )
    args = parser.parse_args(argv)
    if args.speed is None:
        args.speed = defaults.speed if args.cluster == "emulator" else 1.0
    if args.speed <= 0:
        parser.error("--speed must be positive")
    return replace(
        defaults,
        cluster=args.cluster,
        host=args.host,
        api_port=args.api_port,
        moto_port=args.moto_port,
        cluster_port=args.cluster_port,
        state_dir=args.state_dir.resolve() if args.state_dir else defaults.state_dir,
        speed=args.speed,
        seed=args.seed,
        access_log=not args.quiet,
        log_level=args.log_level,
        router=args.router,
        traffic_rate=args.traffic,
    )


def main(argv: list[str] | None = None) -> int:
    """Run the stack until Ctrl-C (or SIGTERM)."""
    options = parse_options(argv)
    # Handlers publish no metrics locally; Powertools warns about that on every call.
    warnings.filterwarnings("ignore", message="No application metrics to publish")
    stop = threading.Event()

    def on_signal(_signum: int, _frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    stack = LocalStack(options)
    try:
        stack.start()
    except StackError as exc:
        sys.stderr.write(f"local stack: {exc}\n")
        return 2
    try:
        print(stack.banner(), flush=True)
        while not stop.wait(0.5):
            pass
        print("\nstopping the local stack...", flush=True)
    finally:
        stack.stop()
    print("stopped.", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
