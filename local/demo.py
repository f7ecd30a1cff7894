"""``make demo``: the original system's story, replayed on the local stack and checked.

``python -m local.demo`` starts the whole stack in this process on free ports,
with its state in a temporary folder (a ``make local`` running beside it is
left alone), then tells the story of the system this project replaces, one
step at a time, and checks each step's outcome through the Kubernetes API
(real ``kubectl`` included), the services API and the ledger:

1. start the local stack;
2. the state before: ``canaryEnv`` as the original stored it, blue canary;
3. ``POST /services {"selector": "green"}``: green becomes the canary;
4. a good push of ``dev``: auto-deployed to the canary, cache flushed, healthy;
5. a broken push of ``dev``: its pods crash-loop, the flow sees it from them at
   the second restart (long before the progress deadline), rolls back to the
   healthy digest, flushes the cache again and marks the digest failed;
6. an emergency ``imageTag`` on production;
7. the final ``kubectl get`` view and the ledger's history.

With ``--router alb`` or ``--router gateway`` (``make demo ROUTER=alb``) the roles
move on the seed's Ingress or HTTPRoute instead of the Services' selectors, traffic
flows through them (``local.traffic``), and the story goes on:

8. a flip with no failed simulated request;
9. a progressive promotion 10 % -> 50 % (a manual gate, resumed from the command
   line) -> 100 %, judged from the canary's metrics, that passes and swaps the roles;
10. an instant flip-back of production (weights only, no rollout);
11. a promotion of an image that answers 5 % 5xx, failed by its analysis at 10 % and
    backed out at once.

The canary's metrics are the simulator's, published into moto's CloudWatch, except
on the real control plane under ``gateway``: there Prometheus scrapes Traefik and the
analysis reads the real requests' counts from it (the failing reading must say so).

On the real control plane (``--cluster kube``) the weighted routers have a real data
plane: under ``alb`` the AWS Load Balancer Controller reconciles the Ingress into
moto's ELBv2, and every check of the weights also waits (bounded) for the listener
rule to hold them; under ``gateway`` Traefik routes real requests to the pods on
their addresses in the stack's pod network, and steps 8 to 11 run the load
generator (``local.load``) through it: each prints the real requests sent, failed
and answered per colour, and checks that none failed, that the share each colour
got under each weight the proxy routed by is that weight within
``REAL_SHARE_TOLERANCE``, and that after a back-out the bad colour got none.

It ends with a timeline (step, digest, where, duration, outcome) and exits 0
only when every step was verified; otherwise 1, with one line naming the step
and what was wrong. ``run_story`` is the same story for tests.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import logging
import os
import re
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

import yaml

from local.load import LoadGenerator, LoadTally, WeightTimeline, by_weights
from local.stack import (
    ROOT,
    STATE_FILE,
    LocalStack,
    StackError,
    StackOptions,
    StackState,
    running_stack,
)

DEFAULT_SPEED = 120.0
"""The cluster clock's speed-up: a broken image's 600 s progress deadline passes in 5 s."""
KUBE_SPEED = 10.0
"""On the real control plane the simulated kubelet's back-offs, the flow's waits and the
analysis intervals run this much faster (the controllers keep real time: the story never
waits on their deadlines); at 1 the weighted routers' story takes about 12 minutes."""

REAL_RATE = 100.0
"""Real requests per second through the proxy during the traffic story (kube, gateway)."""
REAL_SHARE_TOLERANCE = 3.0
"""Percentage points between a colour's weight and its share of the real requests sent
while the proxy routed by that weight. Traefik's weighted round robin is exact over a
whole cycle; what is left is the ends of a stretch, where a change is seen up to one
poll (0.1 s) late."""
REAL_SHARE_MINIMUM = 100
"""Fewer requests than this under one weight are counted, not judged."""
RULE_DEADLINE = 60.0
"""How long the listener rule may take to follow a write (the controller's reconcile)."""

CACHE_FLUSHED = "Success: The cache was flushed."
HOOK_NAME = "cache-flush"
REVISION = "deployment.kubernetes.io/revision"
EXIT_FAILED = 1
EXIT_INTERRUPTED = 130


class StoryFailed(Exception):
    """A step's outcome is not what the story says; the message says what was seen."""


class Interrupted(KeyboardInterrupt):
    """Ctrl-C or SIGTERM: stop the story and the stack."""


@dataclass(frozen=True)
class StepResult:
    """One line of the timeline: what a step did, where, how long, and whether it was checked."""

    number: int
    title: str
    digest: str = ""
    where: str = ""
    seconds: float = 0.0
    outcome: str = ""
    verified: bool = False
    problem: str = ""
    facts: Mapping[str, str] = field(default_factory=dict)
    """Identifiers the step produced (``digest``, ``deploymentId`` ...), for tests to re-check."""
    started: float = 0.0
    """When the step began (``time.monotonic()``), so tests can place what they recorded."""
    ended: float = 0.0


# -- what people see -------------------------------------------------------------------------


class Console:
    """Step headings, shown commands, checks and a progress line; colour only on a terminal."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.tty = bool(getattr(out, "isatty", lambda: False)())
        self.colour = (
            self.tty and not os.environ.get("NO_COLOR") and os.environ.get("TERM") != "dumb"
        )

    def paint(self, text: str, code: str) -> str:
        """``text`` in an ANSI colour (``32`` green, ``31`` red, ``1`` bold ...) on a terminal."""
        return f"\x1b[{code}m{text}\x1b[0m" if self.colour else text

    def line(self, text: str = "") -> None:
        """Print one line and flush, so progress shows even through a pipe."""
        self.out.write(text + "\n")
        self.out.flush()

    def heading(self, number: int, total: int, title: str) -> None:
        """``[4/7] A good push ...`` in bold."""
        self.line()
        self.line(self.paint(f"[{number}/{total}] {title}", "1"))

    def command(self, text: str, output: str | None = None) -> None:
        """A command as a user would type it, then its output (if given), indented."""
        self.line(self.paint(f"    $ {text}", "36"))
        if output is not None:
            self.output(output)

    def output(self, text: str) -> None:
        """A command's output, indented under it."""
        for row in text.rstrip("\n").splitlines():
            self.line(f"      {row}")

    def note(self, text: str) -> None:
        """An explanation between commands."""
        self.line(f"    {text}")

    def checked(self, text: str) -> None:
        """One verified fact."""
        self.line(f"    {self.paint('ok', '32')}  {text}")

    def failed(self, text: str) -> None:
        """The fact that did not hold."""
        self.line(f"    {self.paint('FAILED', '31;1')}  {text}")

    @contextlib.contextmanager
    def progress(self, label: str) -> Iterator[Callable[[str], None]]:
        """A waiting line with elapsed seconds: rewritten in place on a terminal.

        Through a pipe or into a file, a plain line is printed whenever the text
        changes (never the same line twice), so logs stay readable.
        """
        started = time.monotonic()
        last = [""]

        def show(text: str) -> None:
            elapsed = time.monotonic() - started
            if self.tty:
                # A line wider than the terminal wraps, and "\r" would then rewrite only
                # its last row: cut it to the width instead.
                width = shutil.get_terminal_size().columns - 1
                shown = f"    ... {label} [{elapsed:5.1f}s] {text}"
                self.out.write("\r\x1b[K" + shown[:width])
                self.out.flush()
            elif text != last[0]:
                self.line(f"    ... {label} [{elapsed:5.1f}s] {text}")
            last[0] = text

        try:
            yield show
        finally:
            if self.tty:
                self.out.write("\r\x1b[K")
                self.out.flush()


def render_timeline(results: Sequence[StepResult]) -> str:
    """The closing table: step, digest, where, duration and outcome of every step."""
    headers = ("step", "what", "digest", "where", "duration", "outcome")
    rows = [
        (
            str(r.number),
            r.title,
            r.digest or "-",
            r.where or "-",
            f"{r.seconds:.1f}s",
            ("ok: " if r.verified else "FAILED: ") + (r.outcome if r.verified else r.problem),
        )
        for r in results
    ]
    widths = [len(h) for h in headers]
    for row in rows:
        widths = [max(w, len(cell)) for w, cell in zip(widths, row, strict=True)]
    # The outcome column may be long: it is last, so it is never padded.
    widths[-1] = 0
    lines = [
        "  ".join(h.upper().ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip(),
        "  ".join("-" * max(w, len(h)) for h, w in zip(headers, widths, strict=True)),
    ]
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in rows]
    return "\n".join(line.rstrip() for line in lines)


def short(digest: str) -> str:
    """``sha256:abcdef123456``: the first 12 hex digits, as people quote digests."""
    _, _, text = digest.rpartition("@")
    algorithm, colon, hex_part = text.partition(":")
    return f"sha256:{hex_part[:12]}" if colon and algorithm == "sha256" else text


# -- the three ways of looking at the stack -------------------------------------------------


class KubernetesApi:
    """Reads straight from the cluster's REST API, as an administrator.

    The emulator needs no credentials; the real control plane takes the client
    certificate of the administrator's kubeconfig (``context``).
    """

    def __init__(self, url: str, namespace: str, context: ssl.SSLContext | None = None) -> None:
        self.url = url.rstrip("/")
        self.namespace = namespace
        self.context = context

    @classmethod
    def of(cls, state: StackState, work_dir: Path) -> KubernetesApi:
        """The cluster a stack runs, with the credentials its kubeconfig holds."""
        if state.cluster_kind != "kube":
            return cls(state.cluster_url, state.namespace)
        return cls(state.cluster_url, state.namespace, _tls_of(Path(state.kubeconfig), work_dir))

    def get(self, path: str, query: Mapping[str, str] | None = None) -> Any:
        """GET a path of the API as JSON; a failure is a ``StoryFailed`` naming the path."""
        address = self.url + path + (f"?{urllib.parse.urlencode(query)}" if query else "")
        try:
            with urllib.request.urlopen(address, timeout=10, context=self.context) as answer:
                raw = answer.read()
        except urllib.error.HTTPError as exc:
            raise StoryFailed(f"the Kubernetes API answered {exc.code} to GET {path}") from None
        except OSError as exc:
            raise StoryFailed(f"the Kubernetes API did not answer GET {path}: {exc}") from None
        return json.loads(raw) if raw.startswith((b"{", b"[")) else raw.decode("utf-8", "replace")

    def namespaced(self, group: str, resource: str, name: str = "") -> str:
        """The path of a namespaced resource (``group`` "" is the core API)."""
        prefix = "/api/v1" if not group else f"/apis/{group}"
        return f"{prefix}/namespaces/{self.namespace}/{resource}" + (f"/{name}" if name else "")

    def deployment(self, name: str) -> dict[str, Any]:
        """One Deployment."""
        found: dict[str, Any] = self.get(self.namespaced("apps/v1", "deployments", name))
        return found

    def items(self, group: str, resource: str, selector: str = "") -> list[dict[str, Any]]:
        """Every object of a kind in the namespace, optionally by label selector."""
        query = {"labelSelector": selector} if selector else None
        listed = self.get(self.namespaced(group, resource), query)
        return list(listed.get("items") or [])

    def pod_log(self, pod: str) -> str:
        """A pod's log."""
        return str(self.get(self.namespaced("", "pods", pod) + "/log"))


def _tls_of(kubeconfig: Path, work_dir: Path) -> ssl.SSLContext:
    """A TLS context from a kubeconfig's inlined CA and client certificate."""
    import base64

    import yaml

    config = yaml.safe_load(kubeconfig.read_text())
    cluster = config["clusters"][0]["cluster"]
    user = config["users"][0]["user"]
    folder = work_dir / "demo-tls"
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, key in (
        ("ca.crt", cluster["certificate-authority-data"]),
        ("client.crt", user["client-certificate-data"]),
        ("client.key", user["client-key-data"]),
    ):
        paths[name] = folder / name
        paths[name].write_bytes(base64.b64decode(key))
    paths["client.key"].chmod(0o600)
    context = ssl.create_default_context(cafile=str(paths["ca.crt"]))
    context.load_cert_chain(str(paths["client.crt"]), str(paths["client.key"]))
    return context


class DeploymentWatch:
    """Every state a Deployment went through, from a Kubernetes watch in a thread.

    A stalled rollout is rolled back within one poll of the flow, faster than a
    reader polling from outside could be sure to see; a watch from the
    resourceVersion before the change misses no state.
    """

    def __init__(self, api: KubernetesApi, name: str) -> None:
        self._api = api
        self._name = name
        self.seen: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def start(self, timeout_seconds: int) -> DeploymentWatch:
        """Watch from the Deployment's current resourceVersion for at most that long."""
        current = self._api.deployment(self._name)
        query = urllib.parse.urlencode(
            {
                "watch": "true",
                "fieldSelector": f"metadata.name={self._name}",
                "resourceVersion": current["metadata"]["resourceVersion"],
                "timeoutSeconds": str(timeout_seconds),
            }
        )
        address = f"{self._api.url}{self._api.namespaced('apps/v1', 'deployments')}?{query}"
        answer = urllib.request.urlopen(
            address, timeout=timeout_seconds + 5, context=self._api.context
        )

        def read() -> None:
            with contextlib.suppress(OSError, ValueError), answer:
                for raw in answer:
                    event = json.loads(raw)
                    if isinstance(event.get("object"), dict) and event.get("type") != "ERROR":
                        with self._lock:
                            self.seen.append(event["object"])

        self._thread = threading.Thread(target=read, name=f"watch-{self._name}", daemon=True)
        self._thread.start()
        return self

    def states(self) -> list[dict[str, Any]]:
        """The Deployment as each watch event carried it, oldest first."""
        with self._lock:
            return list(self.seen)


class Kubectl:
    """The real ``kubectl`` against the emulator, with the stack's own kubeconfig."""

    def __init__(self, state: StackState, work_dir: Path) -> None:
        found = ROOT / ".venv" / "bin" / "kubectl"
        binary = str(found) if found.exists() else shutil.which("kubectl")
        if binary is None:
            raise StoryFailed("kubectl is not installed: run `make venv` (it provides it)")
        self.binary = binary
        self.state = state
        # A user's kubeconfig may name an EKS cluster with an exec credential plugin;
        # the stack's own kubeconfig keeps kubectl away from it.
        self.target = (
            f"--kubeconfig={state.kubeconfig}"
            if state.cluster_kind == "kube"
            else f"--server={state.cluster_url}"
        )
        self.flags = [self.target, "-n", state.namespace]
        if state.kubeconfig and state.cluster_kind != "kube":
            self.flags.insert(0, f"--kubeconfig={state.kubeconfig}")
        self.flags.insert(0, f"--cache-dir={work_dir / 'kubectl-cache'}")

    def shown(self, *args: str) -> str:
        """The line a user would paste (the cluster and namespace, not our private flags)."""
        return f"kubectl {self.target} -n {self.state.namespace} " + " ".join(args)

    def run(self, *args: str) -> str:
        """Run kubectl; its standard output, or ``StoryFailed`` with its error."""
        try:
            done = subprocess.run(
                [self.binary, *self.flags, *args],
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise StoryFailed(f"kubectl {' '.join(args)} did not run: {exc}") from None
        if done.returncode != 0:
            error = (done.stderr.strip().splitlines() or ["no message"])[-1]
            raise StoryFailed(f"kubectl {' '.join(args)} exited {done.returncode}: {error}")
        return done.stdout

    def json(self, *args: str) -> dict[str, Any]:
        """``kubectl get ... -o json`` parsed."""
        parsed: dict[str, Any] = json.loads(self.run(*args, "-o", "json"))
        return parsed


class Cli:
    """The ``bluegreen`` command line, run in this process against the stack's API."""

    def __init__(self, state: StackState) -> None:
        self.state = state

    def run(self, *argv: str, err: TextIO | None = None) -> tuple[int, str, str]:
        """Exit code, standard output and standard error of one command.

        ``err``, when given, receives the standard error as it is written (the
        progress lines of ``--wait``); the returned text is then empty.
        """
        from bluegreen_cli.main import main as bluegreen

        out, errors = io.StringIO(), io.StringIO()
        code = bluegreen(["--endpoint", self.state.api_url, *argv], out=out, err=err or errors)
        if code == EXIT_INTERRUPTED:
            # The command line turns Ctrl-C into its exit code; the story must stop.
            raise Interrupted
        return code, out.getvalue(), errors.getvalue()

    def text(self, *argv: str) -> str:
        """A command's table for people; ``StoryFailed`` unless it exits 0."""
        code, out, err = self.run(*argv)
        if code != 0:
            raise StoryFailed(f"bluegreen {' '.join(argv)} exited {code}: {err.strip()}")
        return out

    def json(self, *argv: str) -> Any:
        """A command's ``--json`` answer; ``StoryFailed`` unless it exits 0."""
        code, out, err = self.run("--json", *argv)
        if code != 0:
            raise StoryFailed(f"bluegreen {' '.join(argv)} exited {code}: {err.strip()}")
        try:
            return json.loads(out)
        except ValueError:
            raise StoryFailed(f"bluegreen --json {' '.join(argv)} printed no JSON") from None


class _Caller:
    """Signed calls to the stack's API as another identity; every answer comes back."""

    def __init__(self, url: str, region: str, access_key: tuple[str, str]) -> None:
        from bluegreen_cli.api import ApiClient, Signer

        self.client = ApiClient(url, Signer(region, access_key=access_key))

    def call(self, method: str, path: str, *, payload: object, check: bool = True) -> Any:
        from bluegreen_cli.api import Response
        from bluegreen_cli.errors import ApiError

        try:
            return self.client.call(method, path, payload=payload)
        except ApiError as exc:
            if check:
                raise StoryFailed(f"{method} {path}: {exc}") from None
            return Response(exc.status, exc.body)


class _LastLine(io.StringIO):
    """Standard error of ``bluegreen ... --wait``: keeps all, tells its latest progress."""

    def status(self) -> str:
        """``RUNNING (running) green 216c0204fa1e -> d74e1c1a80c4`` from the latest line.

        The command line writes ``[  1.2s] <deployment id>: <status>``; the id is
        shown once, when the command ends.
        """
        lines = [line for line in self.getvalue().replace("\r", "\n").splitlines() if line]
        if not lines:
            return ""
        _, _, after_time = lines[-1].partition("] ")
        return after_time.partition(": ")[2] or after_time


@contextlib.contextmanager
def _cli_sees(state_file: Path) -> Iterator[None]:
    """Point the command line at this stack's state file (``push`` needs it), then restore."""
    saved = {name: os.environ.get(name) for name in ("BLUEGREEN_LOCAL_STATE", "BLUEGREEN_ENDPOINT")}
    os.environ["BLUEGREEN_LOCAL_STATE"] = str(state_file)
    os.environ.pop("BLUEGREEN_ENDPOINT", None)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


# -- the story ----------------------------------------------------------------------------


def _require(condition: object, problem: str) -> None:
    if not condition:
        raise StoryFailed(problem)


def _container_image(deployment: Mapping[str, Any], container: str) -> str:
    containers = deployment.get("spec", {}).get("template", {}).get("spec", {}).get("containers")
    for item in containers or []:
        if item.get("name") == container:
            return str(item.get("image", ""))
    return ""


def _progressing(deployment: Mapping[str, Any]) -> str:
    for condition in deployment.get("status", {}).get("conditions") or []:
        if condition.get("type") == "Progressing":
            return str(condition.get("reason", ""))
    return ""


def rollout_problem(deployment: Mapping[str, Any]) -> str:
    """Why a Deployment is not fully rolled out (``""`` when it is), as the controller says."""
    spec, status = deployment.get("spec", {}), deployment.get("status", {})
    want = int(spec.get("replicas", 1))
    generation = int(deployment.get("metadata", {}).get("generation", 0))
    if int(status.get("observedGeneration", 0)) < generation:
        return "the controller has not observed its latest spec"
    counts = {
        "updated": int(status.get("updatedReplicas", 0)),
        "available": int(status.get("availableReplicas", 0)),
        "total": int(status.get("replicas", 0)),
    }
    if any(value != want for value in counts.values()):
        shown = ", ".join(f"{k} {v}" for k, v in counts.items())
        return f"{shown} of {want} ({_progressing(deployment) or 'no Progressing condition'})"
    return ""


@dataclass(frozen=True)
class HookJob:
    """A hook Job of one deployment, as the cluster shows it."""

    name: str
    run_id: str
    hook: str
    image: str
    complete: bool
    log: str


class Story:
    """The demo's steps over a running stack; ``run`` returns one result per step."""

    TOTAL = 8
    WEIGHTED_TOTAL = 12

    def __init__(self, stack: LocalStack, out: TextIO, *, first_step: int = 2) -> None:
        if stack.state is None:
            raise StackError("the local stack is not running")
        from bluegreen.adapters.kube.hooks import HOOK_LABEL, RUN_ANNOTATION
        from bluegreen.config import Settings

        self.state: StackState = stack.state
        self.settings = Settings.from_env(self.state.environment)
        self.hook_label = HOOK_LABEL
        self.run_annotation = RUN_ANNOTATION
        self.console = Console(out)
        self.api = KubernetesApi.of(self.state, stack.options.state_dir)
        self.cli = Cli(self.state)
        self.work_dir = stack.options.state_dir
        self.kubectl: Kubectl | None = None
        # The slowest step waits out a 600 s progress deadline on the cluster's clock.
        self.wait_limit = 60.0 + 1800.0 / stack.options.speed
        self.first_step = first_step
        self.results: list[StepResult] = []
        self.current: tuple[int, str] | None = None
        # What later steps build on, set by earlier ones.
        self.healthy = ""
        self.broken = ""
        self.router = stack.options.router
        self.weighted = self.router in ("alb", "gateway")
        self.total = self.WEIGHTED_TOTAL if self.weighted else self.TOTAL
        self.traffic = stack.traffic
        self.interval = self.settings.analysis.interval_seconds / stack.options.speed
        self.promoted = ""
        self.detected_after = 0
        self.proxy = stack.proxy
        self.pod_network = stack.pod_network
        self.listener_weights: Callable[[], dict[str, int] | None] | None = (
            stack.listener_weights if stack.load_balancers is not None else None
        )
        self.production_host = stack.data_plane.get("production_host", "")
        self.gate_weights: dict[str, int] = {}
        """Production's weights while the fleet step's promotion waits at its gate."""
        self.real: dict[str, LoadTally] = {}
        """The real requests of each traffic step (kube, gateway), by step title."""
        self.real_records: dict[str, tuple[LoadGenerator, WeightTimeline]] = {}
        """Each traffic step's requests and the weights Traefik routed by, as recorded."""
        self._production_rule: int | None = None

    # running -------------------------------------------------------------------------------

    def steps(self) -> list[tuple[str, Callable[[], StepResult]]]:
        """The titles and bodies of steps 2 to 7 (step 1, starting the stack, is the caller's)."""
        return (
            [
                ("the state before", self.state_before),
                ("switch the canary to green", self.switch_to_green),
                ("good push of dev", self.good_push),
                ("broken push of dev", self.broken_push),
                ("emergency fix of production", self.emergency_fix),
                ("final view and history", self.final_view),
            ]
            + (
                [
                    (
                        "a flip with no failed simulated request",
                        self._with_real(self.flip_without_failures, blue=0, green=100),
                    ),
                    (
                        "promotion 10 -> 50 (manual gate) -> 100",
                        self._with_real(self.promotion_passes, blue=100, green=0),
                    ),
                    (
                        "instant flip-back of production",
                        self._with_real(self.flip_back, blue=0, green=100),
                    ),
                    (
                        "promotion failing its analysis at 10 %",
                        self._with_real(self.promotion_fails, blue=0, green=100),
                    ),
                ]
                if self.weighted
                else []
            )
            + [("a second application of the fleet", self.fleet)]
        )

    def _with_real(self, body: Callable[[], StepResult], **final: int) -> Callable[[], StepResult]:
        """``body`` with real requests through the proxy around it (kube, gateway); ``final``:
        production's weights at its end."""

        def run() -> StepResult:
            with self._real_requests(final):
                return body()

        return run

    def run(self) -> list[StepResult]:
        """Run every step in order; the first one that fails ends the story."""
        with _cli_sees(self.work_dir / STATE_FILE):
            for offset, (title, body) in enumerate(self.steps()):
                number = self.first_step + offset
                self.current = (number, title)
                self.console.heading(number, self.total, title)
                started = time.monotonic()
                try:
                    result = body()
                except (StoryFailed, StackError) as exc:
                    problem = str(exc)
                except KeyboardInterrupt:
                    raise
                except Exception as exc:  # a broken piece must end in one line, not a traceback
                    problem = f"unexpected {type(exc).__name__}: {exc}"
                else:
                    problem = ""
                ended = time.monotonic()
                if problem:
                    self.console.failed(problem)
                    self.results.append(
                        StepResult(
                            number,
                            title,
                            seconds=ended - started,
                            problem=problem,
                            started=started,
                            ended=ended,
                        )
                    )
                    break
                result = replace(
                    result,
                    number=number,
                    title=title,
                    seconds=ended - started,
                    started=started,
                    ended=ended,
                )
                self.results.append(result)
            self.current = None
        return list(self.results)

    # reading the stack ------------------------------------------------------------------------

    def _kubectl(self) -> Kubectl:
        if self.kubectl is None:
            self.kubectl = Kubectl(self.state, self.work_dir)
        return self.kubectl

    def _deployment_name(self, colour: str) -> str:
        return self.settings.deployment_name_pattern.format(colour=colour)

    def _image(self, digest: str) -> str:
        return f"{self.settings.image_repository}@{digest}"

    def _roles_by_kubectl(self) -> tuple[dict[str, Any], dict[str, str]]:
        """canaryEnv and each Service's ``app`` selector, read with kubectl."""
        kubectl = self._kubectl()
        configmap = kubectl.json("get", "configmap", self.settings.configmap_name)
        raw = (configmap.get("data") or {}).get(self.settings.configmap_key)
        if not isinstance(raw, str):
            raise StoryFailed(f"the ConfigMap has no {self.settings.configmap_key!r} key")
        try:
            canary_env = json.loads(raw)
        except ValueError:
            raise StoryFailed(f"{self.settings.configmap_key} is not JSON: {raw!r}") from None
        selectors = {}
        for role, name in (
            ("canary", self.settings.canary_service_name),
            ("production", self.settings.production_service_name),
        ):
            service = kubectl.json("get", "service", name)
            selectors[role] = str((service.get("spec", {}).get("selector") or {}).get("app", ""))
        return canary_env, selectors

    def _endpoint_pods(self, service: str) -> list[str]:
        endpoints = self.api.get(self.api.namespaced("", "endpoints", service))
        return sorted(
            str((address.get("targetRef") or {}).get("name", address.get("ip", "")))
            for subset in endpoints.get("subsets") or []
            for address in subset.get("addresses") or []
        )

    def _router_weights(self) -> tuple[dict[str, int], str]:
        """Production's weight per colour and the canary's colour, read from the router
        object with kubectl (the Ingress's action annotations, the HTTPRoute's rules)."""
        kubectl = self._kubectl()

        def split(groups: list[Any], key: str) -> dict[str, int]:
            found = {"blue": 0, "green": 0}
            for group in groups:
                for colour in found:
                    if group.get(key) == self.settings.colour_service_pattern.format(colour=colour):
                        found[colour] += int(group.get("weight", 1))
            return found

        if self.router == "alb":
            ingress = kubectl.json("get", "ingress", self.settings.ingress_name)
            annotations = ingress["metadata"].get("annotations") or {}

            def action(name: str) -> dict[str, int]:
                raw = annotations.get(f"alb.ingress.kubernetes.io/actions.{name}", "{}")
                groups = (json.loads(raw).get("forwardConfig") or {}).get("targetGroups") or []
                return split(groups, "serviceName")

            production = action(self.settings.ingress_production_action)
            canary = action(self.settings.ingress_canary_action)
        else:
            route = kubectl.json("get", "httproute", self.settings.http_route_name)
            rules = {r.get("name"): r for r in route["spec"].get("rules") or []}
            production = split(
                rules[self.settings.http_route_production_rule].get("backendRefs") or [], "name"
            )
            canary = split(
                rules[self.settings.http_route_canary_rule].get("backendRefs") or [], "name"
            )
        return production, max(canary, key=lambda colour: canary[colour])

    def _held_by_load_balancer(self, wanted: Mapping[str, int]) -> None:
        """Under alb on kube: wait (bounded) for the listener rule to forward ``wanted``."""
        if self.listener_weights is None:
            return
        services = {
            self.settings.colour_service_pattern.format(colour=c): c for c in ("blue", "green")
        }
        began = time.monotonic()
        deadline = began + RULE_DEADLINE
        held: dict[str, int] | None = None
        while time.monotonic() < deadline:
            found = self.listener_weights()
            held = {services.get(k, k): v for k, v in found.items()} if found is not None else None
            if held == dict(wanted):
                self.console.checked(
                    f"the load balancer's listener rule (moto ELBv2, reconciled by the AWS Load "
                    f"Balancer Controller) forwards {held}, "
                    f"{time.monotonic() - began:.1f}s after this check began"
                )
                return
            time.sleep(0.2)
        raise StoryFailed(
            f"the listener rule for {self.production_host} forwards {held}, not {dict(wanted)}, "
            f"{RULE_DEADLINE:g}s after the write"
        )

    def _serving_production(self) -> dict[str, int] | None:
        """The production rule's weights per colour Traefik routes by right now."""
        if self._production_rule is None:
            route = self._kubectl().json("get", "httproute", self.settings.http_route_name)
            names = [r.get("name") for r in route["spec"].get("rules") or []]
            self._production_rule = names.index(self.settings.http_route_production_rule)
        rules = self.proxy.serving_weights(self.state.namespace, self.settings.http_route_name)
        if len(rules) <= self._production_rule:
            return None
        rule = rules[self._production_rule]
        return {
            colour: rule.get(self.settings.colour_service_pattern.format(colour=colour), 0)
            for colour in ("blue", "green")
        }

    @contextlib.contextmanager
    def _real_requests(self, final: Mapping[str, int]) -> Iterator[None]:
        """Real requests through the proxy while the block runs (kube, gateway), then checked.

        After the block, requests go on until the proxy routes by ``final`` and one
        more second; then: none failed, each colour's share under each weight the
        proxy routed by is that weight (``REAL_SHARE_TOLERANCE``), and a colour at 0
        in ``final`` got no request once the proxy routed by it.
        """
        if self.proxy is None or self.pod_network is None:
            yield
            return
        title = self.current[1] if self.current else "step"
        timeline = WeightTimeline(self._serving_production).start()
        load = LoadGenerator(
            self.proxy.url + "/",
            host=self.state.data_plane.get("proxy_host", ""),
            network=self.pod_network,
            rate=REAL_RATE,
            count=int(REAL_RATE * (self.wait_limit * 4 + 60)),
            seconds=self.wait_limit * 4 + 60,
        ).start()
        try:
            yield
            self._until(
                f"Traefik routing production by {dict(final)}",
                lambda: self._serving_production() == dict(final),
            )
            routed_at = time.monotonic()
            time.sleep(1.0)
        finally:
            tally = load.stop()
            timeline.stop()
        self.real[title] = tally
        self.real_records[title] = (load, timeline)
        self.console.checked(f"real requests through Traefik: {tally.describe()}")
        _require(tally.sent > 0, "no real request was sent")
        _require(tally.failed == 0, f"{tally.failed} real requests failed: {tally.failures}")
        judged = []
        for weights, part in by_weights(load, timeline):
            answered = sum(part.served.values())
            if answered < REAL_SHARE_MINIMUM:
                continue
            total = sum(weights.values()) or 1
            for colour, weight in weights.items():
                share = part.share(colour)
                _require(
                    abs(share - 100.0 * weight / total) <= REAL_SHARE_TOLERANCE,
                    f"while Traefik routed by {weights}, {colour} answered {share:.1f} % of "
                    f"{answered} real requests",
                )
            judged.append(
                f"{weights['blue']}/{weights['green']}: "
                f"{part.served['blue']}/{part.served['green']}"
            )
        if judged:
            self.console.checked(
                "under each weight Traefik routed by (blue/green: requests answered): "
                + "; ".join(judged)
                + f" (within {REAL_SHARE_TOLERANCE:g} points)"
            )
        after = load.tally(routed_at)
        for colour, weight in final.items():
            if weight == 0:
                _require(
                    after.served[colour] == 0,
                    f"{colour} answered {after.served[colour]} real requests after its weight "
                    "went to 0",
                )
        if after.sent:
            self.console.checked(f"once Traefik routed by {dict(final)}: {after.describe()}")

    def _check_weighted_roles(self, canary: str, production: str) -> dict[str, Any]:
        canary_env, _ = self._roles_by_kubectl()
        weights, canary_colour = self._router_weights()
        _require(
            canary_env.get("selector") == canary,
            f"canaryEnv says the canary is {canary_env.get('selector')!r}, expected {canary!r}",
        )
        wanted = {production: 100, canary: 0}
        _require(
            weights == wanted and canary_colour == canary,
            f"the {self.router} object sends production {weights} and the canary to "
            f"{canary_colour}, expected {wanted} and {canary}",
        )
        self._held_by_load_balancer(wanted)
        self.console.checked(
            f"kubectl: canaryEnv selector={canary}; the {self.router} object sends production "
            f"100 % to {production} and the canary to {canary}; no Service selector moved"
        )
        return canary_env

    def _check_roles(self, canary: str, production: str) -> dict[str, Any]:
        if self.weighted:
            return self._check_weighted_roles(canary, production)
        canary_env, selectors = self._roles_by_kubectl()
        _require(
            canary_env.get("selector") == canary,
            f"canaryEnv says the canary is {canary_env.get('selector')!r}, expected {canary!r}",
        )
        _require(
            selectors == {"canary": canary, "production": production},
            f"the Services select canary={selectors.get('canary')!r} "
            f"production={selectors.get('production')!r}, expected {canary!r} / {production!r}",
        )
        self.console.checked(
            f"kubectl: canaryEnv selector={canary}; {self.settings.canary_service_name} -> "
            f"app={canary}, {self.settings.production_service_name} -> app={production}"
        )
        pods = self._endpoint_pods(self.settings.canary_service_name)
        prefix = self._deployment_name(canary) + "-"
        _require(
            pods and all(pod.startswith(prefix) for pod in pods),
            f"the {self.settings.canary_service_name} Endpoints list {pods or 'no pods'}, "
            f"expected the {canary} pods",
        )
        self.console.checked(
            f"Kubernetes API: {self.settings.canary_service_name}'s Endpoints are the {canary} "
            f"pods ({len(pods)})"
        )
        return canary_env

    def _services(self) -> dict[str, Any]:
        body = self.cli.json("status")
        _require(isinstance(body, dict), "bluegreen status answered no object")
        services: dict[str, Any] = body
        return services

    def _hook_jobs(self, deployment_id: str) -> list[HookJob]:
        jobs = []
        for job in self.api.items("batch/v1", "jobs"):
            metadata = job.get("metadata", {})
            run_id = str((metadata.get("annotations") or {}).get(self.run_annotation, ""))
            if run_id != deployment_id and not run_id.startswith(deployment_id + "-"):
                continue
            name = str(metadata.get("name"))
            conditions = {
                c.get("type")
                for c in job.get("status", {}).get("conditions") or []
                if c.get("status") == "True"
            }
            pods = self.api.items("", "pods", f"job-name={name}")
            log = self.api.pod_log(pods[-1]["metadata"]["name"]) if pods else ""
            containers = job["spec"]["template"]["spec"].get("containers") or [{}]
            jobs.append(
                HookJob(
                    name=name,
                    run_id=run_id,
                    hook=str((metadata.get("labels") or {}).get(self.hook_label, "")),
                    image=str(containers[0].get("image", "")),
                    complete="Complete" in conditions,
                    log=log,
                )
            )
        return sorted(jobs, key=lambda j: j.run_id)

    def _check_hook(self, job: HookJob, digest: str, colour: str) -> None:
        _require(job.hook == HOOK_NAME, f"Job {job.name} runs hook {job.hook!r}, not {HOOK_NAME}")
        _require(job.complete, f"the {HOOK_NAME} Job {job.name} did not complete")
        _require(
            job.image == self._image(digest),
            f"the {HOOK_NAME} Job ran {short(job.image)}, expected {short(digest)}",
        )
        _require(
            CACHE_FLUSHED in job.log,
            f"the {HOOK_NAME} Job's log says {job.log.strip()!r}, not {CACHE_FLUSHED!r}",
        )
        self.console.checked(
            f"Job {job.name} ({colour}, {short(digest)}) completed: {CACHE_FLUSHED!r}"
        )

    def _check_runs(self, colour: str, digest: str) -> dict[str, Any]:
        deployment = self.api.deployment(self._deployment_name(colour))
        image = _container_image(deployment, self.settings.container_name)
        _require(
            image == self._image(digest),
            f"{self._deployment_name(colour)} runs {short(image) or 'nothing'}, "
            f"expected {short(digest)}",
        )
        problem = rollout_problem(deployment)
        _require(not problem, f"{self._deployment_name(colour)} is not rolled out: {problem}")
        self.console.checked(
            f"Kubernetes API: {self._deployment_name(colour)} runs {short(digest)}, "
            f"rolled out ({deployment['status'].get('availableReplicas')} available, "
            f"revision {deployment['metadata'].get('annotations', {}).get(REVISION, '?')})"
        )
        return deployment

    def _verdicts(self) -> dict[str, str]:
        page = self.cli.json("history", "--limit", "50")
        return {str(i.get("digest")): str(i.get("verdict")) for i in page.get("images") or []}

    def _waiting(self, argv: Sequence[str], colour: str, expect: int) -> dict[str, Any]:
        """Run ``bluegreen <argv> --wait`` as a user would; its final ``--json`` answer.

        The command line follows the deployment itself. It runs in a worker
        thread so that this one can show its progress next to the cluster's
        side, and give up after ``wait_limit`` rather than the command line's
        half hour. ``expect`` is its exit code: 1 when the deployment must fail.
        """
        shown = "bluegreen " + " ".join(argv) + " --wait"
        self.console.command(shown)
        progress = _LastLine()
        finished: dict[str, Any] = {}

        def follow() -> None:
            try:
                argv_waiting = ("--json", *argv, "--wait", "--interval", "0.2")
                finished["answer"] = self.cli.run(*argv_waiting, err=progress)
            except BaseException as exc:  # handed to the main thread, which reports it
                finished["error"] = exc

        worker = threading.Thread(target=follow, name="bluegreen-wait", daemon=True)
        worker.start()
        name = self._deployment_name(colour)
        deadline = time.monotonic() + self.wait_limit
        with self.console.progress(f"deploying to {colour}") as show:
            while worker.is_alive():
                deployment = self.api.deployment(name)
                counts = deployment.get("status", {})
                running = short(_container_image(deployment, self.settings.container_name))
                show(
                    f"{progress.status() or 'starting'} | {name} {running}: "
                    f"{counts.get('updatedReplicas', 0)} updated, "
                    f"{counts.get('readyReplicas', 0)}/"
                    f"{deployment.get('spec', {}).get('replicas', '?')} ready, "
                    f"{_progressing(deployment) or '-'}"
                )
                if time.monotonic() > deadline:
                    raise StoryFailed(
                        f"`{shown}` still waiting after {self.wait_limit:.0f}s: "
                        f"{progress.status() or 'no progress reported'}"
                    )
                worker.join(0.2)
        error = finished.get("error")
        if isinstance(error, Interrupted):
            raise error
        if error is not None:
            raise StoryFailed(f"`{shown}` raised {type(error).__name__}: {error}")
        code, out, _ = finished["answer"]
        try:
            body = json.loads(out)
        except ValueError:
            body = None
        if code != expect or not isinstance(body, dict):
            said = (progress.getvalue().strip().splitlines() or ["nothing on standard error"])[-1]
            raise StoryFailed(f"`{shown}` exited {code} (expected {expect}): {said}")
        execution, record = body.get("execution") or {}, body.get("record") or {}
        _require(record, f"`{shown}` followed no deployment: {out.strip()[:300]}")
        self.console.output(
            f"deployment {body.get('id')}\n"
            f"{record.get('colour')} ({record.get('service')}) "
            f"{short(str(record.get('fromDigest') or '-'))} -> "
            f"{short(str(record.get('toDigest') or '-'))}: execution {execution.get('status')}, "
            f"outcome {record.get('outcome')}",
        )
        return dict(body)

    # the steps --------------------------------------------------------------------------------

    def state_before(self) -> StepResult:
        """The ConfigMap as the original stored it, blue canary, green production."""
        kubectl = self._kubectl()
        args = ("get", "configmap", self.settings.configmap_name, "-o", "yaml")
        shown = kubectl.run(*args)
        self.console.command(kubectl.shown(*args), shown)
        document = yaml.safe_load(shown) or {}
        raw = (document.get("data") or {}).get(self.settings.configmap_key, "")
        try:
            canary_env = json.loads(raw)
        except ValueError:
            raise StoryFailed(f"canaryEnv is not JSON: {raw!r}") from None
        _require(
            set(canary_env) == {"selector", "image"},
            f"canaryEnv has keys {sorted(canary_env)}, expected selector and image",
        )
        image = str(canary_env["image"])
        _require(
            image.startswith(self.settings.image_repository + "@sha256:") and len(image) > 70,
            f"canaryEnv's image {image!r} is not pinned to a digest of "
            f"{self.settings.image_repository}",
        )
        self.console.checked(f"canaryEnv = {raw}")
        self.console.command("bluegreen status", self.cli.text("status"))
        services = self._services()
        _require(
            (services.get("canary"), services.get("production")) == ("blue", "green"),
            f"the API says canary={services.get('canary')} production="
            f"{services.get('production')}, expected blue / green",
        )
        _require(services.get("inAgreement") is True, "the ConfigMap and Services disagree")
        self._check_roles("blue", "green")
        blue = str(services["colours"]["blue"]["digest"])
        _require(
            image == self._image(blue),
            f"canaryEnv's image is {short(image)} but blue runs {short(blue)}",
        )
        self.console.checked(f"blue is the canary running {short(blue)}; green is production")
        return StepResult(
            0,
            "",
            digest=short(blue),
            where="blue=canary",
            outcome="blue canary, green production, ConfigMap as the original",
            verified=True,
            facts={"canaryEnv": raw},
        )

    def switch_to_green(self) -> StepResult:
        """``POST /services {"selector": "green"}``; ConfigMap and both Services follow."""
        self.console.note('POST /services {"selector": "green"}, through the command line:')
        self.console.command("bluegreen switch green", self.cli.text("switch", "green"))
        canary_env = self._check_roles("green", "blue")
        services = self._services()
        _require(
            (services.get("canary"), services.get("production"), services.get("inAgreement"))
            == ("green", "blue", True),
            f"the API says canary={services.get('canary')} production={services.get('production')}",
        )
        self.console.checked("GET /services agrees: canary green, production blue")
        green = str(services["colours"]["green"]["digest"])
        return StepResult(
            0,
            "",
            digest=short(green),
            where="green=canary",
            outcome="green canary, blue production (ConfigMap, Services, API)",
            verified=True,
            facts={"canaryEnv": json.dumps(canary_env)},
        )

    def good_push(self) -> StepResult:
        """A good push auto-deploys to the canary, flushes the cache and is marked healthy."""
        body = self._waiting(("push", "dev"), "green", expect=0)
        record, execution = body.get("record") or {}, body.get("execution") or {}
        digest, deployment_id = str(record.get("toDigest")), str(body.get("id"))
        _require(
            execution.get("status") == "SUCCEEDED" and record.get("outcome") == "succeeded",
            f"the deployment ended {execution.get('status')} / {record.get('outcome')}: "
            f"{execution.get('error')} {execution.get('cause')}",
        )
        _require(
            (record.get("colour"), record.get("service"), record.get("trigger"))
            == ("green", "canary", "ecr-push"),
            f"the deployment went to {record.get('colour')} ({record.get('service')}), "
            f"triggered by {record.get('trigger')}; expected green (canary) by ecr-push",
        )
        self.console.checked(
            f"deployment {deployment_id}: execution SUCCEEDED, outcome succeeded "
            "(green, canary, triggered by ecr-push)"
        )
        self._check_runs("green", digest)
        jobs = self._hook_jobs(deployment_id)
        _require(len(jobs) == 1, f"expected one hook Job for the deployment, found {len(jobs)}")
        self._check_hook(jobs[0], digest, "green")
        verdict = self._verdicts().get(digest)
        _require(verdict == "healthy", f"the ledger's verdict on {short(digest)} is {verdict}")
        self.console.checked(f"ledger: {short(digest)} is healthy")
        canary_env, _ = self._roles_by_kubectl()
        _require(
            canary_env.get("image") == self._image(digest),
            f"canaryEnv's image is {short(str(canary_env.get('image')))}, expected {short(digest)}",
        )
        self.console.checked(f"canaryEnv now says green runs {short(digest)}")
        self.healthy = digest
        return StepResult(
            0,
            "",
            digest=short(digest),
            where="green (canary)",
            outcome="succeeded: rolled out, cache flushed, healthy",
            verified=True,
            facts={"digest": digest, "deploymentId": deployment_id, "hookJob": jobs[0].name},
        )

    def broken_push(self) -> StepResult:
        """A broken push stalls, is rolled back to the healthy digest and marked failed."""
        _require(self.healthy, "no healthy digest from the good push to roll back to")
        name = self._deployment_name("green")
        watch = DeploymentWatch(self.api, name).start(int(self.wait_limit) + 5)
        self.console.note("an image that never becomes ready in the cluster, pushed as dev:")
        # The command line exits 1: the deployment failed, even though it was rolled back.
        body = self._waiting(("push", "dev", "--broken"), "green", expect=1)
        record, execution = body.get("record") or {}, body.get("execution") or {}
        digest, deployment_id = str(record.get("toDigest")), str(body.get("id"))
        self.broken = digest
        stalled = [
            state
            for state in watch.states()
            if _progressing(state) == "ProgressDeadlineExceeded"
            and _container_image(state, self.settings.container_name) == self._image(digest)
        ]
        _require(
            not stalled,
            f"the watch on {name} saw ProgressDeadlineExceeded for {short(digest)}: the "
            "crash loop should have been seen from the pods before the deadline",
        )
        self.console.checked(
            f"Kubernetes watch: {name} rolling out {short(digest)} never reached its progress "
            "deadline: the flow saw the crash loop from the pods first"
        )
        _require(
            record.get("outcome") == "rolled_back" and record.get("rolledBackTo") == self.healthy,
            f"the deployment's outcome is {record.get('outcome')} (rolled back to "
            f"{record.get('rolledBackTo')}), expected rolled_back to {short(self.healthy)}",
        )
        self.console.checked(
            f"deployment {deployment_id}: outcome rolled_back to {short(self.healthy)}"
        )
        error, cause = str(execution.get("error") or ""), str(execution.get("cause") or "")
        _require(
            execution.get("status") == "FAILED" and error == "RolloutFailed",
            f"the execution ended {execution.get('status')} with Error {error!r}, "
            "expected FAILED with RolloutFailed",
        )
        detected = re.search(r"failed after (\d+)s of waiting", cause)
        _require(
            detected is not None
            and "CrashLoopBackOff after 2 restarts" in cause
            and "previous log: Error: the application exited with status 1" in cause
            and short(self.healthy)[7:] in cause,
            f"the execution's Cause does not name the crashing pod, its restarts, its log and "
            f"the rollback: {cause!r}",
        )
        assert detected is not None
        self.detected_after = int(detected.group(1))
        deadline = self._progress_deadline(name)
        _require(
            self.detected_after < deadline,
            f"the crash loop was seen after {self.detected_after}s, not before the "
            f"{deadline}s progress deadline",
        )
        self.console.checked(
            f"crash loop seen from the pods after {self.detected_after}s of the rollout "
            f"(cluster seconds; the progress deadline is {deadline}s)"
        )
        self.console.checked(f"execution FAILED, Error {error}, Cause: {cause}")
        self._check_runs("green", self.healthy)
        jobs = self._hook_jobs(deployment_id)
        _require(
            len(jobs) == 1,
            f"expected one hook Job (the rollback's), found {[j.name for j in jobs]}",
        )
        self._check_hook(jobs[0], self.healthy, "green")
        verdicts = self._verdicts()
        _require(
            verdicts.get(digest) == "failed",
            f"the ledger's verdict on {short(digest)} is {verdicts.get(digest)}, expected failed",
        )
        _require(
            verdicts.get(self.healthy) == "healthy",
            f"the healthy digest is now {verdicts.get(self.healthy)} in the ledger",
        )
        self.console.checked(f"ledger: {short(digest)} failed, {short(self.healthy)} still healthy")
        return StepResult(
            0,
            "",
            digest=short(digest),
            where="green (canary)",
            outcome=(
                f"crash loop seen after {self.detected_after}s (deadline "
                f"{self._progress_deadline(name)}s), rolled back to {short(self.healthy)}, "
                "cache flushed, failed"
            ),
            verified=True,
            facts={
                "digest": digest,
                "deploymentId": deployment_id,
                "rolledBackTo": self.healthy,
                "hookJob": jobs[0].name,
                "error": error,
                "detectedAfterSeconds": str(self.detected_after),
            },
        )

    def _progress_deadline(self, name: str) -> int:
        """The Deployment's progress deadline, in seconds (Kubernetes' default 600)."""
        deployment = self.api.deployment(name)
        return int(deployment.get("spec", {}).get("progressDeadlineSeconds") or 600)

    def emergency_fix(self) -> StepResult:
        """``imageTag`` with ``service: production``: production's colour runs it."""
        _require(self.healthy, "no healthy digest to put on production")
        services = self._services()
        production = str(services.get("production"))
        _require(production == "blue", f"production is {production}, expected blue")
        self.console.note(
            f'POST /services {{"imageTag": "{self.healthy[7:]}", "service": "production"}}:'
        )
        argv = ("deploy", self.healthy, "--service", "production")
        body = self._waiting(argv, production, expect=0)
        deployment_id = str(body.get("id"))
        record, execution = body.get("record") or {}, body.get("execution") or {}
        _require(
            execution.get("status") == "SUCCEEDED" and record.get("outcome") == "succeeded",
            f"the deployment ended {execution.get('status')} / {record.get('outcome')}: "
            f"{execution.get('error')} {execution.get('cause')}",
        )
        _require(
            (record.get("colour"), record.get("service"), record.get("trigger"))
            == (production, "production", "api"),
            f"the deployment went to {record.get('colour')} ({record.get('service')}) "
            f"by {record.get('trigger')}, expected {production} (production) by api",
        )
        self.console.checked(
            f"deployment {deployment_id}: SUCCEEDED on {production} (production), "
            f"by {record.get('actor')}"
        )
        self._check_runs(production, self.healthy)
        jobs = self._hook_jobs(deployment_id)
        _require(len(jobs) == 1, f"expected one hook Job, found {len(jobs)}")
        self._check_hook(jobs[0], self.healthy, production)
        canary_env = self._check_roles("green", "blue")
        _require(
            canary_env.get("image") == self._image(self.healthy),
            f"canaryEnv's image changed to {short(str(canary_env.get('image')))}",
        )
        self.console.checked("the roles did not move: green canary, blue production")
        return StepResult(
            0,
            "",
            digest=short(self.healthy),
            where=f"{production} (production)",
            outcome="succeeded: production runs the healthy digest",
            verified=True,
            facts={"digest": self.healthy, "deploymentId": deployment_id},
        )

    def final_view(self) -> StepResult:
        """The ``kubectl get`` view and the ledger's history of images and deployments."""
        kubectl = self._kubectl()
        args = ("get", "deploy,svc,cm,pods,rs")
        view = kubectl.run(*args)
        self.console.command(kubectl.shown(*args), view)
        expected = [
            f"deployment.apps/{self._deployment_name('blue')}",
            f"deployment.apps/{self._deployment_name('green')}",
            f"service/{self.settings.canary_service_name}",
            f"service/{self.settings.production_service_name}",
            f"configmap/{self.settings.configmap_name}",
        ]
        missing = [name for name in expected if name not in view]
        _require(not missing, f"kubectl get does not list {missing}")
        self.console.checked("kubectl lists both Deployments, both Services and the ConfigMap")
        self.console.command("bluegreen history", self.cli.text("history"))
        self.console.command("bluegreen deployments", self.cli.text("deployments"))
        verdicts = self._verdicts()
        _require(
            (verdicts.get(self.healthy), verdicts.get(self.broken)) == ("healthy", "failed"),
            f"the history shows {short(self.healthy)} {verdicts.get(self.healthy)} and "
            f"{short(self.broken)} {verdicts.get(self.broken)}",
        )
        listed = self.cli.json("deployments", "--limit", "50").get("deployments") or []
        story = [
            (str(d.get("action")), str(d.get("service")), str(d.get("outcome")))
            for d in reversed(listed)
        ]
        wanted = [
            ("switch", "canary", "succeeded"),
            ("deploy", "canary", "succeeded"),
            ("deploy", "canary", "rolled_back"),
            ("deploy", "production", "succeeded"),
        ]
        _require(
            story[-len(wanted) :] == wanted,
            f"the ledger's deployments, oldest first, are {story}, expected {wanted}",
        )
        self.console.checked(
            "ledger: switch succeeded, deploy succeeded, deploy rolled_back, "
            "production deploy succeeded"
        )
        return StepResult(
            0,
            "",
            where="wp-platform",
            outcome=f"{len(listed)} deployments, {len(verdicts)} images in the ledger",
            verified=True,
        )

    # the fleet -----------------------------------------------------------------------------

    def fleet(self) -> StepResult:
        """A second application beside the seed's: a push to its repository deploys it
        alone, and an identity allowed that application only is refused on the other."""
        app = self.state.fleet_app
        _require(app, "the local stack registered no second application")
        listed = self.cli.text("apps", "list")
        self.console.command("bluegreen apps list", listed)
        own = self.settings.application
        _require(own in listed and app in listed, f"bluegreen apps list shows neither {own}/{app}")
        theirs = KubernetesApi(self.api.url, app, self.api.context)
        canary = self.cli.json("--app", app, "status").get("canary")
        # Under a weighted router, the seed's application waits at a promotion's gate
        # meanwhile: its lock is held, and the other application's deploy must not care.
        gate = self._promotion_at_a_gate() if self.weighted else ""
        ours_before = {c: self._running(self.api, c) for c in ("blue", "green")}

        shown = f"bluegreen --app {app} push dev --wait"
        self.console.command(shown)
        body = self.cli.json("--app", app, "push", "dev", "--wait", "--interval", "0.2")
        record, execution = body.get("record") or {}, body.get("execution") or {}
        digest = str(record.get("toDigest"))
        _require(
            execution.get("status") == "SUCCEEDED" and record.get("outcome") == "succeeded",
            f"{app}'s deployment ended {execution.get('status')} / {record.get('outcome')}: "
            f"{execution.get('error')} {execution.get('cause')}",
        )
        _require(
            (record.get("application"), record.get("colour"), record.get("trigger"))
            == (app, canary, "ecr-push"),
            f"the push deployed {record.get('application')}'s {record.get('colour')} "
            f"({record.get('trigger')}); expected {app}'s canary {canary} by ecr-push",
        )
        image = f"{self.state.registry}/{app}@{digest}"
        _require(
            self._running(theirs, str(canary)) == image,
            f"{app}'s {canary} runs {self._running(theirs, str(canary))}, expected {image}",
        )
        self.console.checked(
            f"{app}: its canary ({canary}) runs {short(digest)} from repository {app}, "
            "deployed by its own execution"
        )
        ours_after = {c: self._running(self.api, c) for c in ("blue", "green")}
        _require(ours_after == ours_before, f"{own}'s Deployments changed: {ours_after}")
        self.console.checked(f"{own}: both colours run what they ran before")
        if gate:
            self._still_at_its_gate_then_aborted(gate)

        alice = self._as_fleet_operator()
        other = "blue" if canary == "green" else "green"
        answer = alice.call("POST", f"/apps/{app}/services", payload={"selector": other})
        self.console.command(
            f'alice: POST /apps/{app}/services {{"selector": "{other}"}}',
            f"{answer.status} {json.dumps(answer.body)[:160]}",
        )
        _require(answer.status == 200, f"alice's switch of {app} answered {answer.status}")
        ours = self._roles_by_kubectl()
        refused = alice.call("POST", "/services", payload={"selector": other}, check=False)
        self.console.command(
            f'alice: POST /services {{"selector": "{other}"}}   ({own})',
            f"{refused.status} {json.dumps(refused.body)[:200]}",
        )
        _require(
            refused.status == 403 and "is not authorized" in json.dumps(refused.body),
            f"alice's switch of {own} answered {refused.status}, expected API Gateway's 403",
        )
        _require(self._roles_by_kubectl() == ours, f"{own}'s roles changed after the refusal")
        self.console.checked(
            f"alice switched {app}; on {own} she got API Gateway's 403 and nothing changed"
        )
        return StepResult(
            0,
            "",
            digest=short(digest),
            where=f"{app} {canary} (canary)",
            outcome=f"deployed to {app} only"
            + (f" while {own} waited at a gate" if gate else "")
            + f"; alice refused on {own}",
            verified=True,
            facts={"app": app, "digest": digest},
        )

    def _promotion_at_a_gate(self) -> str:
        """A fresh digest on the seed's canary, promoted to 10 %, waiting there for a
        person; the promotion's id."""
        canary_env, _ = self._roles_by_kubectl()
        colour = str(canary_env.get("selector"))
        body = self._waiting(("push", "dev"), colour, expect=0)
        _require(
            (body.get("execution") or {}).get("status") == "SUCCEEDED",
            f"the push of dev did not deploy: {(body.get('execution') or {}).get('cause')}",
        )
        steps = "10:manual,100"
        started = self.cli.json("promote", "--steps", steps)
        promotion_id = str(started.get("deploymentId"))
        self.console.command(f"bluegreen promote --steps {steps}", pairs_of(started))
        self._until(
            "the promotion waits at its 10 % gate",
            lambda: self._promotion(promotion_id).get("waitingForPerson"),
        )
        weights, _ = self._router_weights()
        self.gate_weights = weights
        self.console.checked(
            f"{self.settings.application}'s promotion {promotion_id} waits for a person at "
            f"10 % (production {weights}), holding its lock"
        )
        return promotion_id

    def _still_at_its_gate_then_aborted(self, promotion_id: str) -> None:
        """The promotion waited through the other application's deploy; aborted, it backs
        out to where production was."""
        waiting = self._promotion(promotion_id).get("waitingForPerson")
        weights, _ = self._router_weights()
        _require(
            waiting and weights == self.gate_weights,
            f"the promotion's gate moved while {self.state.fleet_app} deployed: {weights}",
        )
        self.console.checked(f"the promotion still waits at its gate, production {weights}")
        self.console.command(
            f"bluegreen abort {promotion_id}", self.cli.text("abort", promotion_id)
        )
        code, execution, _ = self._watched(promotion_id)
        _require(
            code == 1 and execution.get("error") == "PromotionAborted",
            f"the aborted promotion ended {execution.get('status')} {execution.get('error')} "
            f"(watch exited {code})",
        )
        self.console.checked(f"aborted: {execution.get('error')}, production backed out")

    def _watched(self, deployment_id: str) -> tuple[int, dict[str, Any], str]:
        """``bluegreen watch`` until the deployment ends: its exit code, the execution as
        the answer shows it, and its standard error."""
        code, out, err = self.cli.run("--json", "watch", deployment_id, "--interval", "0.2")
        final = json.loads(out) if out.strip().startswith("{") else {}
        return code, dict(final.get("execution") or {}), err

    def _running(self, api: KubernetesApi, colour: str) -> str:
        return _container_image(
            api.deployment(self._deployment_name(colour)), self.settings.container_name
        )

    def _as_fleet_operator(self) -> _Caller:
        operator = self.state.fleet_operator
        return _Caller(
            self.state.api_url,
            self.state.region,
            (operator["access_key_id"], operator["secret_access_key"]),
        )

    # the weighted routers' steps ----------------------------------------------------------

    def _tally(self) -> dict[str, Any]:
        _require(self.traffic is not None, "this stack runs no traffic simulator")
        tally = self.traffic.tally
        return {"sent": dict(tally.sent), "errors": dict(tally.errors), "failed": tally.failed}

    def _promotion(self, deployment_id: str) -> dict[str, Any]:
        body = self.cli.json("show", deployment_id)
        promotion = body.get("promotion") if isinstance(body, dict) else None
        return dict(promotion) if isinstance(promotion, dict) else {}

    def _until(self, what: str, check: Callable[[], Any]) -> Any:
        deadline = time.monotonic() + self.wait_limit
        while True:
            value = check()
            if value:
                return value
            if time.monotonic() > deadline:
                raise StoryFailed(f"{what}: not so after {self.wait_limit:.0f}s")
            time.sleep(0.1)

    def flip_without_failures(self) -> StepResult:
        """A switch under a weighted router: one write of the weights, no request lost."""
        before = self._tally()
        _require(before["failed"] == 0, f"{before['failed']} simulated requests failed already")
        self.console.note(
            f"traffic flows at {self.traffic.rate:g} requests/s through the {self.router} "
            "object's weights; switching the canary to blue:"
        )
        self.console.command("bluegreen switch blue", self.cli.text("switch", "blue"))
        self._check_roles("blue", "green")
        # Long enough for the simulated users to send through the new weights.
        time.sleep(max(1.0, 4 * self.interval))
        after = self._tally()
        sent = sum(after["sent"].values()) - sum(before["sent"].values())
        _require(sent > 0, "no simulated request was sent during the flip")
        _require(
            after["failed"] == 0,
            f"{after['failed']} of the simulated requests failed during the flip",
        )
        self.console.checked(
            f"{sent} simulated requests through the flip, none failed (the per-colour "
            "Services and their targets never changed)"
        )
        return StepResult(
            0,
            "",
            where="blue=canary",
            outcome=f"flipped in one write; {sent} requests, 0 failed",
            verified=True,
        )

    def promotion_passes(self) -> StepResult:
        """Blue, freshly deployed, promoted 10 % -> 50 % (gate) -> 100 %, judged and passed."""
        body = self._waiting(("push", "dev"), "blue", expect=0)
        digest = str((body.get("record") or {}).get("toDigest"))
        _require(
            (body.get("execution") or {}).get("status") == "SUCCEEDED",
            f"the push of dev did not deploy: {(body.get('execution') or {}).get('cause')}",
        )
        self.console.checked(f"blue (the canary) runs {short(digest)}, healthy")
        steps = "10,50:manual,100"
        started = self.cli.json("promote", "--steps", steps)
        promotion_id = str(started.get("deploymentId"))
        self.console.command(f"bluegreen promote --steps {steps}", pairs_of(started))
        waiting = self._until(
            "the promotion waits at its 50 % gate",
            lambda: (p := self._promotion(promotion_id)).get("waitingForPerson") and p,
        )
        self.console.command(f"bluegreen show {promotion_id}", self.cli.text("show", promotion_id))
        weights, _ = self._router_weights()
        _require(
            weights == {"blue": 50, "green": 50},
            f"at the gate the {self.router} object sends production {weights}, not 50/50",
        )
        passed = [a for a in waiting.get("analyses") or [] if a.get("finding") == "passed"]
        _require(passed, "the promotion reached its gate with no passed reading")
        self.console.checked(
            f"it waits for a person at 50 % after {len(passed)} passed readings (error rate "
            f"{passed[-1].get('errorPercent')} %, p99 {passed[-1].get('p99Seconds')} s)"
        )
        self.console.command(
            f"bluegreen resume {promotion_id}", self.cli.text("resume", promotion_id)
        )
        code, execution, err = self._watched(promotion_id)
        _require(
            code == 0 and execution.get("status") == "SUCCEEDED",
            f"the promotion ended {execution.get('status')}: "
            f"{execution.get('cause') or err.strip()}",
        )
        self._check_roles("green", "blue")
        self.console.checked(
            f"promotion {promotion_id} SUCCEEDED: blue serves 100 % of production, green is "
            "the canary and still runs what production ran"
        )
        verdict = self._verdicts().get(digest)
        _require(verdict == "healthy", f"{short(digest)} is {verdict}, not healthy")
        self.promoted = digest
        return StepResult(
            0,
            "",
            digest=short(digest),
            where="blue (production)",
            outcome="10 % -> 50 % (resumed) -> 100 %, roles swapped",
            verified=True,
            facts={"deploymentId": promotion_id, "digest": digest},
        )

    def flip_back(self) -> StepResult:
        """``POST /rollback`` of production within the window: weights only."""
        green = self.api.deployment(self._deployment_name("green"))
        generation = green["metadata"].get("generation")
        self.console.note("production has a problem after all: roll it back")
        answer = self.cli.json("rollback", "--service", "production")
        self.console.command("bluegreen rollback --service production", pairs_of(answer))
        _require(answer.get("flippedBack") is True, f"no flip-back: {answer}")
        self._check_roles("blue", "green")
        again = self.api.deployment(self._deployment_name("green"))
        _require(
            again["metadata"].get("generation") == generation,
            "green's Deployment was changed: a flip-back must roll nothing out",
        )
        self.console.checked("green serves production again; its Deployment was not touched")
        record = self.cli.json("show", str(answer.get("recordId"))).get("record") or {}
        _require(
            (record.get("action"), record.get("outcome")) == ("rollback", "succeeded"),
            f"the ledger records the flip-back as {record.get('action')} {record.get('outcome')}",
        )
        self.console.checked(
            f"ledger: {record.get('id')} rollback succeeded, by {record.get('actor')}"
        )
        return StepResult(
            0,
            "",
            digest=short(self.promoted),
            where="green (production)",
            outcome="flipped back in one write, no rollout",
            verified=True,
            facts={"recordId": str(answer.get("recordId"))},
        )

    def promotion_fails(self) -> StepResult:
        """An image answering 5 % 5xx: failed at 10 % by its first reading, backed out."""
        body = self._waiting(("push", "dev", "--errors"), "blue", expect=0)
        digest = str((body.get("record") or {}).get("toDigest"))
        self.console.checked(
            f"blue (the canary) runs {short(digest)}: it rolls out and passes its hooks, "
            "but answers 5 % of its requests with a 5xx"
        )
        final = self._waiting(("promote", "--steps", "10,100"), "blue", expect=1)
        execution = final.get("execution") or {}
        _require(
            execution.get("error") == "AnalysisFailed",
            f"the promotion ended {execution.get('status')} {execution.get('error')}",
        )
        self.console.checked(f"FAILED AnalysisFailed: {execution.get('cause')}")
        promotion = final.get("promotion") or {}
        analyses = promotion.get("analyses") or []
        findings = [a.get("finding") for a in analyses]
        _require(
            findings and findings[-1] == "failed" and "failed" not in findings[:-1],
            f"the readings were {findings}",
        )
        if self.settings.metric_provider.value == "prometheus":
            reasons = (analyses[-1].get("reasons") or [""])[0]
            _require(
                "in Prometheus" in reasons,
                f"the failing reading names {reasons!r}, not a backend in Prometheus",
            )
            self.console.checked(
                f"that reading is Prometheus' ({reasons}): {analyses[-1].get('requests'):.0f} "
                f"real requests, {analyses[-1].get('errorPercent'):.2f} % 5xx, counted by Traefik"
            )
        weights, _ = self._router_weights()
        _require(
            weights == {"blue": 0, "green": 100},
            f"production is {weights}, not back to 100 % on green",
        )
        failed_at, backed_out = promotion.get("failedAt"), promotion.get("backedOutAt")
        _require(failed_at and backed_out, f"the promotion shows no failure time: {promotion}")
        took = (
            datetime.fromisoformat(str(backed_out)) - datetime.fromisoformat(str(failed_at))
        ).total_seconds()
        _require(0 <= took < 5, f"production was back on green {took:.1f}s after the failure")
        self.console.checked(
            f"the first conclusive reading at 10 % failed it; production was back at 100 % on "
            f"green {took:.2f}s later, within one analysis interval ({self.interval:.1f}s here)"
        )
        verdict = self._verdicts().get(digest)
        _require(verdict == "failed", f"{short(digest)} is {verdict}, not failed")
        return StepResult(
            0,
            "",
            digest=short(digest),
            where="blue (canary)",
            outcome="failed its analysis at 10 %, backed out",
            verified=True,
            facts={"deploymentId": str(final.get("id")), "digest": digest},
        )


def pairs_of(body: Any) -> str:
    """A JSON answer as ``key  value`` lines (nested values left out)."""
    if not isinstance(body, dict):
        return str(body)
    return "\n".join(
        f"{key:14} {value}" for key, value in body.items() if not isinstance(value, dict | list)
    )


def run_story(stack: LocalStack, out: TextIO) -> list[StepResult]:
    """Steps 2 to 7 of the demo against a running stack; the first failure ends them."""
    return Story(stack, out).run()


# -- the command line -----------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m local.demo",
        description=(
            "Replay the original system's story on the local stack (moto, the cluster "
            "emulator, the API), checking every step: the state before, a canary switch, a "
            "good push auto-deployed, a broken push rolled back, an emergency production fix, "
            "and the ledger's history. Exits 0 only if every step was verified."
        ),
    )
    parser.add_argument(
        "--cluster",
        choices=("emulator", "kube"),
        default="emulator",
        help="the cluster emulator (default) or the real control plane built by `make kube`",
    )
    parser.add_argument(
        "--speed",
        type=float,
        help=f"how much faster than real time the cluster's clock runs (default "
        f"{DEFAULT_SPEED:g} on the emulator, {KUBE_SPEED:g} on kube)",
    )
    parser.add_argument(
        "--router",
        choices=("selector", "alb", "gateway"),
        default="selector",
        help="the stack's TrafficRouter (default %(default)s); alb and gateway add the "
        "traffic story: a flip, a promotion with a manual gate, a flip-back, a failed "
        "promotion",
    )
    parser.add_argument(
        "--keep-running",
        action="store_true",
        help="leave the stack up at the end for exploring, until Ctrl-C",
    )
    return parser


def _cluster_words(state: StackState) -> str:
    if state.cluster_kind == "kube":
        return f"real control plane {state.cluster_url} (RBAC on)"
    return f"cluster emulator {state.cluster_url}"


def _on_sigterm(_signum: int, _frame: object) -> None:
    raise Interrupted


def _explore(stack: LocalStack, console: Console) -> None:
    """Print where the stack runs and how to talk to it, then wait for Ctrl-C."""
    state = stack.state
    assert state is not None
    state_file = stack.options.state_dir / STATE_FILE
    console.line()
    console.line(console.paint("The stack keeps running for exploring (Ctrl-C stops it):", "1"))
    for line in (
        f"  API (services_api)  {state.api_url}    SigV4 only, as API Gateway (AWS_IAM)",
        f"  moto (AWS)          {state.moto_url}",
        f"  {_cluster_words(state)}",
        "",
        f"  .venv/bin/kubectl {Kubectl(state, stack.options.state_dir).target} "
        f"-n {state.namespace} get deploy,svc,cm,pods,rs",
        f"  export BLUEGREEN_LOCAL_STATE={state_file}   # then: .venv/bin/bluegreen status, "
        "make push TAG=dev",
        f"  export AWS_ENDPOINT_URL={state.moto_url} AWS_REGION={state.region} "
        f"AWS_DEFAULT_REGION={state.region}",
        f"  export AWS_ACCESS_KEY_ID={state.access_key_id} "
        f"AWS_SECRET_ACCESS_KEY={state.secret_access_key}",
        f'  curl --aws-sigv4 "aws:amz:{state.region}:execute-api" '
        f'--user "$AWS_ACCESS_KEY_ID:$AWS_SECRET_ACCESS_KEY" {state.api_url}/services',
    ):
        console.line(line)
    while True:
        time.sleep(0.5)


def main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    """Start the stack, run the story, print the timeline; 0 only if every step was verified."""
    args = _parser().parse_args(argv)
    if args.speed is None:
        args.speed = DEFAULT_SPEED if args.cluster == "emulator" else KUBE_SPEED
    if args.speed <= 0:
        _parser().error("--speed must be positive")
    out = out or sys.stdout
    console = Console(out)
    # moto's interpreter logs the broken push's expected task failure as an error, which
    # the story reports itself; a handler of moto's own keeps such records away from
    # logging's last-resort stderr handler, whatever levels the stack sets.
    moto_log = logging.getLogger("moto")
    moto_log.addHandler(logging.NullHandler())
    moto_log.propagate = False
    # The handlers publish no metrics locally; Powertools warns about that on every call.
    warnings.filterwarnings("ignore", message="No application metrics to publish")
    with contextlib.suppress(ValueError):  # not the main thread: no handler there
        signal.signal(signal.SIGTERM, _on_sigterm)
        # Started in the background by a shell, SIGINT arrives ignored; Ctrl-C must still stop.
        signal.signal(signal.SIGINT, signal.default_int_handler)

    console.line(
        console.paint("eks-bluegreen demo", "1")
        + ": the original system's story on the local stack, every step checked"
    )
    results: list[StepResult] = []
    story: Story | None = None
    stack: LocalStack | None = None
    exploring = False
    began = time.monotonic()
    work_dir = Path(tempfile.mkdtemp(prefix="bluegreen-demo-"))
    try:
        total = Story.TOTAL if args.router == "selector" else Story.WEIGHTED_TOTAL
        console.heading(1, total, "start the local stack")
        other = running_stack()
        if other is not None:
            console.note(
                f"a `make local` stack is running (pid {other.pid}, API {other.api_url}); "
                "this demo uses its own free ports and state and leaves it alone"
            )
        started = time.monotonic()
        try:
            traffic = 400.0 if args.router != "selector" else 0.0
            stack = LocalStack(
                StackOptions.ephemeral(
                    work_dir,
                    speed=args.speed,
                    cluster=args.cluster,
                    router=args.router,
                    traffic_rate=traffic,
                )
            ).start()
        except (StackError, OSError) as exc:
            results.append(
                StepResult(
                    1,
                    "start the local stack",
                    seconds=time.monotonic() - started,
                    problem=f"the stack did not start: {exc}",
                )
            )
        else:
            assert stack.state is not None
            console.checked(
                f"moto {stack.state.moto_url}, {_cluster_words(stack.state)}, "
                f"API {stack.state.api_url}; cluster clock x{args.speed:g}"
            )
            results.append(
                StepResult(
                    1,
                    "start the local stack",
                    where="127.0.0.1 (free ports)",
                    seconds=time.monotonic() - started,
                    outcome=f"moto, {stack.state.cluster_kind} and API up, clock x{args.speed:g}",
                    verified=True,
                )
            )
            story = Story(stack, out)
            results += story.run()
        _report(console, results, time.monotonic() - began, args.speed, total)
        if args.keep_running and stack is not None:
            exploring = True
            _explore(stack, console)
    except KeyboardInterrupt:
        console.line()
        if not exploring:
            where = story.current if story is not None and story.current else (1, "start")
            _stop(console, stack, work_dir)
            sys.stderr.write(f"demo: interrupted at step {where[0]} ({where[1]})\n")
            return EXIT_INTERRUPTED
    _stop(console, stack, work_dir)
    if _passed(results, total):
        return 0
    failed = next((r for r in results if not r.verified), None)
    if failed is None:  # a step never ran: the story ended early
        sys.stderr.write("demo: FAILED: the story ended before every step ran\n")
    else:
        sys.stderr.write(
            f"demo: FAILED at step {failed.number} ({failed.title}): {failed.problem}\n"
        )
    return EXIT_FAILED


def _passed(results: Sequence[StepResult], total: int = Story.TOTAL) -> bool:
    return len(results) == total and all(r.verified for r in results)


def _report(
    console: Console,
    results: Sequence[StepResult],
    seconds: float,
    speed: float,
    total: int = Story.TOTAL,
) -> None:
    console.line()
    console.line(console.paint("Timeline", "1"))
    for row in render_timeline(results).splitlines():
        if "FAILED: " in row:
            row = console.paint(row, "31")
        console.line("  " + row)
    console.line()
    verified = sum(r.verified for r in results)
    if _passed(results, total):
        console.line(
            console.paint(f"demo passed: {verified}/{total} steps verified", "32;1")
            + f" in {seconds:.1f}s (cluster clock x{speed:g}: {seconds * speed / 60:.0f} "
            "cluster minutes)"
        )
    else:
        ran = len(results)
        not_run = f" (steps {ran + 1} to {total} did not run)" if ran < total else ""
        console.line(
            console.paint(f"demo failed: {verified}/{total} steps verified", "31;1") + not_run
        )


def _stop(console: Console, stack: LocalStack | None, work_dir: Path) -> None:
    """Stop the stack (twice is harmless) and remove its temporary state."""
    if stack is not None:
        console.line("stopping the local stack...")
        # A second Ctrl-C while stopping must not leave the servers running.
        with contextlib.suppress(KeyboardInterrupt):
            stack.stop()
    shutil.rmtree(work_dir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
